/**
 * Turns a spec into a C translation unit whose single static object holds, at compile time, every
 * value the spec claims: sizes, alignments, offsets, ioctl numbers, constants, and bitfield images.
 * Cross compilers cannot run what they build, so nothing here executes on the target.
 */
import type { LayoutLeaf, Spec, StructSpec } from '../../src/spec/types.js';

export const PROBE_MAGIC = 0x4b564d50524f4245n; // "KVMPROBE"
export const PROBE_SECTION = '.kvmprobe';

/** One integer the compiler computes, and what the spec says it is. */
export interface ValueItem {
  label: string;
  expr: string;
  expected: bigint;
  category: 'struct' | 'leaf' | 'ioctl' | 'constant';
}

/** A bitfield set to all-ones in a zeroed object; the set bits must be exactly [firstBit, firstBit + width). */
export interface BitfieldItem {
  label: string;
  typeExpr: string;
  designator: string;
  firstBit: number;
  width: number;
}

export interface Probe {
  source: string;
  values: ValueItem[];
  bitfields: BitfieldItem[];
}

function subscripts(leaf: LayoutLeaf): string {
  const n = leaf.dims?.length ?? (leaf.count !== undefined ? 1 : 0);
  return '[0]'.repeat(n);
}

/** A C type expression for a structs key; "outer.path" keys name anonymous element types. */
export function typeExprFor(spec: Spec, key: string, seen: Set<string> = new Set()): string {
  const entry = spec.structs[key];
  if (!entry) throw new Error(`structs has no entry "${key}"`);
  if (!key.includes('.')) return `${entry.kind} ${key}`;
  if (seen.has(key)) throw new Error(`structs key "${key}" refers to itself`);
  seen.add(key);
  // The split point is ambiguous when the path itself is dotted: take the one that names a real leaf.
  for (let i = key.indexOf('.'); i >= 0; i = key.indexOf('.', i + 1)) {
    const outer = key.slice(0, i);
    const path = key.slice(i + 1);
    const leaf = spec.structs[outer]?.layout.find((l) => l.path === path) as LayoutLeaf | undefined;
    if (leaf) return `__typeof__(((${typeExprFor(spec, outer, seen)} *)0)->${path}${subscripts(leaf)})`;
  }
  throw new Error(`structs key "${key}" names no array leaf of any outer struct`);
}

function cInt(value: number | string): bigint {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new Error(`${value} is not an exact integer; specs give such values as decimal strings`);
    return BigInt(value);
  }
  if (!/^-?\d+$/.test(value)) throw new Error(`"${value}" is not a decimal integer`);
  return BigInt(value);
}

const DIR_CODE = { none: 0n, write: 1n, read: 2n, readwrite: 3n } as const;

function structItems(spec: Spec, key: string, s: StructSpec, values: ValueItem[], bitfields: BitfieldItem[]): void {
  const t = typeExprFor(spec, key);
  values.push({ label: `sizeof(${key})`, expr: `sizeof(${t})`, expected: BigInt(s.size), category: 'struct' });
  values.push({ label: `_Alignof(${key})`, expr: `_Alignof(${t})`, expected: BigInt(s.align), category: 'struct' });
  for (const leaf of s.layout as LayoutLeaf[]) {
    if (leaf.bitWidth !== undefined) {
      bitfields.push({
        label: `${key}.${leaf.path} bits`,
        typeExpr: t,
        designator: `.${leaf.path}`,
        firstBit: leaf.offset * 8 + (leaf.bitOffset ?? 0),
        width: leaf.bitWidth,
      });
      // offset/size name the declared type's storage unit, so size must be that type's size.
      values.push({ label: `sizeof(${leaf.type}) (unit of ${key}.${leaf.path})`, expr: `sizeof(${leaf.type})`, expected: BigInt(leaf.size), category: 'leaf' });
      continue;
    }
    const member = `((${t} *)0)->${leaf.path}`;
    values.push({ label: `offsetof(${key}, ${leaf.path})`, expr: `__builtin_offsetof(${t}, ${leaf.path})`, expected: BigInt(leaf.offset), category: 'leaf' });
    if (leaf.count === undefined) {
      values.push({ label: `sizeof(${key}.${leaf.path})`, expr: `sizeof(${member})`, expected: BigInt(leaf.size), category: 'leaf' });
      continue;
    }
    // An array leaf's size is one element's; count (and dims) must then give the whole array.
    const element = `${member}${subscripts(leaf)}`;
    values.push({ label: `sizeof(${key}.${leaf.path}${subscripts(leaf)})`, expr: `sizeof(${element})`, expected: BigInt(leaf.size), category: 'leaf' });
    if (leaf.count === 0) {
      // A flexible array member: sizeof cannot measure it, but it must be an array at the very end.
      values.push({ label: `${key}.${leaf.path} is a trailing array`, expr: `sizeof(${t}) >= __builtin_offsetof(${t}, ${leaf.path})`, expected: 1n, category: 'leaf' });
      continue;
    }
    const dims = leaf.dims ?? [leaf.count];
    dims.forEach((extent, d) => {
      const outer = `${member}${'[0]'.repeat(d)}`;
      values.push({
        label: `extent ${d} of ${key}.${leaf.path}${leaf.dims ? ` (dims ${leaf.dims.join('x')})` : ' (count)'}`,
        expr: `(sizeof(${outer}) / sizeof(${outer}[0]))`,
        expected: BigInt(extent),
        category: 'leaf',
      });
    });
    if (leaf.dims) {
      values.push({ label: `count of ${key}.${leaf.path} (all dims)`, expr: `(sizeof(${member}) / sizeof(${element}))`, expected: BigInt(leaf.count), category: 'leaf' });
    }
  }
}

