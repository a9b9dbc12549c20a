/**
 * The ACPI tables of the x86 machine (ACPI 6.5 chapter 5), generated from a description of it like
 * the MP table: RSDP → XSDT → FADT (→ FACS, DSDT), MADT and, with a PCI bus, MCFG. Classic (not
 * hardware-reduced) fixed hardware: an SCI on IRQ 9, PM1a event and control blocks, a reset
 * register, a fixed-feature power button, no SMI_CMD (the machine is always in ACPI mode). Laid out
 * as one image at a given guest-physical base, each table checksummed.
 */
import { littleEndian } from './aml.js';
import { dsdtAml, type DsdtInput } from './dsdt.js';
import { PM1_CNT_LEN, PM1_EVT_LEN, PM1A_CNT_PORT, PM1A_EVT_PORT, RESET_PORT, RESET_VALUE, SCI_IRQ } from './hardware.js';

export const OEM_ID = 'KVMTS';
export const OEM_REVISION = 1;
export const CREATOR_ID = 'KVMT';
export const CREATOR_REVISION = 1;
export const RSDP_SIGNATURE = 'RSD PTR ';
export const RSDP_SIZE = 36;
/** The ACPI 1.0 part of the RSDP, which the first checksum covers. */
export const RSDP_V1_SIZE = 20;
export const HEADER_SIZE = 36;
export const FADT_SIZE = 276;
export const FACS_SIZE = 64;

/** Table revisions of ACPI 6.5. */
const REVISION = { XSDT: 1, FADT: 6, FADT_MINOR: 5, MADT: 5, MCFG: 1, DSDT: 2, FACS: 2, RSDP: 2 } as const;

/** §5.2.3.2 Generic Address Structure address spaces and access sizes. */
const GAS_SYSTEM_IO = 1;
const ACCESS_BYTE = 1;
const ACCESS_WORD = 2;
/** §5.2.9 FADT flags. */
const FADT_WBINVD = 1 << 0;
const FADT_SLP_BUTTON = 1 << 5;
const FADT_RESET_REG_SUP = 1 << 10;
/** IA-PC boot architecture flags: legacy ISA devices, an i8042, no VGA. */
const BOOT_ARCH_LEGACY_DEVICES = 1 << 0;
const BOOT_ARCH_8042 = 1 << 1;
const BOOT_ARCH_VGA_NOT_PRESENT = 1 << 2;
/** Preferred_PM_Profile: unspecified. */
const PM_PROFILE_UNSPECIFIED = 0;

/** §5.2.12 MADT. */
const MADT_PCAT_COMPAT = 1 << 0;
const MADT_LOCAL_APIC = 0;
const MADT_IOAPIC = 1;
const MADT_INTERRUPT_OVERRIDE = 2;
const MADT_LOCAL_APIC_NMI = 4;
const LOCAL_APIC_ENABLED = 1;
/** MPS INTI flags: polarity bits 1-0 (01 active high), trigger bits 3-2 (11 level). */
const INTI_ACTIVE_HIGH = 0x1;
const INTI_LEVEL = 0x3 << 2;
const ALL_PROCESSORS = 0xff;
const ISA_BUS = 0;

export interface AcpiMachine {
  cpus: number;
  lapicAddress: number;
  ioapic: { id: number; address: number; gsiBase: number };
  /** The LINT pin of every local APIC that takes NMI. */
  nmiLint: number;
  /** With a PCI bus: its ECAM window (segment 0, from bus 0) for MCFG, and the root bridge for the DSDT. */
  ecam?: { base: number; endBus: number };
  dsdt: DsdtInput;
}

export interface AcpiTable {
  signature: string;
  addr: number;
  bytes: Uint8Array;
}

export interface AcpiImage {
  base: number;
  /** Every byte from `base`, tables and the alignment between them. */
  bytes: Uint8Array;
  rsdp: number;
  /** RSDP first, then in address order; the RSDP's entry has signature 'RSD PTR '. */
  tables: AcpiTable[];
}

function ascii(s: string, len: number, pad = 0x20): Uint8Array {
  const out = new Uint8Array(len).fill(pad);
  for (let i = 0; i < Math.min(len, s.length); i++) out[i] = s.charCodeAt(i);
  return out;
}

export function checksum(bytes: Uint8Array): number {
  return bytes.reduce((s, b) => (s + b) & 0xff, 0);
}

