/**
 * Message-signalled interrupts into the in-kernel LAPICs, two ways:
 *  - GsiRouting: KVM_SET_GSI_ROUTING with one KVM_IRQ_ROUTING_MSI entry per vector, so an irqfd
 *    on that GSI sends the message. The ioctl replaces the whole table, so it always carries the
 *    kernel's default irqchip routes too (GSI 0–15 to the PICs and the IOAPIC, 16–23 to the
 *    IOAPIC: virt/kvm/irqchip.c's default routing), or the UART, the PIT and virtio-mmio would go quiet.
 *  - signalMsi: KVM_SIGNAL_MSI, one ioctl per message, when routing or irqfd is absent.
 * Every number and struct comes from the spec.
 */
import type { MsiMessage } from '../devices/pci/msix.js';
import type { VmFd } from './eventfds.js';

export type { MsiMessage };

/** The IOAPIC's pins: GSIs below this are the irqchip's, MSI routes come after. */
export const IOAPIC_PINS = 24;
const PIC_PINS = 8;
const ISA_IRQS = 16;

type Route = { kind: 'irqchip'; chip: string; pin: number } | { kind: 'msi'; msg: MsiMessage };

export class GsiRouting {
  private readonly msi = new Map<number, MsiMessage>();
  private next = IOAPIC_PINS;
  /** KVM_SET_GSI_ROUTING calls made (for tests and stats). */
  commits = 0;

  constructor(
    private readonly vm: VmFd,
    /** KVM_CAP_IRQ_ROUTING's answer: how many routes the kernel takes. */
    private readonly maxRoutes: number,
  ) {}

  /** `count` fresh GSIs for MSI routes (an empty message until set), committed at once. */
  allocate(count: number): number[] {
    const routes = ISA_IRQS * 2 + (IOAPIC_PINS - ISA_IRQS) + this.msi.size + count;
    if (routes > this.maxRoutes) throw new RangeError(`${routes} interrupt routes are more than this kernel's ${this.maxRoutes}`);
    const gsis = Array.from({ length: count }, () => this.next++);
    for (const g of gsis) this.msi.set(g, { addressLo: 0, addressHi: 0, data: 0 });
    this.commit();
    return gsis;
  }

  /** Points `gsi` at `msg`; the ioctl runs only when the message changed. */
  set(gsi: number, msg: MsiMessage): void {
    const was = this.msi.get(gsi);
    if (!was) throw new RangeError(`GSI ${gsi} is not an MSI route`);
    if (was.addressLo === msg.addressLo && was.addressHi === msg.addressHi && was.data === msg.data) return;
    this.msi.set(gsi, { ...msg });
    this.commit();
  }

  private routes(): Array<[number, Route]> {
    const out: Array<[number, Route]> = [];
    for (let gsi = 0; gsi < IOAPIC_PINS; gsi++) {
      out.push([gsi, { kind: 'irqchip', chip: 'KVM_IRQCHIP_IOAPIC', pin: gsi }]);
      if (gsi < ISA_IRQS) out.push([gsi, { kind: 'irqchip', chip: gsi < PIC_PINS ? 'KVM_IRQCHIP_PIC_MASTER' : 'KVM_IRQCHIP_PIC_SLAVE', pin: gsi % PIC_PINS }]);
    }
    for (const [gsi, msg] of this.msi) out.push([gsi, { kind: 'msi', msg }]);
    return out;
  }

  /** The kvm_irq_routing argument for the current table. */
  encode(): Uint8Array {
    const abi = this.vm.abi;
    const entry = abi.codec('kvm_irq_routing_entry');
    const entriesAt = abi.field('kvm_irq_routing', 'entries').offset;
    const routes = this.routes();
    const bytes = new Uint8Array(entriesAt + routes.length * entry.size);
    const view = new DataView(bytes.buffer);
    abi.codec('kvm_irq_routing').encode({ nr: routes.length, flags: 0 }, view);
    routes.forEach(([gsi, r], i) => {
      const u =
        r.kind === 'irqchip'
          ? { irqchip: { irqchip: abi.constant(r.chip), pin: r.pin } }
          : { msi: { address_lo: r.msg.addressLo, address_hi: r.msg.addressHi, data: r.msg.data } };
      entry.encode({ gsi, type: abi.constant(r.kind === 'irqchip' ? 'KVM_IRQ_ROUTING_IRQCHIP' : 'KVM_IRQ_ROUTING_MSI'), flags: 0, u }, view, entriesAt + i * entry.size);
    });
    return bytes;
  }

  private commit(): void {
    this.commits++;
    this.vm.ioctl('KVM_SET_GSI_ROUTING', this.encode());
  }
}

/** KVM_SIGNAL_MSI: the message, once, to the in-kernel LAPICs. */
export function signalMsi(vm: VmFd, msg: MsiMessage): void {
  vm.ioctl('KVM_SIGNAL_MSI', vm.abi.codec('kvm_msi').toBytes({ address_lo: msg.addressLo, address_hi: msg.addressHi, data: msg.data, flags: 0, devid: 0 }));
}