export function buildProbe(spec: Spec, includes: string[] = ['linux/kvm.h']): Probe {
  return buildProbeMany([spec], includes);
}

/** One translation unit checking several specs at once (their names must not collide): one compiler run for all. */
export function buildProbeMany(specs: Spec[], includes: string[]): Probe {
  const values: ValueItem[] = [];
  const bitfields: BitfieldItem[] = [];
  for (const spec of specs) specItems(spec, values, bitfields);
  return { source: render(includes, values, bitfields), values, bitfields };
}

function specItems(spec: Spec, values: ValueItem[], bitfields: BitfieldItem[]): void {
  for (const [key, s] of Object.entries(spec.structs)) structItems(spec, key, s, values, bitfields);
  for (const [name, io] of Object.entries(spec.ioctls)) {
    values.push({ label: `${name} number`, expr: `(${name})`, expected: BigInt(io.number), category: 'ioctl' });
    values.push({ label: `${name} _IOC_DIR`, expr: `_IOC_DIR(${name})`, expected: DIR_CODE[io.dir], category: 'ioctl' });
    values.push({ label: `${name} _IOC_SIZE`, expr: `_IOC_SIZE(${name})`, expected: BigInt(io.size), category: 'ioctl' });
    if (io.type !== null) {
      values.push({ label: `${name} sizeof(${io.type})`, expr: `sizeof(${io.type})`, expected: BigInt(io.size), category: 'ioctl' });
    }
  }
  if (Object.keys(spec.ioctls).length > 0) {
    // DIR_CODE assumes the asm-generic encoding; make the compiler confirm it for this arch.
    values.push({ label: '_IOC_WRITE', expr: '_IOC_WRITE', expected: 1n, category: 'ioctl' });
    values.push({ label: '_IOC_READ', expr: '_IOC_READ', expected: 2n, category: 'ioctl' });
  }
  for (const [name, value] of Object.entries(spec.constants)) {
    values.push({ label: name, expr: `(${name})`, expected: cInt(value), category: 'constant' });
  }
}

function render(includes: string[], values: ValueItem[], bitfields: BitfieldItem[]): string {
  const nv = Math.max(values.length, 1);
  const nb = Math.max(bitfields.length, 1);
  const lines: string[] = [];
  for (const inc of includes) lines.push(`#include <${inc}>`);
  lines.push('', 'struct kvm_probe {');
  // The header records where each array sits, so the reader needs no knowledge of the target's padding.
  lines.push('  unsigned long long magic, nvalues, nbitfields, value_at, negative_at, bf_offset_at, bf_size_at;');
  lines.push(`  unsigned long long value[${nv}];`);
  lines.push(`  unsigned char negative[${nv}];`);
  lines.push(`  unsigned long long bf_offset[${nb}], bf_size[${nb}];`);
  bitfields.forEach((b, i) => lines.push(`  union { ${b.typeExpr} s; unsigned char b[sizeof(${b.typeExpr})]; } bf${i};`));
  lines.push('};', '');
  lines.push(`__attribute__((used, section("${PROBE_SECTION}"))) static const struct kvm_probe kvm_probe = {`);
  lines.push(`  .magic = ${PROBE_MAGIC}ULL, .nvalues = ${values.length}ULL, .nbitfields = ${bitfields.length}ULL,`);
  for (const f of ['value', 'negative', 'bf_offset', 'bf_size']) lines.push(`  .${f}_at = __builtin_offsetof(struct kvm_probe, ${f}),`);
  lines.push('  .value = {');
  for (const v of values) lines.push(`    (unsigned long long)(${v.expr}), /* ${v.label.replace(/\*\//g, '* /')} */`);
  lines.push('  },', '  .negative = {');
  for (const v of values) lines.push(`    (${v.expr}) < 0,`);
  lines.push('  },', '  .bf_offset = {');
  bitfields.forEach((_, i) => lines.push(`    __builtin_offsetof(struct kvm_probe, bf${i}),`));
  lines.push('  },', '  .bf_size = {');
  bitfields.forEach((_, i) => lines.push(`    sizeof(((struct kvm_probe *)0)->bf${i}),`));
  lines.push('  },');
  // -1 converts to all-ones for any signed or unsigned bitfield width.
  bitfields.forEach((b, i) => lines.push(`  .bf${i} = { .s = { ${b.designator} = -1 } },`));
  lines.push('};', '');
  return lines.join('\n');
}
