/**
 * The DSDT's AML (ACPI 6.5 §5.2.11.1): the devices a guest cannot find by probing. \_SB holds the
 * PCI root bridge (when the machine has the bus), COM1 and one LNRO0005 device per virtio-mmio
 * window (the id Linux's virtio_mmio driver matches, drivers/virtio/virtio_mmio.c); \_S5_ gives
 * the SLP_TYP of soft-off. Every object is a Name: nothing for the guest to run.
 */
import { concat, device, eisaId, integer, name, pkg, scope, string } from './aml.js';
import { SLP_TYP_S5 } from './hardware.js';
import { dwordMemory, extendedInterrupt, io, irqNoFlags, memory32Fixed, RESOURCE_BUS, RESOURCE_IO, resourceTemplate, wordAddress } from './resources.js';

export interface AcpiPciHost {
  /** The 32-bit MMIO window the VMM places BARs in. */
  mmio: { base: number; size: number };
  /** conf1's ports, which the bridge consumes rather than forwards. */
  conf1: { port: number; length: number };
  /** GSI of INTx pin `pin` (0 = INTA) of device `slot`. */
  intxGsi(slot: number, pin: number): number;
  /** Device numbers on bus 0 that may hold a function (the _PRT describes them). */
  slots: number;
}

export interface AcpiSerialPort {
  port: number;
  irq: number;
}

export interface AcpiMmioDevice {
  base: number;
  size: number;
  gsi: number;
}

export interface DsdtInput {
  pci?: AcpiPciHost;
  serial: AcpiSerialPort[];
  virtioMmio: AcpiMmioDevice[];
}

/** The PCI Firmware spec's _PRT entry address: the device in the high word, any function (0xFFFF). */
const PRT_ANY_FUNCTION = 0xffff;
const INTX_PINS = 4;
const IO_SPACE_END = 0xffff;

/** PNP0A08 (PCI Express root bridge), compatible with PNP0A03: bus 0 only, windows for I/O and the MMIO hole. */
function pciRootBridge(pci: AcpiPciHost): Uint8Array {
  const conf1End = pci.conf1.port + pci.conf1.length;
  const prt = [];
  for (let slot = 1; slot < pci.slots; slot++) {
    for (let pin = 0; pin < INTX_PINS; pin++) {
      // Source 0: the last element is a GSI, not a link device (§6.2.13).
      prt.push(pkg([integer(slot * 0x10000 + PRT_ANY_FUNCTION), integer(pin), integer(0), integer(pci.intxGsi(slot, pin))]));
    }
  }
  return device('PCI0', [
    name('_HID', eisaId('PNP0A08')),
    name('_CID', eisaId('PNP0A03')),
    name('_SEG', integer(0)),
    name('_BBN', integer(0)),
    name('_UID', integer(0)),
    name(
      '_CRS',
      resourceTemplate([
        wordAddress(RESOURCE_BUS, 0, 0),
        // All I/O ports but conf1's, which the bridge itself decodes.
        wordAddress(RESOURCE_IO, 0, pci.conf1.port - 1),
        io(pci.conf1.port, pci.conf1.port, 1, pci.conf1.length),
        wordAddress(RESOURCE_IO, conf1End, IO_SPACE_END),
        dwordMemory(pci.mmio.base, pci.mmio.base + pci.mmio.size - 1),
      ]),
    ),
    name('_PRT', pkg(prt)),
  ]);
}

/** PNP0501, a 16550-compatible UART. */
function serialPort(uart: AcpiSerialPort, index: number): Uint8Array {
  return device(`COM${index + 1}`, [
    name('_HID', eisaId('PNP0501')),
    name('_UID', integer(index + 1)),
    name('_CRS', resourceTemplate([io(uart.port, uart.port, 0, 8), irqNoFlags(uart.irq)])),
  ]);
}

/** One virtio-mmio window with its interrupt: an edge per notification, as the irqfd delivers it. */
function virtioMmio(dev: AcpiMmioDevice, index: number): Uint8Array {
  return device(`VR${index.toString(16).toUpperCase().padStart(2, '0')}`, [
    name('_HID', string('LNRO0005')),
    name('_UID', integer(index)),
    name('_CRS', resourceTemplate([memory32Fixed(dev.base, dev.size), extendedInterrupt(dev.gsi, { edge: true, activeLow: false })])),
  ]);
}

/** The DSDT's definition block body (the AML after the table header). */
export function dsdtAml(input: DsdtInput): Uint8Array {
  if (input.virtioMmio.length > 0xff) throw new RangeError('at most 255 virtio-mmio devices have a DSDT name');
  const sb = [...(input.pci ? [pciRootBridge(input.pci)] : []), ...input.serial.map(serialPort), ...input.virtioMmio.map(virtioMmio)];
  // \_S5_: SLP_TYPa, SLP_TYPb, and two reserved elements (§7.4.2).
  return concat([scope('\\_SB', sb), name('\\_S5', pkg([integer(SLP_TYP_S5), integer(SLP_TYP_S5), integer(0), integer(0)]))]);
}
