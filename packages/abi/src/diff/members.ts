import type { LayoutLeaf, Spec, StructSpec } from '../spec/types.js';
import { change } from './change.js';
import type { Change } from './types.js';

const RESERVED = /^_*(reserved|reserve|rsvd|resv|pad|padding|unused|spare)(_?\d+)?$/i;

/** Members userspace must zero and never name: carving new members out of them is how KVM grows structs. */
export function isReserved(leaf: LayoutLeaf): boolean {
  return RESERVED.test(leaf.path.slice(leaf.path.lastIndexOf('.') + 1));
}

const isFlex = (l: LayoutLeaf): boolean => l.count === 0;

/** Bytes a leaf covers: an array leaf's `size` is one element's, a flexible array covers none. */
export const leafBytes = (l: LayoutLeaf): number => (l.count !== undefined ? l.size * l.count : l.size);

/** [start, end) in bits. */
export function bitRange(l: LayoutLeaf): [number, number] {
  if (l.bitWidth !== undefined) {
    const start = l.offset * 8 + (l.bitOffset ?? 0);
    return [start, start + l.bitWidth];
  }
  return [l.offset * 8, (l.offset + leafBytes(l)) * 8];
}

const overlaps = (a: [number, number], b: [number, number]): boolean => a[0] < b[1] && b[0] < a[1];

/** The C type a type name means, through typedefs, without qualifiers. */
export function resolveType(type: string, typedefs: Record<string, string>): string {
  let t = type.replace(/\b(const|volatile)\s+/g, '').trim();
  for (let i = 0; i < 8 && typedefs[t] !== undefined && typedefs[t] !== t; i++) t = typedefs[t];
  return t;
}

/** Bits of the old struct no real member used: holes, tail padding and reserved members. */
function freeBits(o: StructSpec): Uint8Array {
  const free = new Uint8Array(o.size * 8).fill(1);
  for (const l of o.layout) {
    if (isReserved(l)) continue;
    const [s, e] = bitRange(l);
    free.fill(0, s, Math.min(e, free.length));
  }
  return free;
}

/** An array's extents, outermost first ("2][3" for `x[2][3]`); "" for a non-array. */
const extents = (l: LayoutLeaf): string => (l.dims ?? (l.count !== undefined ? [l.count] : [])).join('][');

const describe = (l: LayoutLeaf): string =>
  `${l.type}${l.count !== undefined ? `[${l.count || ''}]` : ''} @${l.offset}${l.bitWidth !== undefined ? `:${l.bitOffset ?? 0}+${l.bitWidth}b` : ''} (${leafBytes(l)} bytes)`;

