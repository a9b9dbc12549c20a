/**
 * The VMM's side of virtio-pci: the PCI bus (conf1 ports, ECAM, the MMIO hole) on the I/O buses,
 * one function per device from 00:01.0 on, and the paths doorbells and MSI-X messages travel:
 *  - notifications: KVM_IOEVENTFD on each queue's doorbell in BAR 0 (datamatch on the queue
 *    index, as Linux writes it), moved whenever the guest moves BAR 0 or turns memory decoding
 *    off and on; without KVM_CAP_IOEVENTFD (or where the kernel refuses one), MMIO exits;
 *  - interrupts: each MSI-X vector is a GSI with a KVM_IRQ_ROUTING_MSI route and an irqfd; the
 *    route follows the table entry when a message is sent. Without KVM_CAP_IRQFD or
 *    KVM_CAP_IRQ_ROUTING, KVM_SIGNAL_MSI per message; without that too, no virtio-pci device.
 * Vm.caps decides; this file asks no capability itself.
 */
import type { IoBus } from '../bus.js';
import { hex } from '../../hex.js';
import { Ioeventfd, Irqfd } from '../../kvm/eventfds.js';
import { GsiRouting, signalMsi } from '../../kvm/msi.js';
import { bdf, PCI_MMIO_BASE, PCI_MMIO_SIZE, PciBus } from '../pci/bus.js';
import type { MsiMessage, MsixStats } from '../pci/msix.js';
import type { VirtioDevice } from './device.js';
import type { NotifyPath, TransportStats } from './core.js';
import { VirtioPciTransport } from './pci.js';
import { VirtioConfigError, type VirtioVm } from './platform.js';
import type { QueueMemory } from './queue.js';

export type MsiPath = 'irqfd' | 'signal-msi';

export interface VirtioPciVm extends VirtioVm {
  readonly caps: VirtioVm['caps'] & { readonly irqRoutes: number; readonly signalMsi: boolean };
}

/** Counters and paths of one virtio-pci device, as run summaries and `stat` report them. */
export interface VirtioPciDeviceStats extends TransportStats {
  name: string;
  type: number;
  /** Bus, device and function: "00:01.0". */
  pci: string;
  /** Where BAR 0 is now. */
  base: string;
  paths: { notify: NotifyPath; interrupt: MsiPath };
  /** Messages sent by each MsiPath. */
  interruptsBy: Record<string, number>;
  msix: MsixStats;
  device?: Record<string, number>;
}

interface Attached {
  transport: VirtioPciTransport;
  slot: number;
  paths: { notify: NotifyPath; interrupt: MsiPath };
  interruptsBy: Record<MsiPath, number>;
  ioeventfds: Ioeventfd[];
  irqfds: Irqfd[];
  gsis: number[];
  /** Failures of the interrupt ioctls (logged once per device). */
  reportedMsi: boolean;
}

export class VirtioPciPlatform {
  readonly pci: PciBus;
  private readonly attached: Attached[] = [];
  private routing: GsiRouting | undefined;
  private closed = false;

  constructor(
    private readonly vm: VirtioPciVm,
    private readonly memory: QueueMemory,
    bus: IoBus,
    private readonly log: (line: string) => void,
  ) {
    this.pci = new PciBus(log);
    bus.registerPio(this.pci.conf1);
    bus.registerMmio(this.pci.ecam);
    bus.registerMmio(this.pci.window);
  }

  /** Which way MSI-X messages leave, by capability. */
  get msiPath(): MsiPath | undefined {
    const c = this.vm.caps;
    if (c.irqfd && c.irqRoutes > 0) return 'irqfd';
    return c.signalMsi ? 'signal-msi' : undefined;
  }

