import test from 'ava';
import { GuestMemory } from '../src/memory.js';
import { loadKernel, ImageError } from '../src/loader/index.js';
import { E820_ACPI, E820_RAM, E820_RESERVED } from '../src/loader/e820.js';
import { writeAcpiTables } from '../src/loader/acpi-tables.js';
import { ACPI_ADDR } from '../src/loader/layout.js';
import { parseMpTable } from '../src/loader/mptable.js';
import { BP } from '../src/loader/boot-params.js';
import { findRsdp, readAcpiTables, type ParsedTable } from '../src/arch/x86/acpi/parse.js';
import { buildAcpiTables, checksum, FADT_SIZE } from '../src/arch/x86/acpi/tables.js';
import { eisaIdValue } from '../src/arch/x86/acpi/aml.js';
import { PM1A_CNT_PORT, PM1A_EVT_PORT, RESET_PORT, RESET_VALUE, SCI_IRQ } from '../src/arch/x86/acpi/hardware.js';
import { describeAcpiMachine } from '../src/machine-acpi.js';
import { VirtioConfigError } from '../src/devices/virtio/platform.js';
import { tinyKernelElf } from './helpers/images.js';

const MiB = 1024 * 1024;

function boot(cpus: number, transport: 'mmio' | 'pci', virtioMmio = 0, initrd?: Uint8Array) {
  const mem = GuestMemory.allocate(64 * MiB);
  const info = loadKernel(mem, { kernel: tinyKernelElf(), initrd, cmdline: 'console=ttyS0', cpus, hostDecompress: true, acpi: describeAcpiMachine({ cpus, transport, virtioMmio }) });
  return { mem, info };
}

const u8 = (t: ParsedTable, at: number) => t.bytes[at];
const u16 = (t: ParsedTable, at: number) => new DataView(t.bytes.buffer, t.bytes.byteOffset).getUint16(at, true);
const u32 = (t: ParsedTable, at: number) => new DataView(t.bytes.buffer, t.bytes.byteOffset).getUint32(at, true);
const u64 = (t: ParsedTable, at: number) => Number(new DataView(t.bytes.buffer, t.bytes.byteOffset).getBigUint64(at, true));
const has = (hay: Uint8Array, needle: Uint8Array) => Buffer.from(hay).includes(Buffer.from(needle));
const dword = (v: number) => Uint8Array.of(0x0c, v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);

/** MADT entries as [type, bytes]. */
function madtEntries(madt: ParsedTable): Array<[number, Uint8Array]> {
  const out: Array<[number, Uint8Array]> = [];
  for (let at = 44; at < madt.bytes.length; at += madt.bytes[at + 1]) {
    if (madt.bytes[at + 1] < 2) throw new Error('MADT entry of length < 2');
    out.push([madt.bytes[at], madt.bytes.subarray(at, at + madt.bytes[at + 1])]);
  }
  return out;
}

for (const cpus of [1, 2, 4, 64, 254]) {
  test(`${cpus} cpu(s): the RSDP is found by Linux's BIOS-area scan and in boot_params; every table checksums to 0; MADT has ${cpus} local APICs`, (t) => {
    const { mem, info } = boot(cpus, 'pci');
    const rsdp = findRsdp(mem);
    t.is(rsdp, ACPI_ADDR);
    t.is(rsdp! % 16, 0);
    t.is(Number(new DataView(mem.read(info.bootParams + BP.acpiRsdpAddr, 8).buffer).getBigUint64(0, true)), rsdp);
    t.is(info.acpi?.rsdp, rsdp);
    const tables = readAcpiTables(mem, rsdp!);
    t.deepEqual([...tables.keys()].sort(), ['APIC', 'DSDT', 'FACP', 'FACS', 'MCFG', 'XSDT']);
    for (const tb of tables.values()) {
      t.is(u32(tb, 4), tb.bytes.length, `${tb.signature} length`);
      if (tb.signature !== 'FACS') {
        t.is(checksum(tb.bytes), 0, `${tb.signature} checksum`);
        t.is(tb.oemId, 'KVMTS');
      }
    }
    const madt = tables.get('APIC')!;
    const entries = madtEntries(madt);
    const lapics = entries.filter(([type]) => type === 0).map(([, e]) => e);
    t.is(lapics.length, cpus);
    lapics.forEach((e, i) => {
      t.is(e[3], i, 'APIC id');
      t.is(e[4] & 1, 1, 'enabled');
    });
    // The IOAPIC and local APIC where the MP table puts them.
    const mp = parseMpTable(mem, 0x9fc00);
    t.is(u32(madt, 36), mp.lapicAddress);
    const ioapics = entries.filter(([type]) => type === 1).map(([, e]) => e);
    t.is(ioapics.length, 1);
    t.is(ioapics[0][2], mp.ioapics[0].id);
    t.is(new DataView(ioapics[0].buffer, ioapics[0].byteOffset).getUint32(4, true), mp.ioapics[0].address);
    const overrides = entries.filter(([type]) => type === 2).map(([, e]) => [e[3], new DataView(e.buffer, e.byteOffset).getUint32(4, true), new DataView(e.buffer, e.byteOffset).getUint16(8, true)]);
    t.deepEqual(overrides, [[SCI_IRQ, SCI_IRQ, 0x000d]], 'only the SCI: level, active high; ISA IRQs are identity-mapped as in the MP table');
  });
}