export function compareMembers(name: string, o: StructSpec, n: StructSpec, old: Spec, neu: Spec): Change[] {
  const out: Change[] = [];
  const oldByPath = new Map(o.layout.map((l) => [l.path, l]));
  const newByPath = new Map(n.layout.map((l) => [l.path, l]));
  const item = (l: LayoutLeaf) => `${name}.${l.path}`;
  const same = (a: LayoutLeaf, b: LayoutLeaf) =>
    a.offset === b.offset && a.size === b.size && a.count === b.count && extents(a) === extents(b) && a.bitOffset === b.bitOffset &&
    a.bitWidth === b.bitWidth && resolveType(a.type, old.typedefs) === resolveType(b.type, neu.typedefs);

  for (const ol of o.layout) {
    const nl = newByPath.get(ol.path);
    if (nl) out.push(...compareLeaf(item(ol), ol, nl, old, neu));
  }

  const gone = o.layout.filter((l) => !newByPath.has(l.path));
  const fresh = n.layout.filter((l) => !oldByPath.has(l.path));
  const renameTargets = new Set<LayoutLeaf>();
  for (const ol of gone) {
    if (isReserved(ol)) {
      out.push(change('reserved-resized', 'member', item(ol), `${describe(ol)} is gone; its bytes went to new members`));
      continue;
    }
    const unioned = isFlex(ol) && o.size === n.size ? flexUnion(ol, fresh, renameTargets) : [];
    if (unioned.length > 0) {
      for (const nl of unioned) renameTargets.add(nl);
      out.push(change('flex-array-unioned', 'member', item(ol),
        `${describe(ol)} is now a union of flexible arrays at the same offset: ${unioned.map((nl) => `${name}.${nl.path}`).join(', ')}`));
      continue;
    }
    // An anonymous struct/union that got a name moves x to name.x; prefer that twin over any other.
    const candidates = fresh.filter((nl) => !renameTargets.has(nl) && !isReserved(nl) && same(ol, nl));
    const twin = candidates.find((nl) => nl.path.endsWith(`.${ol.path}`)) ?? candidates[0];
    if (twin) {
      renameTargets.add(twin);
      const named = twin.path.endsWith(`.${ol.path}`);
      out.push(change(named ? 'anonymous-member-named' : 'member-renamed', 'member', item(ol), `${name}.${ol.path} is now ${name}.${twin.path}`));
    } else if (o.size === n.size && isFlex(ol) && ol.offset >= o.size) {
      out.push(change('flex-array-removed', 'member', item(ol), `${describe(ol)} is gone; no byte moved`));
    } else if (o.size === n.size && !isFlex(ol) && aliasKept(ol, o, n, newByPath)) {
      out.push(change('union-member-removed', 'member', item(ol), `${describe(ol)} is gone; a union alias of the same bytes stayed`));
    } else {
      out.push(change('member-removed', 'member', item(ol), `${describe(ol)} is gone`));
    }
  }

  const free = fresh.length > 0 ? freeBits(o) : new Uint8Array(0);
  const oldEnd = o.size * 8;
  // A renamed member still occupies its bytes: a new member overlapping it is a union alternative.
  const kept = n.layout.filter((l) => oldByPath.has(l.path) || renameTargets.has(l));
  for (const nl of fresh) {
    if (renameTargets.has(nl)) continue;
    out.push(classifyAdded(item(nl), nl, kept, free, oldEnd, describe(nl)));
  }
  return out;
}

/**
 * A removed union alias: a member both versions have, not reserved, covered exactly the same bits
 * in the old struct and still does, so every byte keeps a name and a place. Reserved members do
 * not count: bytes left only to them lost their meaning.
 */
function aliasKept(ol: LayoutLeaf, o: StructSpec, n: StructSpec, newByPath: Map<string, LayoutLeaf>): boolean {
  const [s, e] = bitRange(ol);
  return n.size === o.size && o.layout.some((k) => {
    const nk = newByPath.get(k.path);
    if (k === ol || isReserved(k) || nk === undefined) return false;
    const [ks, ke] = bitRange(k);
    const [ns, ne] = bitRange(nk);
    return ks === s && ke === e && ns === s && ne === e;
  });
}

/**
 * `__u8 data[0]` replaced by `union { struct a vmx[0]; struct b svm[0]; } data`: every new leaf
 * under `data.` is a flexible array at the old offset. Returns those leaves, or [] when it is not that.
 */
function flexUnion(ol: LayoutLeaf, fresh: LayoutLeaf[], taken: Set<LayoutLeaf>): LayoutLeaf[] {
  const under = fresh.filter((nl) => !taken.has(nl) && nl.path.startsWith(`${ol.path}.`));
  return under.length > 0 && under.every((nl) => isFlex(nl) && nl.offset === ol.offset) ? under : [];
}

