import { EXIT, isLimit, isMask, isReserved, resolveType } from '@kvm-ts/abi/diff';
import type { IoctlDir, LayoutLeaf, Spec } from '@kvm-ts/abi';

/**
 * Breaking mutations of a real spec, each with the exit bits `abi diff` must report. The expected
 * bits come from what the mutation does to a compiled tool or its source, written down here
 * independently of the diff engine's rule table.
 */
export const MUTATION_KINDS = [
  'reorder-members',
  'resize-member',
  'retype-member',
  'renumber-ioctl',
  'renumber-constant',
  'remove-ioctl',
  'remove-constant',
  'remove-struct',
  'remove-member',
  'remove-union-alias',
  'shrink-array',
  'flip-ioctl-direction',
  'grow-encoded-struct',
] as const;
export type MutationKind = (typeof MUTATION_KINDS)[number];

export interface Mutation {
  kind: MutationKind;
  /** What was changed, for the failure report: "kvm_regs.rax offset 0 -> 8". */
  what: string;
  spec: Spec;
  expectedExit: number;
}

const B = EXIT.BINARY;
const S = EXIT.SOURCE;

/** `pick` is a source of choices (fast-check supplies it), so every mutation shrinks and replays. */
export type Pick = (n: number) => number;

const sortedKeys = (o: object) => Object.keys(o).sort();
const choose = <T>(items: readonly T[], pick: Pick): T | undefined => (items.length === 0 ? undefined : items[pick(items.length)]);

const SIGN_FLIP: Record<string, string> = {
  'unsigned char': 'signed char', 'signed char': 'unsigned char', char: 'unsigned char',
  'unsigned short': 'short', short: 'unsigned short',
  'unsigned int': 'int', int: 'unsigned int',
  'unsigned long': 'long', long: 'unsigned long',
  'unsigned long long': 'long long', 'long long': 'unsigned long long',
};

const DIR_BITS: Record<IoctlDir, number> = { none: 0, write: 1, read: 2, readwrite: 3 };
const withDir = (n: number, dir: IoctlDir) => ((n & 0x3fffffff) | (DIR_BITS[dir] << 30)) >>> 0;
const withSize = (n: number, size: number) => ((n & ~(0x3fff << 16)) | ((size & 0x3fff) << 16)) >>> 0;

/** Struct members a mutation may touch: real (not reserved), sized, not bitfields. */
const plainLeaves = (s: Spec, name: string) =>
  s.structs[name].layout.filter((l) => !isReserved(l) && l.count !== 0 && l.bitWidth === undefined);

/** Another real member of the struct covers exactly the same bytes. */
const hasAlias = (s: Spec, name: string, l: LayoutLeaf) =>
  s.structs[name].layout.some((x) => x !== l && !isReserved(x) && x.bitWidth === undefined && x.offset === l.offset && leafEnd(x) === leafEnd(l));

const leafEnd = (l: LayoutLeaf) => l.offset + (l.count !== undefined ? l.size * l.count : l.size);

