/**
 * An encoder for the small part of ACPI Machine Language a static DSDT needs (ACPI 6.5 §20.2, the
 * AML grammar, and §6.4, resource descriptors): names, integers, strings, packages, buffers, Name,
 * Scope, Device, EISAID and the ResourceTemplate descriptors of a root bridge, a UART and
 * virtio-mmio windows. No methods: every object the guest evaluates is a constant. Each encoder
 * returns the bytes of one term, so a table is a tree of calls.
 */

/** §20.2.3 data objects and §20.2.5 term objects: the opcodes used here. */
export const OP = {
  Zero: 0x00,
  One: 0x01,
  Name: 0x08,
  BytePrefix: 0x0a,
  WordPrefix: 0x0b,
  DWordPrefix: 0x0c,
  StringPrefix: 0x0d,
  QWordPrefix: 0x0e,
  Scope: 0x10,
  Buffer: 0x11,
  Package: 0x12,
  ExtPrefix: 0x5b,
  Device: 0x82,
  Ones: 0xff,
} as const;

/** §20.2.2 name prefixes. */
const ROOT_CHAR = 0x5c;
const PARENT_PREFIX = 0x5e;
const DUAL_NAME_PREFIX = 0x2e;
const MULTI_NAME_PREFIX = 0x2f;
const NULL_NAME = 0x00;

/** §20.2.4: a PkgLength counts its own bytes; 1 byte holds 6 bits, 2-4 bytes 4 + 8·(n-1) bits. */
export const PKG_LENGTH_MAX = 2 ** 28 - 1;
const PKG_LENGTH_LIMITS = [2 ** 6, 2 ** 12, 2 ** 20, 2 ** 28] as const;

export class AmlError extends Error {
  override name = 'AmlError';
}

export function concat(parts: ReadonlyArray<Uint8Array | readonly number[]>): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The PkgLength encoding of `value` (which already includes the encoding's own bytes), in the fewest bytes. */
export function encodePkgLength(value: number): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > PKG_LENGTH_MAX) throw new AmlError(`PkgLength ${value} is outside 0..${PKG_LENGTH_MAX}`);
  if (value < PKG_LENGTH_LIMITS[0]) return Uint8Array.of(value);
  const follow = PKG_LENGTH_LIMITS.findIndex((limit) => value < limit);
  const out = new Uint8Array(follow + 1);
  // Lead byte: bits 7-6 the count of bytes that follow, bits 3-0 the least significant nibble.
  out[0] = (follow << 6) | (value & 0x0f);
  for (let i = 1; i <= follow; i++) out[i] = Math.floor(value / 2 ** (4 + 8 * (i - 1))) & 0xff;
  return out;
}

/** Reads a PkgLength at `at`: its value and how many bytes it took. */
export function decodePkgLength(bytes: Uint8Array, at = 0): { value: number; size: number } {
  const lead = bytes[at];
  if (lead === undefined) throw new AmlError('PkgLength runs past the end');
  const follow = lead >> 6;
  if (follow === 0) return { value: lead & 0x3f, size: 1 };
  if (lead & 0x30) throw new AmlError('PkgLength lead byte has bits 5-4 set with following bytes');
  let value = lead & 0x0f;
  for (let i = 1; i <= follow; i++) {
    const b = bytes[at + i];
    if (b === undefined) throw new AmlError('PkgLength runs past the end');
    value += b * 2 ** (4 + 8 * (i - 1));
  }
  return { value, size: follow + 1 };
}

/** PkgLength + `body`: the smallest encoding whose value (its own bytes + the body) still fits it. */
export function withPkgLength(body: Uint8Array): Uint8Array {
  for (let n = 1; n <= 4; n++) {
    if (body.length + n < PKG_LENGTH_LIMITS[n - 1]) return concat([encodePkgLength(body.length + n), body]);
  }
  throw new AmlError(`a package of ${body.length} bytes is too long for a PkgLength`);
}

/** §20.2.2 NameSeg: 4 characters, a leading A-Z or '_', then A-Z, 0-9 or '_'; shorter ones are '_'-padded. */
export function nameSeg(seg: string): Uint8Array {
  if (!/^[A-Z_][A-Z0-9_]{0,3}$/.test(seg)) throw new AmlError(`'${seg}' is not an ACPI name segment`);
  return Uint8Array.from(seg.padEnd(4, '_'), (c) => c.charCodeAt(0));
}

