/**
 * Intel MultiProcessor Specification 1.4 tables: how a guest without ACPI learns its CPUs, its
 * IOAPIC and how interrupts are wired. Layout follows the spec; the wiring matches KVM's
 * default in-kernel irqchip routing (GSI n -> IOAPIC pin n) for all 24 pins of KVM's IOAPIC, as
 * Firecracker declares them: the ISA IRQs 0-15 and pins 16-23, where virtio-mmio devices sit, all
 * with the ISA bus's conforming polarity and trigger (active high, edge), which is what an irqfd
 * without a resampler delivers.
 */
import type { GuestMemory } from '../memory.js';
import { BIOS_END, MPTABLE_ADDR } from './layout.js';
import { MAX_VCPUS } from '../vcpu/limits.js';

export const MP_FLOATING_SIGNATURE = '_MP_';
export const MP_CONFIG_SIGNATURE = 'PCMP';
export const MP_SPEC_REV = 4;
export const APIC_DEFAULT_BASE = 0xfee00000;
export const IOAPIC_DEFAULT_BASE = 0xfec00000;
export const APIC_VERSION = 0x14;
export const IOAPIC_VERSION = 0x11;

export const MP_PROCESSOR = 0;
export const MP_BUS = 1;
export const MP_IOAPIC = 2;
export const MP_INTSRC = 3;
export const MP_LINTSRC = 4;

export const MP_IRQ_INT = 0;
export const MP_IRQ_NMI = 1;
export const MP_IRQ_EXTINT = 3;

const CPU_ENABLED = 1;
const CPU_BOOTPROCESSOR = 2;
/** CPUID signature family 6 and feature bits FPU|APIC: what the entries claim about each CPU. */
const CPU_SIGNATURE = 0x600;
const CPU_FEATURES = 0x201;
/** Every input pin of KVM's in-kernel IOAPIC (KVM_IOAPIC_NUM_PINS). */
export const IOAPIC_PINS = 24;
/** 255 is the broadcast APIC id, and the IOAPIC takes id n, so at most 254 CPUs. */
export const MAX_MP_CPUS = MAX_VCPUS;

const FLOATING_SIZE = 16;
const HEADER_SIZE = 44;
const PROCESSOR_SIZE = 20;
const SMALL_ENTRY_SIZE = 8;

export function mptableSize(cpus: number): number {
  return FLOATING_SIZE + HEADER_SIZE + cpus * PROCESSOR_SIZE + SMALL_ENTRY_SIZE * (2 + IOAPIC_PINS + 2);
}

function checksumFix(bytes: Uint8Array): number {
  let sum = 0;
  for (const b of bytes) sum = (sum + b) & 0xff;
  return (0x100 - sum) & 0xff;
}

function ascii(s: string, len: number): Uint8Array {
  const out = new Uint8Array(len).fill(0x20);
  for (let i = 0; i < Math.min(len, s.length); i++) out[i] = s.charCodeAt(i);
  return out;
}

/** Writes the floating pointer at MPTABLE_ADDR and the configuration table right after it. */
export function writeMpTable(mem: GuestMemory, cpus: number, base = MPTABLE_ADDR): void {
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > MAX_MP_CPUS) {
    throw new RangeError(`cpu count must be 1..${MAX_MP_CPUS}, got ${cpus}`);
  }
  const total = mptableSize(cpus);
  if (base + total > BIOS_END) throw new RangeError(`MP table for ${cpus} cpus does not fit below 1 MiB`);
  const buf = new Uint8Array(total);
  const dv = new DataView(buf.buffer);
  const configAddr = base + FLOATING_SIZE;

  // MP floating pointer structure.
  buf.set(ascii(MP_FLOATING_SIGNATURE, 4), 0);
  dv.setUint32(4, configAddr, true);
  buf[8] = 1; // length in 16-byte units
  buf[9] = MP_SPEC_REV;
  // feature bytes all 0: a configuration table is present; virtual-wire interrupt mode (no IMCR).
  buf[10] = checksumFix(buf.subarray(0, FLOATING_SIZE));

  const cfg = FLOATING_SIZE;
  buf.set(ascii(MP_CONFIG_SIGNATURE, 4), cfg);
  buf[cfg + 6] = MP_SPEC_REV;
  buf.set(ascii('KVM-TS', 8), cfg + 8);
  buf.set(ascii('000000000000', 12), cfg + 16);
  dv.setUint32(cfg + 36, APIC_DEFAULT_BASE, true);

  let p = cfg + HEADER_SIZE;
  let entries = 0;
  for (let cpu = 0; cpu < cpus; cpu++) {
    buf[p] = MP_PROCESSOR;
    buf[p + 1] = cpu; // local APIC id
    buf[p + 2] = APIC_VERSION;
    buf[p + 3] = CPU_ENABLED | (cpu === 0 ? CPU_BOOTPROCESSOR : 0);
    dv.setUint32(p + 4, CPU_SIGNATURE, true);
    dv.setUint32(p + 8, CPU_FEATURES, true);
    p += PROCESSOR_SIZE;
    entries++;
  }
  buf[p] = MP_BUS;
  buf[p + 1] = 0;
  buf.set(ascii('ISA', 6), p + 2);
  p += SMALL_ENTRY_SIZE;
  entries++;

  const ioapicId = cpus;
  buf[p] = MP_IOAPIC;
  buf[p + 1] = ioapicId;
  buf[p + 2] = IOAPIC_VERSION;
  buf[p + 3] = 1; // enabled
  dv.setUint32(p + 4, IOAPIC_DEFAULT_BASE, true);
  p += SMALL_ENTRY_SIZE;
  entries++;

  for (let irq = 0; irq < IOAPIC_PINS; irq++) {
    buf[p] = MP_INTSRC;
    buf[p + 1] = MP_IRQ_INT;
    dv.setUint16(p + 2, 0, true); // polarity and trigger conform to the ISA bus
    buf[p + 4] = 0; // source bus: ISA
    buf[p + 5] = irq;
    buf[p + 6] = ioapicId;
    buf[p + 7] = irq; // IOAPIC input pin
    p += SMALL_ENTRY_SIZE;
    entries++;
  }
  // LINT0 takes the legacy PIC's output (ExtINT) on the BSP; LINT1 is NMI on every CPU.
  for (const [irqType, destApic, lint] of [
    [MP_IRQ_EXTINT, 0, 0],
    [MP_IRQ_NMI, 0xff, 1],
  ] as const) {
    buf[p] = MP_LINTSRC;
    buf[p + 1] = irqType;
    dv.setUint16(p + 2, 0, true);
    buf[p + 4] = 0;
    buf[p + 5] = 0;
    buf[p + 6] = destApic;
    buf[p + 7] = lint;
    p += SMALL_ENTRY_SIZE;
    entries++;
  }

  dv.setUint16(cfg + 4, total - FLOATING_SIZE, true);
  dv.setUint16(cfg + 34, entries, true);
  buf[cfg + 7] = checksumFix(buf.subarray(cfg, total));
  mem.write(base, buf);
}

