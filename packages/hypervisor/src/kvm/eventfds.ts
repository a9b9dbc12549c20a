/**
 * KVM_IOEVENTFD and KVM_IRQFD: a guest's doorbell write signals an eventfd inside the kernel
 * (no exit to userspace), and a write to an eventfd raises a GSI on the in-kernel irqchip. Both
 * structs, their flags and the ioctl numbers come from the spec; the shim only makes eventfds and
 * polls them on the event loop. Whether to use them at all is Vm.caps' decision (capabilities.ts).
 */
import type { LoadedAbi } from './abi.js';
import { native, type FdPoll } from './native.js';

/** What these wrappers need of a VM: its spec and its fd's ioctls. */
export interface VmFd {
  readonly abi: LoadedAbi;
  ioctl(name: string, arg?: ArrayBufferView): number;
}

const COUNTER = 8;

/** A doorbell: guest writes of `datamatch` to [addr, addr+len) land in an eventfd, read on the event loop. */
export class Ioeventfd {
  private readonly poll: FdPoll;
  private closed = false;

  private constructor(
    private readonly vm: VmFd,
    readonly fd: number,
    private readonly request: Record<string, number | bigint>,
    onSignal: () => void,
  ) {
    const shim = native();
    const counter = new Uint8Array(COUNTER);
    this.poll = new shim.FdPoll(fd, () => {
      // One callback per wake-up, however many writes the counter coalesced.
      let fired = false;
      while (shim.read(fd, counter) === COUNTER) fired = true;
      if (fired && !this.closed) onSignal();
    });
  }

  /** Registers an MMIO doorbell at `addr` (`len` bytes) that fires only for writes of `datamatch`. */
  static assign(vm: VmFd, opts: { addr: bigint; len: number; datamatch: number; onSignal: () => void }): Ioeventfd {
    const shim = native();
    const fd = shim.eventfd(0);
    const request = {
      datamatch: BigInt(opts.datamatch),
      addr: opts.addr,
      len: opts.len,
      fd,
      flags: vm.abi.constant('KVM_IOEVENTFD_FLAG_DATAMATCH'),
    };
    try {
      vm.ioctl('KVM_IOEVENTFD', vm.abi.codec('kvm_ioeventfd').toBytes(request));
      return new Ioeventfd(vm, fd, request, opts.onSignal);
    } catch (err) {
      shim.close(fd);
      throw err;
    }
  }

  /** Deassigns (while the VM is open) and closes the eventfd. Idempotent. */
  close(vmOpen = true): void {
    if (this.closed) return;
    this.closed = true;
    this.poll.close();
    if (vmOpen) {
      const flags = Number(this.request.flags) | this.vm.abi.constant('KVM_IOEVENTFD_FLAG_DEASSIGN');
      try {
        this.vm.ioctl('KVM_IOEVENTFD', this.vm.abi.codec('kvm_ioeventfd').toBytes({ ...this.request, flags }));
      } catch {
        // the VM is going away; closing its fd drops the registration anyway
      }
    }
    native().close(this.fd);
  }
}

/** An interrupt source: each trigger() raises `gsi` once, as an edge, without a KVM_IRQ_LINE from here. */
export class Irqfd {
  private readonly one = new Uint8Array(COUNTER);
  private closed = false;

  private constructor(
    private readonly vm: VmFd,
    readonly fd: number,
    readonly gsi: number,
  ) {
    new DataView(this.one.buffer).setBigUint64(0, 1n, true);
  }

  static assign(vm: VmFd, gsi: number): Irqfd {
    const shim = native();
    const fd = shim.eventfd(0);
    try {
      vm.ioctl('KVM_IRQFD', vm.abi.codec('kvm_irqfd').toBytes({ fd, gsi, flags: 0, resamplefd: 0 }));
      return new Irqfd(vm, fd, gsi);
    } catch (err) {
      shim.close(fd);
      throw err;
    }
  }

  trigger(): void {
    if (this.closed) return;
    // -EAGAIN only if the counter were saturated, which KVM's consumer never lets happen.
    native().write(this.fd, this.one);
  }

  close(vmOpen = true): void {
    if (this.closed) return;
    this.closed = true;
    if (vmOpen) {
      try {
        this.vm.ioctl('KVM_IRQFD', this.vm.abi.codec('kvm_irqfd').toBytes({ fd: this.fd, gsi: this.gsi, flags: this.vm.abi.constant('KVM_IRQFD_FLAG_DEASSIGN'), resamplefd: 0 }));
      } catch {
        // as above
      }
    }
    native().close(this.fd);
  }
}