/** §20.2.2 NameString: an optional '\' or '^'s, then no segment, one, two (DualNamePrefix) or more (MultiNamePrefix). */
export function nameString(path: string): Uint8Array {
  const m = /^(\\|\^*)(.*)$/.exec(path)!;
  const prefix = Array.from(m[1], (c) => (c === '\\' ? ROOT_CHAR : PARENT_PREFIX));
  const segs = m[2] === '' ? [] : m[2].split('.').map(nameSeg);
  if (segs.length > 255) throw new AmlError(`name '${path}' has more than 255 segments`);
  const body =
    segs.length === 0 ? [Uint8Array.of(NULL_NAME)] : segs.length === 1 ? segs : segs.length === 2 ? [Uint8Array.of(DUAL_NAME_PREFIX), ...segs] : [Uint8Array.of(MULTI_NAME_PREFIX, segs.length), ...segs];
  return concat([prefix, ...body]);
}

/** The low `bytes` bytes of `value`, least significant first (AML and every ACPI table are little-endian). */
export function littleEndian(value: number | bigint, bytes: number): number[] {
  const v = BigInt(value);
  return Array.from({ length: bytes }, (_, i) => Number((v >> BigInt(8 * i)) & 0xffn));
}

/** §20.2.3 ComputationalData: Zero, One, or the shortest of Byte/Word/DWord/QWord constants. */
export function integer(value: number | bigint): Uint8Array {
  const v = BigInt(value);
  if (v < 0n || v > 0xffff_ffff_ffff_ffffn) throw new AmlError(`integer ${value} does not fit 64 bits`);
  if (v === 0n) return Uint8Array.of(OP.Zero);
  if (v === 1n) return Uint8Array.of(OP.One);
  if (v <= 0xffn) return Uint8Array.of(OP.BytePrefix, Number(v));
  if (v <= 0xffffn) return Uint8Array.of(OP.WordPrefix, ...littleEndian(v, 2));
  if (v <= 0xffff_ffffn) return Uint8Array.of(OP.DWordPrefix, ...littleEndian(v, 4));
  return Uint8Array.of(OP.QWordPrefix, ...littleEndian(v, 8));
}

/** §20.2.3 String: ASCII 0x01-0x7F, NUL-terminated. */
export function string(text: string): Uint8Array {
  if (!/^[\x01-\x7f]*$/.test(text)) throw new AmlError(`string '${text}' has characters outside ASCII 0x01-0x7F`);
  return concat([[OP.StringPrefix], Uint8Array.from(text, (c) => c.charCodeAt(0)), [0]]);
}

/** §20.2.5.4 DefBuffer: BufferOp PkgLength BufferSize ByteList. */
export function buffer(bytes: Uint8Array): Uint8Array {
  return concat([[OP.Buffer], withPkgLength(concat([integer(bytes.length), bytes]))]);
}

/** §20.2.5.4 DefPackage: PackageOp PkgLength NumElements PackageElementList (at most 255 elements). */
export function pkg(elements: readonly Uint8Array[]): Uint8Array {
  if (elements.length > 255) throw new AmlError(`a Package holds at most 255 elements, got ${elements.length}`);
  return concat([[OP.Package], withPkgLength(concat([[elements.length], ...elements]))]);
}

/** §20.2.5.1 DefName: NameOp NameString DataRefObject. */
export function name(path: string, value: Uint8Array): Uint8Array {
  return concat([[OP.Name], nameString(path), value]);
}

/** §20.2.5.1 DefScope: ScopeOp PkgLength NameString TermList. */
export function scope(path: string, terms: readonly Uint8Array[]): Uint8Array {
  return concat([[OP.Scope], withPkgLength(concat([nameString(path), ...terms]))]);
}

/** §20.2.5.2 DefDevice: ExtOpPrefix DeviceOp PkgLength NameString TermList. */
export function device(path: string, terms: readonly Uint8Array[]): Uint8Array {
  return concat([[OP.ExtPrefix, OP.Device], withPkgLength(concat([nameString(path), ...terms]))]);
}

/**
 * The 32-bit compressed EISA id of "PNP0A08" as ASL's EISAID() makes it (§19.6.35): three letters
 * of 5 bits each (A = 1) and four hex digits, stored big-endian in a little-endian DWord.
 */
export function eisaIdValue(id: string): number {
  if (!/^[A-Z]{3}[0-9A-F]{4}$/.test(id)) throw new AmlError(`'${id}' is not an EISA id (3 letters, 4 hex digits)`);
  const [a, b, c] = [0, 1, 2].map((i) => id.charCodeAt(i) - 0x40);
  const product = parseInt(id.slice(3), 16);
  const bytes = [(a << 2) | (b >> 3), ((b & 7) << 5) | c, product >> 8, product & 0xff];
  return (bytes[0] | (bytes[1] << 8) | (bytes[2] << 16) | (bytes[3] << 24)) >>> 0;
}

export function eisaId(id: string): Uint8Array {
  return integer(eisaIdValue(id));
}