/** Sets byte `at` so that `bytes` sum to 0 mod 256. */
function fixChecksum(bytes: Uint8Array, at: number, end = bytes.length): void {
  bytes[at] = 0;
  bytes[at] = (0x100 - checksum(bytes.subarray(0, end))) & 0xff;
}

/** §5.2.6 system description table header around `body`, checksummed. */
export function sdt(signature: string, revision: number, body: Uint8Array): Uint8Array {
  const t = new Uint8Array(HEADER_SIZE + body.length);
  const dv = new DataView(t.buffer);
  t.set(ascii(signature, 4), 0);
  dv.setUint32(4, t.length, true);
  t[8] = revision;
  t.set(ascii(OEM_ID, 6), 10);
  t.set(ascii(`${OEM_ID}${signature}`, 8), 16);
  dv.setUint32(24, OEM_REVISION, true);
  t.set(ascii(CREATOR_ID, 4), 28);
  dv.setUint32(32, CREATOR_REVISION, true);
  t.set(body, HEADER_SIZE);
  fixChecksum(t, 9);
  return t;
}

/** §5.2.3.2 a Generic Address Structure for an I/O port register of `bits` bits. */
function ioGas(dv: DataView, at: number, port: number, bits: number, access: number): void {
  dv.setUint8(at, GAS_SYSTEM_IO);
  dv.setUint8(at + 1, bits);
  dv.setUint8(at + 2, 0);
  dv.setUint8(at + 3, access);
  dv.setBigUint64(at + 4, BigInt(port), true);
}

/** §5.2.9 FADT, revision 6 layout (276 bytes). Offsets are the table's, header included. */
function fadt(facs: number, dsdt: number): Uint8Array {
  const body = new Uint8Array(FADT_SIZE - HEADER_SIZE);
  const dv = new DataView(body.buffer);
  const f = (offset: number) => offset - HEADER_SIZE;
  // FIRMWARE_CTRL (36) and DSDT (40) stay 0: the X_ fields (132, 140) carry the addresses.
  dv.setUint8(f(45), PM_PROFILE_UNSPECIFIED);
  dv.setUint16(f(46), SCI_IRQ, true);
  // SMI_CMD (48), ACPI_ENABLE/DISABLE (52, 53) stay 0: there is no legacy mode to leave.
  dv.setUint32(f(56), PM1A_EVT_PORT, true);
  dv.setUint32(f(64), PM1A_CNT_PORT, true);
  dv.setUint8(f(88), PM1_EVT_LEN);
  dv.setUint8(f(89), PM1_CNT_LEN);
  // No PM timer, GPE blocks or C-states: P_LVL2/3_LAT above 100/1000 say C2/C3 are unsupported.
  dv.setUint16(f(96), 101, true);
  dv.setUint16(f(98), 1001, true);
  dv.setUint16(f(109), BOOT_ARCH_LEGACY_DEVICES | BOOT_ARCH_8042 | BOOT_ARCH_VGA_NOT_PRESENT, true);
  // PWR_BUTTON (bit 4) clear: the power button is the fixed feature in PM1; no sleep button.
  dv.setUint32(f(112), FADT_WBINVD | FADT_SLP_BUTTON | FADT_RESET_REG_SUP, true);
  ioGas(dv, f(116), RESET_PORT, 8, ACCESS_BYTE);
  dv.setUint8(f(128), RESET_VALUE);
  dv.setUint8(f(131), REVISION.FADT_MINOR);
  dv.setBigUint64(f(132), BigInt(facs), true);
  dv.setBigUint64(f(140), BigInt(dsdt), true);
  ioGas(dv, f(148), PM1A_EVT_PORT, PM1_EVT_LEN * 8, ACCESS_WORD);
  ioGas(dv, f(172), PM1A_CNT_PORT, PM1_CNT_LEN * 8, ACCESS_WORD);
  return sdt('FACP', REVISION.FADT, body);
}

/** §5.2.10 FACS: no checksum, no header of the usual kind; 64-byte aligned. */
function facsTable(): Uint8Array {
  const t = new Uint8Array(FACS_SIZE);
  const dv = new DataView(t.buffer);
  t.set(ascii('FACS', 4), 0);
  dv.setUint32(4, FACS_SIZE, true);
  t[32] = REVISION.FACS;
  return t;
}