function classifyAdded(item: string, nl: LayoutLeaf, kept: LayoutLeaf[], free: Uint8Array, oldEnd: number, what: string): Change {
  const range = bitRange(nl);
  if (isFlex(nl)) {
    return nl.offset * 8 >= oldEnd || freeUpTo(free, nl.offset * 8, oldEnd)
      ? change('flex-array-added', 'member', item, `${what}`)
      : change('member-added-in-place', 'member', item, `${what}: a flexible array inside the old struct`);
  }
  // Leaves only overlap inside a union, so sharing bits with a member that stayed means a new union alternative.
  if (kept.some((k) => overlaps(range, bitRange(k)))) return change('union-member-added', 'member', item, what);
  if (range[0] >= oldEnd) return change('member-appended', 'member', item, `${what}, past the old end (${oldEnd / 8} bytes)`);
  if (!freeUpTo(free, range[0], Math.min(range[1], oldEnd))) return change('member-added-in-place', 'member', item, `${what} over bytes old members used`);
  return range[1] <= oldEnd
    ? change('member-from-padding', 'member', item, `${what}, out of padding/reserved bytes`)
    : change('member-appended', 'member', item, `${what}, from tail padding past the old end (${oldEnd / 8} bytes)`);
}

function freeUpTo(free: Uint8Array, start: number, end: number): boolean {
  for (let b = start; b < end; b++) if (free[b] !== 1) return false;
  return true;
}

function compareLeaf(item: string, ol: LayoutLeaf, nl: LayoutLeaf, old: Spec, neu: Spec): Change[] {
  const out: Change[] = [];
  const oType = resolveType(ol.type, old.typedefs);
  const nType = resolveType(nl.type, neu.typedefs);
  const unchanged =
    ol.offset === nl.offset && ol.size === nl.size && ol.count === nl.count && ol.bitOffset === nl.bitOffset && ol.bitWidth === nl.bitWidth;
  if (isReserved(ol) && isReserved(nl)) {
    if (!unchanged || oType !== nType) out.push(change('reserved-resized', 'member', item, `${describe(ol)} -> ${describe(nl)}`));
    return out;
  }
  if (isFlex(ol) !== isFlex(nl)) {
    out.push(change('flex-array-changed', 'member', item, `${describe(ol)} -> ${describe(nl)}`));
  } else if (isFlex(ol)) {
    if (oType !== nType || ol.size !== nl.size) out.push(change('flex-array-element-changed', 'member', item, `element ${ol.type} (${ol.size} bytes) -> ${nl.type} (${nl.size} bytes)`));
  } else {
    if ((ol.count ?? 1) !== (nl.count ?? 1)) {
      out.push(change((nl.count ?? 1) < (ol.count ?? 1) ? 'member-array-shrunk' : 'member-array-grown', 'member', item, `${describe(ol)} -> ${describe(nl)}`));
    }
    if (ol.size !== nl.size) out.push(change('member-resized', 'member', item, `${describe(ol)} -> ${describe(nl)}${ol.count !== undefined ? ' (element size)' : ''}`));
  }
  if (ol.offset !== nl.offset) out.push(change('member-moved', 'member', item, `offset ${ol.offset} -> ${nl.offset}`));
  if (ol.bitOffset !== nl.bitOffset || ol.bitWidth !== nl.bitWidth) {
    out.push(change('member-bitfield-changed', 'member', item, `${describe(ol)} -> ${describe(nl)}`));
  }
  // Same element count, other extents (x[2][3] -> x[3][2]): compiled x[i][j] offsets move, so the type changed.
  const reshaped = (ol.count ?? 1) === (nl.count ?? 1) && extents(ol) !== extents(nl);
  if (reshaped && !isFlex(ol)) out.push(change('member-retyped', 'member', item, `${ol.type}[${extents(ol)}] -> ${nl.type}[${extents(nl)}]`));
  else if (oType !== nType && !isFlex(ol)) out.push(change('member-retyped', 'member', item, `${ol.type} -> ${nl.type}`));
  else if (oType === nType && ol.type !== nl.type) out.push(change('member-type-spelling-changed', 'member', item, `${ol.type} -> ${nl.type} (both ${nType})`));
  return out;
}