  /** Puts `device` in the next slot with its BARs placed, its doorbells and its vectors wired. */
  add(device: VirtioDevice): VirtioPciTransport {
    const interrupt = this.msiPath;
    if (!interrupt) throw new VirtioConfigError('virtio-pci needs KVM_CAP_SIGNAL_MSI, or KVM_CAP_IRQ_ROUTING with KVM_CAP_IRQFD, to interrupt the guest (use --transport mmio)');
    const a: Attached = {
      transport: undefined as unknown as VirtioPciTransport,
      slot: -1,
      paths: { notify: this.vm.caps.ioeventfd ? 'ioeventfd' : 'mmio', interrupt },
      interruptsBy: { irqfd: 0, 'signal-msi': 0 },
      ioeventfds: [],
      irqfds: [],
      gsis: [],
      reportedMsi: false,
    };
    a.transport = new VirtioPciTransport(device, this.memory, { msi: (v, msg) => this.send(a, v, msg), log: this.log });
    try {
      a.slot = this.pci.add(a.transport.pci);
      if (interrupt === 'irqfd') {
        this.routing ??= new GsiRouting(this.vm, this.vm.caps.irqRoutes);
        a.gsis = this.routing.allocate(a.transport.msix.vectors);
        for (const gsi of a.gsis) a.irqfds.push(Irqfd.assign(this.vm, gsi));
      }
      if (a.paths.notify === 'ioeventfd') {
        this.wireDoorbells(a);
        a.transport.pci.onDecodeChange = () => this.wireDoorbells(a);
      }
      this.attached.push(a);
      return a.transport;
    } catch (err) {
      this.release(a, true);
      throw err;
    }
  }

  /** (Re)places the doorbell eventfds where BAR 0 decodes now; none while it decodes nowhere in the hole. */
  private wireDoorbells(a: Attached): void {
    for (const e of a.ioeventfds) e.close();
    a.ioeventfds = [];
    if (this.closed) return;
    const bar = a.transport.pci.decodedBars().find((b) => b.index === 0);
    if (!bar || bar.base < PCI_MMIO_BASE || bar.base + bar.size > PCI_MMIO_BASE + PCI_MMIO_SIZE) return;
    const t = a.transport;
    try {
      for (let q = 0; q < t.queueCount; q++) {
        a.ioeventfds.push(Ioeventfd.assign(this.vm, { addr: BigInt(bar.base + t.notifyOffset(q)), len: 2, datamatch: q, onSignal: () => t.notify(q, 'ioeventfd') }));
      }
    } catch (err) {
      // Two BARs moved onto one address: the kernel refuses the second doorbell. MMIO exits still work.
      for (const e of a.ioeventfds) e.close();
      a.ioeventfds = [];
      t.log(`doorbells at ${hex(bar.base, 8)} by MMIO exits: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private send(a: Attached, vector: number, msg: MsiMessage): void {
    try {
      if (a.paths.interrupt === 'irqfd') {
        this.routing!.set(a.gsis[vector], msg);
        a.irqfds[vector].trigger();
        a.interruptsBy.irqfd++;
      } else {
        signalMsi(this.vm, msg);
        a.interruptsBy['signal-msi']++;
      }
    } catch (err) {
      // A message the kernel refuses (a guest's nonsense address): that interrupt is lost, the VM runs on.
      if (a.reportedMsi) return;
      a.reportedMsi = true;
      a.transport.log(`MSI-X vector ${vector} (address ${hex(msg.addressHi * 0x1_0000_0000 + msg.addressLo)}, data ${hex(msg.data)}) not sent: ${err instanceof Error ? err.message : String(err)} (further failures not logged)`);
    }
  }

  get transports(): VirtioPciTransport[] {
    return this.attached.map((a) => a.transport);
  }

  get count(): number {
    return this.attached.length;
  }

  stats(): VirtioPciDeviceStats[] {
    return this.attached.map((a) => ({
      name: a.transport.name,
      type: a.transport.device.type,
      pci: bdf(a.slot),
      base: hex(a.transport.pci.barBase(0)),
      paths: { ...a.paths },
      interruptsBy: { ...a.interruptsBy },
      msix: { ...a.transport.msix.stats },
      ...structuredClone(a.transport.stats),
      ...(a.transport.device.counters ? { device: a.transport.device.counters() } : {}),
    }));
  }

  private release(a: Attached, vmOpen: boolean): void {
    for (const e of a.ioeventfds) e.close(vmOpen);
    for (const f of a.irqfds) f.close(vmOpen);
    a.ioeventfds = [];
    a.irqfds = [];
  }

  /** As VirtioPlatform.close: doorbells and interrupts off, then every device stopped. */
  close(vmOpen: boolean): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const a of this.attached) this.release(a, vmOpen);
    }
    return Promise.all(this.attached.map((a) => a.transport.device.close())).then(() => undefined);
  }
}
