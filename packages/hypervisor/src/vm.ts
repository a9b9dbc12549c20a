/**
 * A KVM VM set up the way kvmtool and Firecracker do it on x86: TSS and identity-map pages below
 * 4 GiB, in-kernel irqchip and PIT, guest RAM from anonymous host mappings, one fd per vCPU with
 * CPUID, MSRs, FPU and LAPIC configured. Owns every fd and mapping it creates; close() releases all.
 */
import { CapabilityCheck, probeCapabilities, type CapabilityMask, type HostCaps } from './kvm/capabilities.js';
import { advertisesTscDeadline, encodeCpuid2, normalizeCpuid } from './arch/x86/cpuid.js';
import { hostAbi, type LoadedAbi, type StructValue } from './kvm/abi.js';
import { native, type IoctlArg, type Shim } from './kvm/native.js';
import { runLayout, type RunLayout } from './kvm/run-layout.js';
import { DEFAULT_KVM_PATH, kvmIoctl, KvmSystem, type CpuidEntry } from './kvm/system.js';
import { routeLegacyInterrupts } from './arch/x86/lapic.js';
import { GuestMemory, ramLayout } from './memory.js';
import { bootMsrs, checkMsrsSet, encodeMsrs } from './arch/x86/msrs.js';
import { bootFpu, bootRegs, bootSregs, type BootState } from './arch/x86/regs.js';
import { applyVmTag, type VmTagOutcome } from './extensions/vm-tag.js';
import { KvmError } from './kvm/errors.js';
import { MAX_VCPUS } from './vcpu/limits.js';

/** Three pages for the TSS and one for the identity map, just below the 4 GiB boundary, in the MMIO hole. */
const TSS_ADDR = 0xfffb_d000;
const IDENTITY_MAP_ADDR = 0xfffb_c000;

/** The VM's shape is wrong for this host (too many vCPUs, …): a usage problem, not a KVM failure. */
export class VmConfigError extends Error {
  override name = 'VmConfigError';
}

export interface VmConfig {
  memBytes: number;
  cpus: number;
  kvmPath?: string;
  /** The spec every number comes from (default: the newest pinned one); one per VM, never mixed. */
  abi?: LoadedAbi;
  /** Capabilities to read as absent, as on an older kernel (kvm/capabilities.ts). */
  mask?: CapabilityMask;
}

export class Vm {
  readonly layout: RunLayout;
  readonly runSize: number;
  memory!: GuestMemory;
  readonly vcpuFds: number[] = [];
  private readonly shim: Shim = native();
  private readonly mappings: ArrayBuffer[] = [];
  private supportedCpuid: CpuidEntry[] = [];
  /** Which path the co-edit example took (docs/abi-co-edit.md): the kernel's, only when it has the capability. */
  vmTag!: VmTagOutcome;
  private closed = false;
  /** What the CPUID given to the vCPUs says about the TSC-deadline timer (the fallback made visible). */
  tscDeadlineAdvertised = false;
  /** KVM_CHECK_EXTENSION on the VM fd, through the same mask as the host's. */
  readonly vmCaps: CapabilityCheck;
  /** Run before anything is released (VmRun: stop and join the vCPU threads). */
  private readonly closeHooks: Array<() => boolean> = [];

  private constructor(
    readonly abi: LoadedAbi,
    readonly sys: KvmSystem,
    readonly caps: HostCaps,
    readonly fd: number,
    readonly cpus: number,
  ) {
    this.layout = runLayout(abi);
    this.runSize = sys.vcpuMmapSize();
    this.vmCaps = new CapabilityCheck(abi, (cap) => this.ioctl('KVM_CHECK_EXTENSION', cap), sys.caps.mask);
  }

  static create(config: VmConfig): Vm {
    const abi = config.abi ?? hostAbi();
    const sys = KvmSystem.open(abi, config.kvmPath ?? DEFAULT_KVM_PATH, config.mask);
    let vm: Vm | undefined;
    let vmFd = -1;
    try {
      const caps = probeCapabilities(sys);
      const max = Math.min(caps.maxVcpus, MAX_VCPUS);
      if (!Number.isInteger(config.cpus) || config.cpus < 1 || config.cpus > max) {
        const why = max === MAX_VCPUS ? 'the MP table\'s limit' : "KVM's limit on this host";
        throw new VmConfigError(`cpus must be between 1 and ${max} (${why}), got ${config.cpus}`);
      }
      vmFd = sys.createVm();
      vm = new Vm(abi, sys, caps, vmFd, config.cpus);
      vm.setUp(config.memBytes);
      return vm;
    } catch (err) {
      if (vm) vm.close();
      else {
        if (vmFd >= 0) native().close(vmFd);
        sys.close();
      }
      throw err;
    }
  }

  ioctl(name: string, arg?: IoctlArg): number {
    return kvmIoctl(this.shim, this.abi, this.fd, name, arg);
  }

  vcpuIoctl(index: number, name: string, arg?: IoctlArg): number {
    return kvmIoctl(this.shim, this.abi, this.vcpuFds[index], name, arg);
  }

