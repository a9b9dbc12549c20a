import { bitRange, resolveType } from '@kvm-ts/abi/diff';
import type { LayoutLeaf, Spec, StructSpec } from '@kvm-ts/abi';
import { applyMask, type BitMask, isFlex, isReal, maskOf, readLeaf, resize, strayBits } from './bits.js';

/** One struct in two consecutive specs: old/new layouts plus the typedefs to read their types with. */
export interface StructPair {
  name: string;
  old: StructSpec;
  new: StructSpec;
  oldSpec: Spec;
  newSpec: Spec;
}

const overlap = (a: [number, number], b: [number, number]) => a[0] < b[1] && b[0] < a[1];
const sameSlot = (a: LayoutLeaf, b: LayoutLeaf, pair: StructPair) =>
  a.offset === b.offset && a.size === b.size && a.count === b.count && a.bitOffset === b.bitOffset && a.bitWidth === b.bitWidth &&
  resolveType(a.type, pair.oldSpec.typedefs) === resolveType(b.type, pair.newSpec.typedefs);

/**
 * Which new leaf carries each old leaf's meaning: same path, or (a rename) the same slot under a new
 * name. Precomputed once per pair; the properties below run it against many random buffers.
 */
export class PairModel {
  readonly counterpartOfOld = new Map<LayoutLeaf, LayoutLeaf>();
  readonly counterpartOfNew = new Map<LayoutLeaf, LayoutLeaf>();
  /** Bits an old tool writes: its real members. */
  readonly oldWrites: BitMask;
  /** Bits a new tool writes when it leaves every new member zero: the real members the old layout also has. */
  readonly newWritesOldMembers: BitMask;
  readonly oldReal: BitMask;
  readonly newReal: BitMask;

  constructor(readonly pair: StructPair) {
    const newByPath = new Map(pair.new.layout.map((l) => [l.path, l]));
    const unmatchedNew = new Set(pair.new.layout.filter((l) => !pair.old.layout.some((o) => o.path === l.path)));
    for (const ol of pair.old.layout) {
      const nl = newByPath.get(ol.path) ?? [...unmatchedNew].find((n) => isReal(ol) && isReal(n) && sameSlot(ol, n, pair));
      if (!nl) continue;
      unmatchedNew.delete(nl);
      this.counterpartOfOld.set(ol, nl);
      this.counterpartOfNew.set(nl, ol);
    }
    this.oldReal = maskOf(pair.old.size, pair.old.layout.filter(isReal));
    this.newReal = maskOf(pair.new.size, pair.new.layout.filter(isReal));
    this.oldWrites = this.oldReal;
    this.newWritesOldMembers = maskOf(pair.new.size, pair.new.layout.filter((l) => isReal(l) && this.counterpartOfNew.has(l) && isReal(this.counterpartOfNew.get(l)!)));
  }

  private oldType = (l: LayoutLeaf) => resolveType(l.type, this.pair.oldSpec.typedefs);
  private newType = (l: LayoutLeaf) => resolveType(l.type, this.pair.newSpec.typedefs);

  /** A new member that shares bits with a member both layouts have is a union alternative: it aliases old bytes by design. */
  private isUnionAlternative(nl: LayoutLeaf): boolean {
    const r = bitRange(nl);
    return this.pair.new.layout.some((k) => k !== nl && this.counterpartOfNew.has(k) && !isFlex(k) && overlap(r, bitRange(k)));
  }

  /**
   * (a) An old tool on a new kernel: `random` masked to the old members, zero-extended to the new size,
   * decoded with the new layout. Every old member must read back equal, every new member and every
   * reserved bit zero. Returns the violations (empty when compatible).
   */
  oldToolOnNewKernel(random: Uint8Array): string[] {
    const written = applyMask(resize(random, this.pair.old.size), this.oldWrites);
    const seen = resize(written, this.pair.new.size);
    const out: string[] = [];
    for (const nl of this.pair.new.layout) {
      if (isFlex(nl)) continue;
      const ol = this.counterpartOfNew.get(nl);
      if (!isReal(nl)) {
        const stray = strayBits(seen, nl, this.newReal);
        if (stray) out.push(`${nl.path}: reserved in the new layout, but ${stray} bit(s) set by an old member`);
      } else if (ol && isReal(ol)) {
        const a = readLeaf(written, ol, this.oldType(ol));
        const b = readLeaf(seen, nl, this.newType(nl));
        if (a !== b) out.push(`${ol.path}: old tool wrote ${a}, new kernel reads ${nl.path} = ${b}`);
      } else if (!this.isUnionAlternative(nl)) {
        const stray = strayBits(seen, nl);
        if (stray) out.push(`${nl.path}: new member reads ${stray} set bit(s) where an old tool wrote other members`);
      }
    }
    return out;
  }

  /**
   * (b) A new tool on an old kernel, new members zero: `random` masked to the members both layouts
   * have, truncated to the old size, decoded with the old layout. Every old member must read the
   * value the new tool wrote to it; reserved and dropped old members must read zero.
   */
  newToolOnOldKernel(random: Uint8Array): string[] {
    const written = applyMask(resize(random, this.pair.new.size), this.newWritesOldMembers);
    const seen = resize(written, this.pair.old.size);
    const out: string[] = [];
    for (const ol of this.pair.old.layout) {
      if (isFlex(ol)) continue;
      const nl = this.counterpartOfOld.get(ol);
      if (!isReal(ol)) {
        const stray = strayBits(seen, ol, this.oldReal);
        if (stray) out.push(`${ol.path}: reserved for the old kernel, but ${stray} bit(s) set by the new tool`);
      } else if (nl && isReal(nl)) {
        const a = readLeaf(written, nl, this.newType(nl));
        const b = readLeaf(seen, ol, this.oldType(ol));
        if (a !== b) out.push(`${nl.path}: new tool wrote ${a}, old kernel reads ${ol.path} = ${b}`);
      } else {
        const stray = strayBits(seen, ol, maskOf(this.pair.old.size, [...this.counterpartOfOld.keys()].filter(isReal)));
        if (stray) out.push(`${ol.path}: gone from the new layout, yet the old kernel reads ${stray} set bit(s) there`);
      }
    }
    return out;
  }
}