test('FADT: revision 6 layout, SCI 9, PM1a blocks and the reset register in 32-bit and GAS form, no SMI_CMD, X_DSDT and X_FIRMWARE_CTRL', (t) => {
  const { mem } = boot(2, 'pci');
  const tables = readAcpiTables(mem, findRsdp(mem)!);
  const f = tables.get('FACP')!;
  t.is(f.bytes.length, FADT_SIZE);
  t.is(f.revision, 6);
  t.is(u16(f, 46), SCI_IRQ);
  t.is(u32(f, 48), 0, 'no SMI_CMD: always in ACPI mode');
  t.is(u32(f, 56), PM1A_EVT_PORT);
  t.is(u32(f, 64), PM1A_CNT_PORT);
  t.is(u8(f, 88), 4);
  t.is(u8(f, 89), 2);
  t.is(u32(f, 112) & (1 << 10), 1 << 10, 'RESET_REG_SUP');
  t.is(u32(f, 112) & (1 << 4), 0, 'fixed-feature power button');
  t.deepEqual([...f.bytes.subarray(116, 120)], [1, 8, 0, 1], 'RESET_REG: system I/O, 8 bits, byte access');
  t.is(u64(f, 120), RESET_PORT);
  t.is(u8(f, 128), RESET_VALUE);
  t.is(u32(f, 36), 0);
  t.is(u32(f, 40), 0);
  t.is(u64(f, 132), tables.get('FACS')!.addr);
  t.is(tables.get('FACS')!.addr % 64, 0);
  t.is(u64(f, 140), tables.get('DSDT')!.addr);
  t.deepEqual([...f.bytes.subarray(148, 152)], [1, 32, 0, 2], 'X_PM1a_EVT_BLK');
  t.is(u64(f, 152), PM1A_EVT_PORT);
  t.deepEqual([...f.bytes.subarray(172, 176)], [1, 16, 0, 2], 'X_PM1a_CNT_BLK');
  t.is(u64(f, 176), PM1A_CNT_PORT);
});

test('MCFG: the ECAM window of segment 0, bus 0; the DSDT has PCI0 (PNP0A08/PNP0A03), COM1, \\_S5_ and no virtio-mmio device', (t) => {
  const { mem } = boot(1, 'pci');
  const tables = readAcpiTables(mem, findRsdp(mem)!);
  const m = tables.get('MCFG')!;
  t.is(m.bytes.length, 36 + 8 + 16);
  t.is(u64(m, 44), 0xe000_0000);
  t.deepEqual([u16(m, 52), u8(m, 54), u8(m, 55)], [0, 0, 0]);
  const dsdt = tables.get('DSDT')!.bytes;
  t.true(has(dsdt, Buffer.from('PCI0')));
  t.true(has(dsdt, dword(eisaIdValue('PNP0A08'))));
  t.true(has(dsdt, dword(eisaIdValue('PNP0A03'))));
  t.true(has(dsdt, dword(eisaIdValue('PNP0501'))));
  t.true(has(dsdt, Buffer.from('_S5_')));
  t.false(has(dsdt, Buffer.from('LNRO0005')));
});

test('mmio transport: no MCFG and no PCI0; one LNRO0005 device per virtio-mmio window', (t) => {
  const { mem } = boot(1, 'mmio', 3);
  const tables = readAcpiTables(mem, findRsdp(mem)!);
  t.false(tables.has('MCFG'));
  const dsdt = tables.get('DSDT')!.bytes;
  t.false(has(dsdt, Buffer.from('PCI0')));
  t.is(Buffer.from(dsdt).toString('latin1').split('LNRO0005').length - 1, 3);
  for (const name of ['VR00', 'VR01', 'VR02']) t.true(has(dsdt, Buffer.from(name)), name);
  // The windows' Memory32Fixed descriptors: 0xd0000000, 0xd0001000, 0xd0002000, 4 KiB each.
  for (const base of [0xd000_0000, 0xd000_1000, 0xd000_2000]) {
    const d = Buffer.alloc(12);
    d.set([0x86, 0x09, 0x00, 0x01]);
    d.writeUInt32LE(base, 4);
    d.writeUInt32LE(0x1000, 8);
    t.true(has(dsdt, d), `Memory32Fixed at 0x${base.toString(16)}`);
  }
});

