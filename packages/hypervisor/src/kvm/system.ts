/** The /dev/kvm file descriptor: API version, capabilities, CPUID, and VM creation. */
import type { LoadedAbi, StructValue } from './abi.js';
import { CapabilityCheck, type CapabilityMask } from './capabilities.js';
import { ioctlError, KvmError, kvmOpenError } from './errors.js';
import { countedBound } from './counted-arrays.js';
import { isSysError, native, type IoctlArg, type Shim } from './native.js';

export const DEFAULT_KVM_PATH = '/dev/kvm';

/** One kvm_cpuid_entry2, as the spec's codec decodes it. */
export interface CpuidEntry extends StructValue {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

/** ioctl by spec name, failures naming the ioctl. */
export function kvmIoctl(shim: Shim, abi: LoadedAbi, fd: number, name: string, arg?: IoctlArg): number {
  const request = abi.ioctl(name);
  try {
    return shim.ioctl(fd, request, arg, typeof arg === 'object' ? countedBound(abi, name) : undefined);
  } catch (err) {
    throw ioctlError(name, err);
  }
}

export class KvmSystem {
  private readonly shim: Shim;
  private closed = false;
  /** Every capability question about this host goes through here, mask included. */
  readonly caps: CapabilityCheck;

  private constructor(
    readonly abi: LoadedAbi,
    readonly fd: number,
    readonly path: string,
    mask: CapabilityMask,
  ) {
    this.shim = native();
    this.caps = new CapabilityCheck(abi, (cap) => this.ioctl('KVM_CHECK_EXTENSION', cap), mask);
  }

  /**
   * Opens /dev/kvm and checks that the kernel speaks the API version the spec describes. `mask`
   * makes capabilities read as absent (docs/compatibility.md).
   */
  static open(abi: LoadedAbi, path = DEFAULT_KVM_PATH, mask: CapabilityMask = {}): KvmSystem {
    const shim = native();
    let fd: number;
    try {
      fd = shim.open(path);
    } catch (err) {
      throw kvmOpenError(path, err);
    }
    const sys = new KvmSystem(abi, fd, path, mask);
    try {
      const have = sys.ioctl('KVM_GET_API_VERSION');
      const want = abi.constant('KVM_API_VERSION');
      if (have !== want) throw new KvmError(`${path} speaks KVM API version ${have}; kvm-ts needs ${want}`);
    } catch (err) {
      sys.close();
      throw err;
    }
    return sys;
  }

  ioctl(name: string, arg?: IoctlArg): number {
    return kvmIoctl(this.shim, this.abi, this.fd, name, arg);
  }

  /** KVM_CHECK_EXTENSION's value for a KVM_CAP_* name as this VMM sees it (0: absent, unknown to the spec, or masked). */
  checkExtension(cap: string): number {
    return this.caps.value(cap);
  }

  vcpuMmapSize(): number {
    return this.ioctl('KVM_GET_VCPU_MMAP_SIZE');
  }

  /** KVM_GET_SUPPORTED_CPUID, growing the buffer while the kernel answers E2BIG. */
  supportedCpuid(): CpuidEntry[] {
    const header = this.abi.codec('kvm_cpuid2');
    const entry = this.abi.codec<CpuidEntry>('kvm_cpuid_entry2');
    const entriesAt = this.abi.field('kvm_cpuid2', 'entries').offset;
    for (let max = 64; max <= 4096; max *= 2) {
      const bytes = new Uint8Array(entriesAt + max * entry.size);
      const view = new DataView(bytes.buffer);
      header.encode({ nent: max }, view);
      try {
        this.shim.ioctl(this.fd, this.abi.ioctl('KVM_GET_SUPPORTED_CPUID'), bytes, countedBound(this.abi, 'KVM_GET_SUPPORTED_CPUID'));
      } catch (err) {
        if (isSysError(err) && err.code === 'E2BIG') continue;
        throw ioctlError('KVM_GET_SUPPORTED_CPUID', err);
      }
      const n = Number(header.decode(view).nent);
      if (n > max) throw new KvmError(`KVM_GET_SUPPORTED_CPUID returned ${n} entries for a buffer of ${max}`);
      return Array.from({ length: n }, (_, i) => entry.decode(view, entriesAt + i * entry.size));
    }
    throw new KvmError('KVM_GET_SUPPORTED_CPUID: the kernel reports more than 4096 CPUID entries');
  }

  createVm(): number {
    return this.ioctl('KVM_CREATE_VM', 0);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.shim.close(this.fd);
  }
}