export interface ParsedMpTable {
  configAddr: number;
  cpus: Array<{ apicId: number; enabled: boolean; bsp: boolean }>;
  buses: Array<{ id: number; type: string }>;
  ioapics: Array<{ id: number; address: number }>;
  intsrc: Array<{ irqType: number; bus: number; irq: number; apic: number; pin: number }>;
  lintsrc: Array<{ irqType: number; apic: number; lint: number }>;
  lapicAddress: number;
}

/** Reads back an MP table (for tests and diagnostics); checks signatures, lengths and checksums. */
export function parseMpTable(mem: GuestMemory, floatingAddr: number): ParsedMpTable {
  const sum = (a: Uint8Array) => a.reduce((s, b) => (s + b) & 0xff, 0);
  const fp = mem.read(floatingAddr, FLOATING_SIZE);
  if (String.fromCharCode(...fp.subarray(0, 4)) !== MP_FLOATING_SIGNATURE) throw new Error('no _MP_ signature');
  if (sum(fp) !== 0) throw new Error('MP floating pointer checksum is wrong');
  const configAddr = new DataView(fp.buffer).getUint32(4, true);
  const hdr = mem.read(configAddr, HEADER_SIZE);
  const hv = new DataView(hdr.buffer);
  if (String.fromCharCode(...hdr.subarray(0, 4)) !== MP_CONFIG_SIGNATURE) throw new Error('no PCMP signature');
  const len = hv.getUint16(4, true);
  const table = mem.read(configAddr, len);
  if (sum(table) !== 0) throw new Error('MP configuration table checksum is wrong');
  const out: ParsedMpTable = { configAddr, cpus: [], buses: [], ioapics: [], intsrc: [], lintsrc: [], lapicAddress: hv.getUint32(36, true) };
  const tv = new DataView(table.buffer);
  let p = HEADER_SIZE;
  const count = hv.getUint16(34, true);
  for (let i = 0; i < count; i++) {
    const type = table[p];
    if (type === MP_PROCESSOR) {
      out.cpus.push({ apicId: table[p + 1], enabled: (table[p + 3] & 1) !== 0, bsp: (table[p + 3] & 2) !== 0 });
      p += PROCESSOR_SIZE;
      continue;
    }
    if (type === MP_BUS) out.buses.push({ id: table[p + 1], type: String.fromCharCode(...table.subarray(p + 2, p + 8)).trim() });
    else if (type === MP_IOAPIC) out.ioapics.push({ id: table[p + 1], address: tv.getUint32(p + 4, true) });
    else if (type === MP_INTSRC) out.intsrc.push({ irqType: table[p + 1], bus: table[p + 4], irq: table[p + 5], apic: table[p + 6], pin: table[p + 7] });
    else if (type === MP_LINTSRC) out.lintsrc.push({ irqType: table[p + 1], apic: table[p + 6], lint: table[p + 7] });
    else throw new Error(`unknown MP entry type ${type}`);
    p += SMALL_ENTRY_SIZE;
  }
  if (p !== len) throw new Error(`MP table length ${len} does not match its entries (${p})`);
  return out;
}