  private createMemory(memBytes: number): GuestMemory {
    const region = this.abi.codec('kvm_userspace_memory_region');
    const regions = ramLayout(memBytes).map((range, slot) => {
      const buffer = this.shim.mmapAnonymous(range.size);
      this.mappings.push(buffer);
      this.ioctl(
        'KVM_SET_USER_MEMORY_REGION',
        region.toBytes({
          slot,
          flags: 0,
          guest_phys_addr: BigInt(range.gpa),
          memory_size: BigInt(range.size),
          userspace_addr: this.shim.address(buffer),
        }),
      );
      return { gpa: range.gpa, size: range.size, bytes: new Uint8Array(buffer) };
    });
    return new GuestMemory(regions);
  }

  private setUp(memBytes: number): void {
    this.vmTag = applyVmTag(
      this.abi,
      (cap) => this.vmCaps.value(cap),
      (arg) => void this.ioctl('KVM_ENABLE_CAP', arg),
      BigInt(process.pid),
    );
    this.memory = this.createMemory(memBytes);
    this.ioctl('KVM_SET_TSS_ADDR', TSS_ADDR);
    this.ioctl('KVM_SET_IDENTITY_MAP_ADDR', new BigUint64Array([BigInt(IDENTITY_MAP_ADDR)]));
    this.ioctl('KVM_CREATE_IRQCHIP');
    this.ioctl('KVM_CREATE_PIT2', this.abi.codec('kvm_pit_config').toBytes({ flags: this.abi.constant('KVM_PIT_SPEAKER_DUMMY') }));
    this.supportedCpuid = this.sys.supportedCpuid();
    for (let i = 0; i < this.cpus; i++) {
      this.vcpuFds.push(this.ioctl('KVM_CREATE_VCPU', i));
      this.configureVcpu(i);
    }
  }

  /** CPUID, MSRs, FPU and LAPIC of one vCPU; the application processors then wait for INIT/SIPI. */
  private configureVcpu(index: number): void {
    const cpuid = normalizeCpuid(this.supportedCpuid, { index, cpus: this.cpus, tscDeadline: this.caps.tscDeadline });
    this.tscDeadlineAdvertised = advertisesTscDeadline(cpuid);
    this.vcpuIoctl(index, 'KVM_SET_CPUID2', encodeCpuid2(this.abi, cpuid));
    const msrs = bootMsrs();
    checkMsrsSet(msrs, this.vcpuIoctl(index, 'KVM_SET_MSRS', encodeMsrs(this.abi, msrs)));
    this.vcpuIoctl(index, 'KVM_SET_FPU', bootFpu(this.abi));
    const lapic = new Uint8Array(this.abi.codec('kvm_lapic_state').size);
    this.vcpuIoctl(index, 'KVM_GET_LAPIC', lapic);
    routeLegacyInterrupts(this.abi, lapic);
    this.vcpuIoctl(index, 'KVM_SET_LAPIC', lapic);
  }

  /** Puts the boot vCPU at the loader's entry point in long mode. */
  setBootRegisters(boot: BootState, index = 0): void {
    const regs = this.abi.codec('kvm_regs');
    const sregs = this.abi.codec('kvm_sregs');
    this.vcpuIoctl(index, 'KVM_SET_REGS', regs.toBytes(bootRegs(boot)));
    const current = new Uint8Array(sregs.size);
    this.vcpuIoctl(index, 'KVM_GET_SREGS', current);
    const next = bootSregs(sregs.decode(new DataView(current.buffer)), boot);
    this.vcpuIoctl(index, 'KVM_SET_SREGS', sregs.toBytes(next));
  }

  /** The boot vCPU's general registers (for messages and tests). */
  getRegs(index = 0): StructValue {
    const regs = this.abi.codec('kvm_regs');
    const bytes = new Uint8Array(regs.size);
    this.vcpuIoctl(index, 'KVM_GET_REGS', bytes);
    return regs.decode(new DataView(bytes.buffer));
  }

  setIrqLine(gsi: number, level: boolean): void {
    this.ioctl('KVM_IRQ_LINE', this.abi.codec('kvm_irq_level').toBytes({ irq: gsi, level: level ? 1 : 0 }));
  }

  /** `hook` runs first in close(); false means a vCPU still runs, so nothing it uses is released. */
  onClose(hook: () => boolean): void {
    this.closeHooks.push(hook);
  }

  /**
   * Stops and joins the vCPU threads of any run, then releases every vCPU fd, the VM fd, the guest
   * RAM mappings and /dev/kvm. Idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const joined = this.closeHooks.map((hook) => hook()).every(Boolean);
    // Unmapping RAM under a live vCPU, or closing fds whose numbers a thread still uses, is worse than a leak.
    if (!joined) throw new KvmError('a vCPU thread did not stop within 5 s: the VM is left open until the process exits');
    for (const fd of this.vcpuFds) this.shim.close(fd);
    this.vcpuFds.length = 0;
    this.shim.close(this.fd);
    for (const m of this.mappings) this.shim.munmap(m);
    this.mappings.length = 0;
    this.sys.close();
  }
}
