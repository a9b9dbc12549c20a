/**
 * The VMM's side of virtio-mmio: where each device's window and GSI are (a reserved range in the
 * MMIO hole below 4 GiB, e820-reserved; IOAPIC pins 16-23 first, then free ISA IRQs), how Linux
 * and the built-in guest learn them (`virtio_mmio.device=<size>@<base>:<gsi>` on the command line),
 * and by which path doorbells and interrupts travel:
 *  - notifications: KVM_IOEVENTFD on QueueNotify, one eventfd per queue with datamatch on the
 *    queue index, read on the event loop; without KVM_CAP_IOEVENTFD, ordinary MMIO exits;
 *  - interrupts: KVM_IRQFD into the in-kernel IOAPIC (an edge per trigger); without
 *    KVM_CAP_IRQFD, a KVM_IRQ_LINE pulse from the VMM.
 * Vm.caps decides both (kvm/capabilities.ts); this file asks no capability itself.
 */
import type { IoBus } from '../bus.js';
import { hex } from '../../hex.js';
import type { LoadedAbi } from '../../kvm/abi.js';
import { Ioeventfd, Irqfd } from '../../kvm/eventfds.js';
import type { IoctlArg } from '../../kvm/native.js';
import type { VirtioDevice } from './device.js';
import { MMIO_WINDOW, MmioTransport, type NotifyPath, type TransportStats } from './mmio.js';
import type { QueueMemory } from './queue.js';

/** First device window: above low RAM (which ends at 3 GiB at most), where Firecracker puts its MMIO devices too. */
export const VIRTIO_MMIO_BASE = 0xd000_0000;
/**
 * GSIs in the order devices get them: the IOAPIC-only pins, then ISA IRQs no legacy device of ours
 * uses, IRQ 9 last: with ACPI it is the SCI (level-triggered), which a 16th device would share.
 */
export const VIRTIO_GSIS: readonly number[] = [16, 17, 18, 19, 20, 21, 22, 23, 5, 6, 7, 10, 11, 14, 15, 9];

export type InterruptPath = 'irqfd' | 'irq-line';

/** What the platform needs of a VM. */
export interface VirtioVm {
  readonly abi: LoadedAbi;
  readonly caps: { readonly ioeventfd: boolean; readonly irqfd: boolean };
  ioctl(name: string, arg?: IoctlArg): number;
  setIrqLine(gsi: number, level: boolean): void;
}

export interface VirtioSlot {
  base: number;
  gsi: number;
}

/** Counters and paths of one device, as run summaries and `stat` report them. */
export interface VirtioDeviceStats extends TransportStats {
  name: string;
  type: number;
  base: string;
  gsi: number;
  paths: { notify: NotifyPath; interrupt: InterruptPath };
  /** Interrupts by path: every InterruptPath (typed loosely so that mmio and pci stats index alike). */
  interruptsBy: Record<string, number>;
  /** The device's own counters, where it keeps any (virtio-net). */
  device?: Record<string, number>;
}

export class VirtioConfigError extends Error {
  override name = 'VirtioConfigError';
}

/** The window and GSI of device `i`. */
export function virtioSlot(i: number): VirtioSlot {
  if (i >= VIRTIO_GSIS.length) throw new VirtioConfigError(`at most ${VIRTIO_GSIS.length} virtio devices fit the IOAPIC's free pins (asked for ${i + 1})`);
  return { base: VIRTIO_MMIO_BASE + i * MMIO_WINDOW, gsi: VIRTIO_GSIS[i] };
}

/** Linux's own syntax for devices it cannot discover (drivers/virtio/virtio_mmio.c), one per device. */
export function virtioCmdline(count: number): string {
  return Array.from({ length: count }, (_, i) => {
    const s = virtioSlot(i);
    return `virtio_mmio.device=${MMIO_WINDOW / 1024}K@${hex(s.base)}:${s.gsi}`;
  }).join(' ');
}

/** The e820 reservation covering `count` device windows. */
export function virtioReserved(count: number): Array<{ addr: number; size: number }> {
  return count === 0 ? [] : [{ addr: VIRTIO_MMIO_BASE, size: count * MMIO_WINDOW }];
}

interface Attached {
  transport: MmioTransport;
  slot: VirtioSlot;
  paths: { notify: NotifyPath; interrupt: InterruptPath };
  interruptsBy: Record<InterruptPath, number>;
  ioeventfds: Ioeventfd[];
  irqfd?: Irqfd;
}

export class VirtioPlatform {
  private readonly attached: Attached[] = [];
  private closed = false;

  constructor(
    private readonly vm: VirtioVm,
    private readonly memory: QueueMemory,
    private readonly bus: IoBus,
    private readonly log: (line: string) => void,
  ) {}

  /** Puts `device` in the next window, on the bus, with its doorbells and interrupt wired. */
  add(device: VirtioDevice): MmioTransport {
    const slot = virtioSlot(this.attached.length);
    const paths = { notify: this.vm.caps.ioeventfd ? 'ioeventfd' : 'mmio', interrupt: this.vm.caps.irqfd ? 'irqfd' : 'irq-line' } as const;
    const interruptsBy: Record<InterruptPath, number> = { irqfd: 0, 'irq-line': 0 };
    let irqfd: Irqfd | undefined;
    const ioeventfds: Ioeventfd[] = [];
    try {
      if (paths.interrupt === 'irqfd') irqfd = Irqfd.assign(this.vm, slot.gsi);
      const transport = new MmioTransport(device, this.memory, BigInt(slot.base), {
        interrupt: () => {
          if (irqfd) {
            interruptsBy.irqfd++;
            irqfd.trigger();
          } else {
            interruptsBy['irq-line']++;
            // An edge, as the irqfd delivers it: the MP table declares these pins edge-triggered.
            this.vm.setIrqLine(slot.gsi, true);
            this.vm.setIrqLine(slot.gsi, false);
          }
        },
        log: this.log,
      });
      if (paths.notify === 'ioeventfd') {
        for (let q = 0; q < transport.queueCount; q++) {
          ioeventfds.push(Ioeventfd.assign(this.vm, { addr: transport.notifyAddress, len: 4, datamatch: q, onSignal: () => transport.notify(q, 'ioeventfd') }));
        }
      }
      this.bus.registerMmio(transport);
      this.attached.push({ transport, slot, paths, interruptsBy, ioeventfds, irqfd });
      return transport;
    } catch (err) {
      for (const e of ioeventfds) e.close();
      irqfd?.close();
      throw err;
    }
  }

  get transports(): MmioTransport[] {
    return this.attached.map((a) => a.transport);
  }

  get count(): number {
    return this.attached.length;
  }

  stats(): VirtioDeviceStats[] {
    return this.attached.map((a) => ({
      name: a.transport.name,
      type: a.transport.device.type,
      base: hex(a.slot.base),
      gsi: a.slot.gsi,
      paths: { ...a.paths },
      interruptsBy: { ...a.interruptsBy },
      ...structuredClone(a.transport.stats),
      ...(a.transport.device.counters ? { device: a.transport.device.counters() } : {}),
    }));
  }

  /**
   * Stops the doorbells and interrupts (`vmOpen`: deassign them from the VM first) and tells every
   * device to stop; resolves once their in-flight requests are done and their files closed.
   */
  close(vmOpen: boolean): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const a of this.attached) {
        for (const e of a.ioeventfds) e.close(vmOpen);
        a.irqfd?.close(vmOpen);
      }
    }
    return Promise.all(this.attached.map((a) => a.transport.device.close())).then(() => undefined);
  }
}