/** Applies one mutation of `kind` to a copy of `base`; undefined when the spec offers no target. */
export function mutate(base: Spec, kind: MutationKind, pick: Pick): Mutation | undefined {
  const spec = structuredClone(base);
  const done = (what: string, expectedExit: number): Mutation => ({ kind, what, spec, expectedExit });
  const structs = sortedKeys(spec.structs);
  switch (kind) {
    case 'reorder-members': {
      // Two members of one struct with the same byte size, neither overlapping the other: swap their offsets.
      const candidates = structs.flatMap((name) => {
        const leaves = plainLeaves(spec, name);
        const pairs: Array<[LayoutLeaf, LayoutLeaf, string]> = [];
        for (let i = 0; i < leaves.length && pairs.length < 64; i++) {
          for (let j = i + 1; j < leaves.length; j++) {
            const a = leaves[i];
            const b = leaves[j];
            if (leafEnd(a) - a.offset === leafEnd(b) - b.offset && a.offset !== b.offset && (leafEnd(a) <= b.offset || leafEnd(b) <= a.offset)) pairs.push([a, b, name]);
          }
        }
        return pairs;
      });
      const c = choose(candidates, pick);
      if (!c) return undefined;
      const [a, b, name] = c;
      [a.offset, b.offset] = [b.offset, a.offset];
      return done(`${name}: ${a.path} and ${b.path} swap offsets`, B);
    }
    case 'resize-member': {
      const c = choose(structs.flatMap((name) => plainLeaves(spec, name).filter((l) => l.count === undefined && SIGN_FLIP[resolveType(l.type, spec.typedefs)]).map((l) => [name, l] as const)), pick);
      if (!c) return undefined;
      const [name, l] = c;
      const from = l.size;
      l.size = from === 8 ? 4 : from * 2;
      l.type = { 1: 'unsigned char', 2: 'unsigned short', 4: 'unsigned int', 8: 'unsigned long long' }[l.size] ?? l.type;
      return done(`${name}.${l.path}: ${from} -> ${l.size} bytes`, B);
    }
    case 'retype-member': {
      const c = choose(structs.flatMap((name) => plainLeaves(spec, name).filter((l) => SIGN_FLIP[resolveType(l.type, spec.typedefs)]).map((l) => [name, l] as const)), pick);
      if (!c) return undefined;
      const [name, l] = c;
      const from = l.type;
      l.type = SIGN_FLIP[resolveType(l.type, spec.typedefs)];
      return done(`${name}.${l.path}: ${from} -> ${l.type}`, B);
    }
    case 'renumber-ioctl': {
      const name = choose(sortedKeys(spec.ioctls), pick);
      if (!name) return undefined;
      const io = spec.ioctls[name];
      const from = io.number;
      io.number = ((io.number & ~0xff) | ((io.number + 1 + pick(254)) & 0xff)) >>> 0;
      return done(`${name}: nr 0x${(from & 0xff).toString(16)} -> 0x${(io.number & 0xff).toString(16)}`, B);
    }
    case 'renumber-constant': {
      const name = choose(sortedKeys(spec.constants), pick);
      if (!name) return undefined;
      const from = BigInt(spec.constants[name]);
      // Raising a limit or giving a mask more bits is compatible by design, so those move down (a
      // smaller value cannot keep every bit of a mask); anything else moves either way.
      const delta = BigInt(1 + pick(1000)) * (isLimit(name) || isMask(name) || pick(2) === 0 ? -1n : 1n);
      const to = from + delta;
      spec.constants[name] = Number.isSafeInteger(Number(to)) ? Number(to) : to.toString();
      return done(`${name}: ${from} -> ${to}`, B);
    }
    case 'remove-ioctl': {
      const name = choose(sortedKeys(spec.ioctls), pick);
      if (!name) return undefined;
      delete spec.ioctls[name];
      return done(`${name} removed`, B | S);
    }
    case 'remove-constant': {
      const name = choose(sortedKeys(spec.constants), pick);
      if (!name) return undefined;
      delete spec.constants[name];
      return done(`${name} removed`, S);
    }
    case 'remove-struct': {
      const name = choose(structs, pick);
      if (!name) return undefined;
      delete spec.structs[name];
      return done(`struct ${name} removed`, S);
    }
    case 'remove-member':
    case 'remove-union-alias': {
      // A member whose exact bytes another real member also names (union { __u32 irq; __s32 status; })
      // is an alias: removing it moves no byte, only source spelling it breaks.
      const wantAlias = kind === 'remove-union-alias';
      const c = choose(structs.flatMap((name) => plainLeaves(spec, name).filter((l) => hasAlias(spec, name, l) === wantAlias).map((l) => [name, l] as const)), pick);
      if (!c) return undefined;
      const [name, l] = c;
      spec.structs[name].layout = spec.structs[name].layout.filter((x) => x !== l);
      return done(`${name}.${l.path} removed`, wantAlias ? S : B | S);
    }
    case 'shrink-array': {
      const c = choose(structs.flatMap((name) => plainLeaves(spec, name).filter((l) => (l.count ?? 0) > 1 && l.dims === undefined).map((l) => [name, l] as const)), pick);
      if (!c) return undefined;
      const [name, l] = c;
      l.count = l.count! - 1;
      return done(`${name}.${l.path}: [${l.count + 1}] -> [${l.count}]`, B);
    }
    case 'flip-ioctl-direction': {
      const name = choose(sortedKeys(spec.ioctls).filter((n) => spec.ioctls[n].dir !== 'none'), pick);
      if (!name) return undefined;
      const io = spec.ioctls[name];
      const from = io.dir;
      io.dir = (['read', 'write', 'readwrite'] as const).filter((d) => d !== from)[pick(2)];
      io.number = withDir(io.number, io.dir);
      return done(`${name}: ${from} -> ${io.dir}`, B);
    }
    case 'grow-encoded-struct': {
      // Append a member to a struct an ioctl passes, and let the ioctl's _IOC_SIZE follow as C would.
      const encoded = [...new Set(Object.values(spec.ioctls).map((io) => /^struct (.+)$/.exec(io.type ?? '')?.[1]).filter((n): n is string => !!n && !!spec.structs[n]))].sort();
      const name = choose(encoded, pick);
      if (!name) return undefined;
      const st = spec.structs[name];
      const at = st.size;
      st.layout.push({ path: '__mutation_tail', offset: at, size: 8, type: 'unsigned long long' });
      st.size = Math.ceil((at + 8) / Math.max(st.align, 8)) * Math.max(st.align, 8);
      st.align = Math.max(st.align, 8);
      for (const io of Object.values(spec.ioctls)) {
        if (io.type === `struct ${name}`) {
          io.size = st.size;
          io.number = withSize(io.number, st.size);
        }
      }
      return done(`struct ${name} grows ${at} -> ${st.size} bytes`, B);
    }
  }
}
