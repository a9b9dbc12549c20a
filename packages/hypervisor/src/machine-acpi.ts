/**
 * The machine as its ACPI tables describe it: the same CPUs, IOAPIC and LINT wiring as the MP
 * table, COM1, and either the PCI bus (root bridge, ECAM for MCFG) or the virtio-mmio windows.
 */
import type { AcpiMachine } from './arch/x86/acpi/tables.js';
import { SCI_IRQ } from './arch/x86/acpi/hardware.js';
import { CONF1_ADDRESS, DEVICES_PER_BUS, PCI_ECAM_BASE, PCI_ECAM_SIZE, PCI_MMIO_BASE, PCI_MMIO_SIZE } from './devices/pci/bus.js';
import { COM1_IRQ, COM1_PORT } from './devices/legacy/serial.js';
import { MMIO_WINDOW } from './devices/virtio/mmio.js';
import { VIRTIO_GSIS, VirtioConfigError, virtioSlot } from './devices/virtio/platform.js';
import { APIC_DEFAULT_BASE, IOAPIC_DEFAULT_BASE, IOAPIC_PINS } from './loader/mptable.js';

/** ECAM gives each bus 1 MiB (32 devices × 8 functions × 4 KiB). */
const ECAM_BUS_SIZE = 0x10_0000;
/** conf1: the address register 0xCF8 and the data window up to 0xCFF. */
const CONF1_PORTS = 8;
/** INTx pins are swizzled over the IOAPIC-only pins 16-23 (the PCI-to-PCI bridge rule, applied at the root). */
const FIRST_PCI_GSI = 16;
const PCI_GSIS = IOAPIC_PINS - FIRST_PCI_GSI;
/** The MP table's LINT1 is NMI on every CPU. */
const NMI_LINT = 1;

export function describeAcpiMachine(opts: { cpus: number; transport: 'mmio' | 'pci'; virtioMmio: number }): AcpiMachine {
  const sciShared = VIRTIO_GSIS.indexOf(SCI_IRQ);
  if (opts.virtioMmio > sciShared) {
    throw new VirtioConfigError(`with ACPI at most ${sciShared} virtio-mmio devices fit (IRQ ${SCI_IRQ} is the SCI; asked for ${opts.virtioMmio}); --no-acpi allows ${VIRTIO_GSIS.length}`);
  }
  const pci = opts.transport === 'pci';
  return {
    cpus: opts.cpus,
    lapicAddress: APIC_DEFAULT_BASE,
    // The MP table gives the IOAPIC the id after the last CPU's.
    ioapic: { id: opts.cpus, address: IOAPIC_DEFAULT_BASE, gsiBase: 0 },
    nmiLint: NMI_LINT,
    ecam: pci ? { base: PCI_ECAM_BASE, endBus: PCI_ECAM_SIZE / ECAM_BUS_SIZE - 1 } : undefined,
    dsdt: {
      pci: pci
        ? {
            mmio: { base: PCI_MMIO_BASE, size: PCI_MMIO_SIZE },
            conf1: { port: CONF1_ADDRESS, length: CONF1_PORTS },
            slots: DEVICES_PER_BUS,
            intxGsi: (slot, pin) => FIRST_PCI_GSI + ((slot + pin) % PCI_GSIS),
          }
        : undefined,
      serial: [{ port: COM1_PORT, irq: COM1_IRQ }],
      virtioMmio: Array.from({ length: opts.virtioMmio }, (_, i) => ({ ...virtioSlot(i), size: MMIO_WINDOW })),
    },
  };
}
