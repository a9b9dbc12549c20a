import { bitRange, isReserved } from '@kvm-ts/abi/diff';
import type { LayoutLeaf } from '@kvm-ts/abi';

/** One flag per bit of a struct: the unit every property here reasons in, so bitfields need no special case. */
export type BitMask = Uint8Array;

export const isFlex = (l: LayoutLeaf): boolean => l.count === 0;
/** Leaves that occupy bytes and are not reserved: what a tool actually reads and writes. */
export const isReal = (l: LayoutLeaf): boolean => !isFlex(l) && !isReserved(l);

export function maskOf(sizeBytes: number, leaves: Iterable<LayoutLeaf>): BitMask {
  const mask = new Uint8Array(sizeBytes * 8);
  for (const l of leaves) {
    const [s, e] = bitRange(l);
    mask.fill(1, s, Math.min(e, mask.length));
  }
  return mask;
}

export const getBit = (bytes: Uint8Array, bit: number): number => (bit >> 3 < bytes.length ? (bytes[bit >> 3] >> (bit & 7)) & 1 : 0);

/** `random` with every bit outside `mask` cleared: what a tool writing only those members leaves in a zeroed buffer. */
export function applyMask(random: Uint8Array, mask: BitMask): Uint8Array {
  const out = new Uint8Array(mask.length / 8);
  for (let bit = 0; bit < mask.length; bit++) if (mask[bit] && getBit(random, bit)) out[bit >> 3] |= 1 << (bit & 7);
  return out;
}

/** The bytes a kernel of another size sees: truncated, or zero-extended as from a zeroed buffer. */
export function resize(bytes: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size);
  out.set(bytes.subarray(0, Math.min(size, bytes.length)));
  return out;
}

/** A leaf's value, tagged with its resolved C type: equal strings mean a C reader sees the same value. */
export function readLeaf(bytes: Uint8Array, leaf: LayoutLeaf, resolvedType: string): string {
  const [s, e] = bitRange(leaf);
  if (leaf.bitWidth !== undefined) {
    let v = 0n;
    for (let b = e - 1; b >= s; b--) v = (v << 1n) | BigInt(getBit(bytes, b));
    return `${resolvedType}:${leaf.bitWidth}b:${v}`;
  }
  const hex: string[] = [];
  for (let byte = s >> 3; byte < e >> 3; byte++) hex.push((byte < bytes.length ? bytes[byte] : 0).toString(16).padStart(2, '0'));
  return `${resolvedType}[${leaf.count ?? ''}]:${hex.join('')}`;
}

/** Bits of `leaf` outside `except` that are set: a reserved or new member a reader expects zero. */
export function strayBits(bytes: Uint8Array, leaf: LayoutLeaf, except?: BitMask): number {
  const [s, e] = bitRange(leaf);
  let n = 0;
  for (let b = s; b < e; b++) if ((!except || !except[b]) && getBit(bytes, b)) n++;
  return n;
}
