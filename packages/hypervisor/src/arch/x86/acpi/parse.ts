/**
 * Reading ACPI tables back out of guest memory the way an OS finds them (for tests and
 * diagnostics): the RSDP by ACPICA's scan (tbxfroot.c: the first KiB of the EBDA the BDA points
 * to, then 0xE0000-0xFFFFF, on 16-byte boundaries, signature and checksums), then the XSDT and
 * every table it lists, each checked for its signature, length and checksum.
 */
import type { GuestMemory } from '../../../memory.js';
import { checksum, HEADER_SIZE, RSDP_SIGNATURE, RSDP_SIZE, RSDP_V1_SIZE } from './tables.js';

/** The BDA word holding the EBDA's real-mode segment. */
const BDA_EBDA_SEGMENT = 0x40e;
const EBDA_WINDOW = 0x400;
const HI_RSDP_WINDOW = { base: 0xe0000, size: 0x20000 } as const;

export class AcpiParseError extends Error {
  override name = 'AcpiParseError';
}

function validRsdp(bytes: Uint8Array): boolean {
  if (String.fromCharCode(...bytes.subarray(0, 8)) !== RSDP_SIGNATURE) return false;
  if (checksum(bytes.subarray(0, RSDP_V1_SIZE)) !== 0) return false;
  return bytes[15] < 2 || checksum(bytes.subarray(0, RSDP_SIZE)) === 0;
}

function scan(mem: GuestMemory, base: number, size: number): number | undefined {
  for (let at = base; at + RSDP_SIZE <= base + size; at += 16) {
    if (validRsdp(mem.read(at, RSDP_SIZE))) return at;
  }
  return undefined;
}

/** The RSDP's address, found as Linux finds it without boot_params.acpi_rsdp_addr. */
export function findRsdp(mem: GuestMemory): number | undefined {
  const ebda = mem.readU16(BDA_EBDA_SEGMENT) << 4;
  // ACPICA scans the EBDA only where the BDA names one above the BDA itself.
  const inEbda = ebda > 0x400 ? scan(mem, ebda, EBDA_WINDOW) : undefined;
  return inEbda ?? scan(mem, HI_RSDP_WINDOW.base, HI_RSDP_WINDOW.size);
}

export interface ParsedTable {
  signature: string;
  addr: number;
  revision: number;
  oemId: string;
  bytes: Uint8Array;
}

/** One table at `addr`: its declared length, checked; checksummed unless it is the FACS (which has none). */
export function readTable(mem: GuestMemory, addr: number, expect?: string): ParsedTable {
  const head = mem.read(addr, 8);
  const signature = String.fromCharCode(...head.subarray(0, 4));
  if (expect && signature !== expect) throw new AcpiParseError(`expected ${expect} at 0x${addr.toString(16)}, found '${signature}'`);
  const length = new DataView(head.buffer, head.byteOffset).getUint32(4, true);
  if (length < (signature === 'FACS' ? 64 : HEADER_SIZE)) throw new AcpiParseError(`${signature}: length ${length} is shorter than its header`);
  const bytes = mem.read(addr, length);
  if (signature !== 'FACS' && checksum(bytes) !== 0) throw new AcpiParseError(`${signature}: checksum is wrong`);
  return { signature, addr, revision: bytes[8], oemId: String.fromCharCode(...bytes.subarray(10, 16)).trimEnd(), bytes };
}

/** RSDP → XSDT → every table, plus the FACS and DSDT the FADT points to; by signature. */
export function readAcpiTables(mem: GuestMemory, rsdp: number): Map<string, ParsedTable> {
  const r = mem.read(rsdp, RSDP_SIZE);
  if (!validRsdp(r)) throw new AcpiParseError(`no valid RSDP at 0x${rsdp.toString(16)}`);
  const dv = new DataView(r.buffer, r.byteOffset);
  if (dv.getUint32(20, true) !== RSDP_SIZE) throw new AcpiParseError('RSDP length is not 36');
  const xsdt = readTable(mem, Number(dv.getBigUint64(24, true)), 'XSDT');
  const out = new Map<string, ParsedTable>([['XSDT', xsdt]]);
  const xv = new DataView(xsdt.bytes.buffer, xsdt.bytes.byteOffset);
  if ((xsdt.bytes.length - HEADER_SIZE) % 8 !== 0) throw new AcpiParseError('XSDT length is not a whole number of entries');
  for (let at = HEADER_SIZE; at < xsdt.bytes.length; at += 8) {
    const t = readTable(mem, Number(xv.getBigUint64(at, true)));
    if (out.has(t.signature)) throw new AcpiParseError(`XSDT lists ${t.signature} twice`);
    out.set(t.signature, t);
  }
  const fadt = out.get('FACP');
  if (fadt) {
    const fv = new DataView(fadt.bytes.buffer, fadt.bytes.byteOffset);
    out.set('FACS', readTable(mem, Number(fv.getBigUint64(132, true)), 'FACS'));
    out.set('DSDT', readTable(mem, Number(fv.getBigUint64(140, true)), 'DSDT'));
  }
  return out;
}