/** §5.2.12 MADT: one enabled local APIC per vCPU (ids 0..n-1), the IOAPIC, the SCI's override and LINT NMI. */
function madt(m: AcpiMachine): Uint8Array {
  const entries: number[][] = [];
  for (let cpu = 0; cpu < m.cpus; cpu++) entries.push([MADT_LOCAL_APIC, 8, cpu, cpu, ...littleEndian(LOCAL_APIC_ENABLED, 4)]);
  entries.push([MADT_IOAPIC, 12, m.ioapic.id, 0, ...littleEndian(m.ioapic.address, 4), ...littleEndian(m.ioapic.gsiBase, 4)]);
  // ISA IRQs map to GSIs 0-15 one to one (KVM's default routing, which the MP table states too: the
  // PIT is on GSI 0), so only the SCI needs an override: level, active high (§5.2.12.5).
  entries.push([MADT_INTERRUPT_OVERRIDE, 10, ISA_BUS, SCI_IRQ, ...littleEndian(SCI_IRQ, 4), ...littleEndian(INTI_ACTIVE_HIGH | INTI_LEVEL, 2)]);
  entries.push([MADT_LOCAL_APIC_NMI, 6, ALL_PROCESSORS, ...littleEndian(0, 2), m.nmiLint]);
  const head = [...littleEndian(m.lapicAddress, 4), ...littleEndian(MADT_PCAT_COMPAT, 4)];
  return sdt('APIC', REVISION.MADT, Uint8Array.from([...head, ...entries.flat()]));
}

/** PCI Firmware spec 3.2 §4.1.2 MCFG: 8 reserved bytes, then one allocation for segment 0. */
function mcfg(ecam: NonNullable<AcpiMachine['ecam']>): Uint8Array {
  const body = new Uint8Array(8 + 16);
  const dv = new DataView(body.buffer);
  dv.setBigUint64(8, BigInt(ecam.base), true);
  dv.setUint16(16, 0, true);
  body[18] = 0;
  body[19] = ecam.endBus;
  return sdt('MCFG', REVISION.MCFG, body);
}

function xsdt(addrs: readonly number[]): Uint8Array {
  return sdt('XSDT', REVISION.XSDT, Uint8Array.from(addrs.flatMap((a) => littleEndian(BigInt(a), 8))));
}

/** §5.2.5.3 RSDP v2: the first checksum over 20 bytes, the extended one over all 36; no RSDT. */
function rsdpStructure(xsdtAddr: number): Uint8Array {
  const t = new Uint8Array(RSDP_SIZE);
  const dv = new DataView(t.buffer);
  t.set(ascii(RSDP_SIGNATURE, 8), 0);
  t.set(ascii(OEM_ID, 6), 9);
  t[15] = REVISION.RSDP;
  dv.setUint32(20, RSDP_SIZE, true);
  dv.setBigUint64(24, BigInt(xsdtAddr), true);
  fixChecksum(t, 8, RSDP_V1_SIZE);
  fixChecksum(t, 32);
  return t;
}


const align = (v: number, a: number) => Math.ceil(v / a) * a;

/**
 * Every table laid out from `base` (16-byte aligned, so the RSDP at `base` is where a scan of the
 * BIOS area looks): RSDP, FACS (64-byte aligned), DSDT, FADT, MADT, MCFG, XSDT.
 */
export function buildAcpiTables(m: AcpiMachine, base: number): AcpiImage {
  if (base % 16 !== 0) throw new RangeError(`the RSDP must be 16-byte aligned, got base 0x${base.toString(16)}`);
  if (!Number.isInteger(m.cpus) || m.cpus < 1 || m.cpus > 0xff) throw new RangeError(`cpu count must be 1..255, got ${m.cpus}`);
  const tables: AcpiTable[] = [];
  let at = base;
  const place = (signature: string, bytes: Uint8Array, alignment = 16) => {
    const addr = align(at, alignment);
    tables.push({ signature, addr, bytes });
    at = addr + bytes.length;
    return addr;
  };
  // The RSDP needs the XSDT's address and the XSDT everyone else's: reserve its place, fill it last.
  place(RSDP_SIGNATURE, new Uint8Array(RSDP_SIZE));
  const facs = place('FACS', facsTable(), 64);
  const dsdt = place('DSDT', sdt('DSDT', REVISION.DSDT, dsdtAml(m.dsdt)));
  const described = [place('FACP', fadt(facs, dsdt)), place('APIC', madt(m))];
  if (m.ecam) described.push(place('MCFG', mcfg(m.ecam)));
  const xsdtAddr = place('XSDT', xsdt(described));
  tables[0].bytes = rsdpStructure(xsdtAddr);

  const bytes = new Uint8Array(at - base);
  for (const t of tables) bytes.set(t.bytes, t.addr - base);
  return { base, bytes, rsdp: base, tables };
}