test('with ACPI, virtio-mmio stops short of the SCI\'s IRQ 9 (a usage error, not a shared level interrupt)', (t) => {
  t.notThrows(() => describeAcpiMachine({ cpus: 1, transport: 'mmio', virtioMmio: 15 }));
  t.throws(() => describeAcpiMachine({ cpus: 1, transport: 'mmio', virtioMmio: 16 }), { instanceOf: VirtioConfigError, message: /at most 15 virtio-mmio devices/ });
});

test('e820: an ACPI range over the tables inside the reserved BIOS area, clear of RAM, the kernel, the initrd and the zero page', (t) => {
  const initrd = new Uint8Array(3 * MiB).fill(7);
  const { mem, info } = boot(4, 'pci', 0, initrd);
  const zp = mem.read(info.bootParams, 0x1000);
  const dv = new DataView(zp.buffer);
  const e820 = Array.from({ length: zp[BP.e820Entries] }, (_, i) => ({
    addr: Number(dv.getBigUint64(BP.e820Table + i * 20, true)),
    size: Number(dv.getBigUint64(BP.e820Table + i * 20 + 8, true)),
    type: dv.getUint32(BP.e820Table + i * 20 + 16, true),
  }));
  const acpi = e820.filter((e) => e.type === E820_ACPI);
  t.deepEqual(acpi, [{ addr: ACPI_ADDR, size: info.acpi!.range.size, type: E820_ACPI }]);
  const image = buildAcpiTables(describeAcpiMachine({ cpus: 4, transport: 'pci', virtioMmio: 0 }), ACPI_ADDR);
  t.true(acpi[0].size >= image.bytes.length);
  const overlaps = (a: { addr: number; size: number }, b: { addr: number; size: number }) => a.addr < b.addr + b.size && b.addr < a.addr + a.size;
  for (const e of e820.filter((x) => x.type === E820_RAM)) t.false(overlaps(e, acpi[0]), 'no RAM entry overlaps the tables');
  t.false(overlaps(acpi[0], { addr: 0x100000, size: info.kernelEnd - 0x100000 }), 'kernel');
  t.false(overlaps(acpi[0], info.initrd!), 'initrd');
  t.false(overlaps(acpi[0], { addr: info.bootParams, size: 0x1000 }), 'zero page');
  // The reserved BIOS area surrounds the ACPI range; entries stay sorted and disjoint.
  t.true(e820.some((e) => e.type === E820_RESERVED && e.addr + e.size === ACPI_ADDR));
  for (let i = 1; i < e820.length; i++) t.true(e820[i - 1].addr + e820[i - 1].size <= e820[i].addr);
});

test('without ACPI: no RSDP anywhere, boot_params.acpi_rsdp_addr 0, no ACPI e820 range (the MP-table-only machine)', (t) => {
  const mem = GuestMemory.allocate(64 * MiB);
  const info = loadKernel(mem, { kernel: tinyKernelElf(), cmdline: '', cpus: 2, hostDecompress: true });
  t.is(findRsdp(mem), undefined);
  t.is(info.acpi, undefined);
  t.deepEqual([...mem.read(info.bootParams + BP.acpiRsdpAddr, 8)], [0, 0, 0, 0, 0, 0, 0, 0]);
  t.notThrows(() => parseMpTable(mem, 0x9fc00));
});

test('placement is bounds-checked: the tables must end below 1 MiB and inside guest RAM', (t) => {
  const mem = GuestMemory.allocate(4 * MiB);
  const machine = describeAcpiMachine({ cpus: 1, transport: 'pci', virtioMmio: 0 });
  t.throws(() => writeAcpiTables(mem, machine, 0xfff00), { instanceOf: ImageError, message: /do not fit/ });
  t.throws(() => buildAcpiTables(machine, 0xe0008), { instanceOf: RangeError, message: /16-byte aligned/ });
  const tiny = GuestMemory.allocate(512 * 1024);
  t.throws(() => writeAcpiTables(tiny, machine), { instanceOf: ImageError, message: /outside guest RAM/ });
});
