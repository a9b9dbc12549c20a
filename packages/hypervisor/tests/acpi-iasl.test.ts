import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildAcpiTables, type AcpiImage } from '../src/arch/x86/acpi/tables.js';
import { describeAcpiMachine } from '../src/machine-acpi.js';
import { ACPI_ADDR } from '../src/loader/layout.js';
import { testIasl } from '../src/test-tools.js';
import { testNeeding } from './helpers/prerequisite.js';

/**
 * An independent reader of the tables: ACPICA's iasl (Debian's acpica-tools, fetched by the fetch
 * step) disassembles each one without an error, shows what the machine has, and — recompiling its
 * own disassembly with optimizations off — gives back the very bytes we generated (only the
 * header's checksum and compiler id are its own, and the End Tags' checksums: iasl writes 0, "treat
 * as valid" per ACPI 6.5 §6.4.2.9, where we write the sum; acpi-aml.test.ts checks ours).
 */
const iasl = testIasl();
const missing = iasl ? undefined : 'iasl (acpica-tools) is not on PATH or in the user cache; `npm run fetch` fetches it';

function disassemble(image: AcpiImage): { dir: string; dsl: Map<string, string>; log: string } {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-acpi-'));
  const dsl = new Map<string, string>();
  let log = '';
  for (const t of image.tables) {
    if (t.signature === 'RSD PTR ') continue;
    const file = join(dir, `${t.signature.toLowerCase()}.dat`);
    writeFileSync(file, t.bytes);
    log += execFileSync(iasl!, ['-d', file], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    dsl.set(t.signature, readFileSync(file.replace(/\.dat$/, '.dsl'), 'utf8'));
  }
  return { dir, dsl, log };
}

/** Header bytes iasl writes itself: the checksum (9) and the compiler id and revision (28-35). */
function withoutCompilerBytes(b: Uint8Array): Buffer {
  const c = Buffer.from(b);
  c[9] = 0;
  c.fill(0, 28, 36);
  return c;
}

/** Ours with the End Tag checksums zeroed where iasl's End Tag (0x79) has its 0. */
function endTagsAsIasl(ours: Buffer, iaslBytes: Buffer): Buffer {
  const c = Buffer.from(ours);
  for (let i = 1; i < c.length && i < iaslBytes.length; i++) {
    if (iaslBytes[i - 1] === 0x79 && iaslBytes[i] === 0 && c[i - 1] === 0x79) c[i] = 0;
  }
  return c;
}

for (const transport of ['pci', 'mmio'] as const) {
  testNeeding(missing, `iasl -d reads the ${transport} machine's DSDT, FADT, MADT${transport === 'pci' ? ', MCFG' : ''} without an error, and its recompiled disassembly is our bytes`, (t) => {
    const image = buildAcpiTables(describeAcpiMachine({ cpus: 3, transport, virtioMmio: transport === 'mmio' ? 2 : 0 }), ACPI_ADDR);
    const { dir, dsl, log } = disassemble(image);
    try {
      t.notRegex(log, /\bError\b|\bWarning\b/i);
      const dsdt = dsl.get('DSDT')!;
      t.regex(dsdt, /Name \(\\_S5, Package \(0x04\)/);
      t.regex(dsdt, /EisaId \("PNP0501"\)/);
      t.regex(dsdt, /0x03F8,\s+\/\/ Range Minimum/);
      t.regex(dsdt, /IRQNoFlags \(\)\s+\{4\}/);
      if (transport === 'pci') {
        t.regex(dsdt, /Device \(PCI0\)/);
        t.regex(dsdt, /EisaId \("PNP0A08"\)/);
        t.regex(dsdt, /EisaId \("PNP0A03"\)/);
        t.regex(dsdt, /WordBusNumber \(ResourceProducer/);
        t.regex(dsdt, /0xC0000000,\s+\/\/ Range Minimum/);
        t.regex(dsdt, /0xCFFFFFFF,\s+\/\/ Range Maximum/);
        t.regex(dsdt, /_PRT: PCI Routing Table/);
        t.notRegex(dsdt, /LNRO0005/);
        t.regex(dsl.get('MCFG')!, /Base Address : 00000000E0000000/);
        t.regex(dsl.get('MCFG')!, /End Bus Number : 00/);
      } else {
        t.is(dsdt.split('Name (_HID, "LNRO0005")').length - 1, 2);
        t.regex(dsdt, /0xD0001000,\s+\/\/ Address Base/);
        t.regex(dsdt, /Interrupt \(ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, \)\s+\{\s+0x00000011,/);
        t.notRegex(dsdt, /PCI0/);
      }
      const fadt = dsl.get('FACP')!;
      t.regex(fadt, /Revision : 06/);
      t.regex(fadt, /SCI Interrupt : 0009/);
      t.regex(fadt, /PM1A Event Block Address : 00000600/);
      t.regex(fadt, /PM1A Control Block Address : 00000604/);
      t.regex(fadt, /Reset Register Supported \(V2\) : 1/);
      t.regex(fadt, /Value to cause reset : 0E/);
      const madt = dsl.get('APIC')!;
      t.is(madt.split('[Processor Local APIC]').length - 1, 3);
      t.regex(madt, /I\/O Apic ID : 03/);
      t.regex(madt, /Address : FEC00000/);

      // The same bytes back, table by table.
      for (const tb of image.tables) {
        if (tb.signature === 'RSD PTR ' || tb.signature === 'FACS') continue;
        const name = tb.signature.toLowerCase();
        execFileSync(iasl!, ['-oa', '-p', join(dir, `re-${name}`), join(dir, `${name}.dsl`)], { cwd: dir, stdio: 'ignore' });
        const theirs = withoutCompilerBytes(readFileSync(join(dir, `re-${name}.aml`)));
        t.deepEqual(theirs, endTagsAsIasl(withoutCompilerBytes(tb.bytes), theirs), `${tb.signature} recompiled`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
