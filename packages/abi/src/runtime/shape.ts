/**
 * The value shape of a struct: its flat layout leaves regrouped into the nested objects that
 * codecs, zod schemas and generated TypeScript types all follow, with every leaf's C type
 * resolved once. Building a shape is where a spec's layout is checked for what the runtime
 * relies on, so a bad leaf fails here with a message naming struct and path.
 */
import type { Arch, LayoutLeaf, Spec, StructSpec } from '../spec/types.js';
import { resolveScalar, type ScalarInfo } from './scalars.js';

interface NodeBase {
  /** Member name inside the parent object. */
  readonly name: string;
  /** Dotted path from the struct root, as in LayoutLeaf.path. */
  readonly path: string;
}

export interface GroupNode extends NodeBase {
  readonly kind: 'group';
  /** In layout order, so encoding overlapping union members is deterministic. */
  readonly children: readonly ShapeNode[];
}

interface LeafNodeBase extends NodeBase {
  readonly leaf: LayoutLeaf;
}

export interface ScalarNode extends LeafNodeBase {
  readonly kind: 'scalar';
  readonly scalar: ScalarInfo;
}

export interface BitfieldNode extends LeafNodeBase {
  readonly kind: 'bitfield';
  /** The storage unit's declared type; its signedness is the field's. */
  readonly scalar: ScalarInfo;
  readonly bitOffset: number;
  readonly bitWidth: number;
  /** Bitfields up to 32 bits wide are numbers, wider ones bigint. */
  readonly big: boolean;
}

interface ArrayNodeBase extends LeafNodeBase {
  /** Element count; 0 when flexible. Multi-dimensional arrays are flattened row-major. */
  readonly count: number;
  readonly flexible: boolean;
  /** Bytes between consecutive elements. */
  readonly stride: number;
}

/** u8/s8/char arrays: raw bytes as a Uint8Array. */
export interface BytesNode extends ArrayNodeBase {
  readonly kind: 'bytes';
  readonly scalar: ScalarInfo;
}

export interface ScalarArrayNode extends ArrayNodeBase {
  readonly kind: 'scalarArray';
  readonly scalar: ScalarInfo;
}

export interface StructArrayNode extends ArrayNodeBase {
  readonly kind: 'structArray';
  /** Key of Spec.structs. */
  readonly struct: string;
}

/** A non-array aggregate member the generator left unexpanded; decoded as a nested object. */
export interface StructRefNode extends LeafNodeBase {
  readonly kind: 'struct';
  readonly struct: string;
  /** sizeof the referenced aggregate. */
  readonly bytes: number;
}

export type FieldNode = ScalarNode | BitfieldNode | BytesNode | ScalarArrayNode | StructArrayNode | StructRefNode;
export type ShapeNode = GroupNode | FieldNode;

export interface StructShape {
  readonly name: string;
  readonly spec: StructSpec;
  readonly root: GroupNode;
  /** Every field node, in layout order. */
  readonly fields: readonly FieldNode[];
  /** Whether two leaves share bits (a union somewhere in this struct, not counting element structs). */
  readonly hasOverlaps: boolean;
}

/** The parts of a spec a shape depends on. */
export type ShapeContext = Pick<Spec, 'structs' | 'typedefs'> & { arch: Arch };

const AGGREGATE = /^(struct|union)\s+(\S.*)$/;

/** The Spec.structs key named by an aggregate type string, or undefined for non-aggregates. */
export function aggregateName(type: string): string | undefined {
  return AGGREGATE.exec(type.trim())?.[2];
}

export function buildShape(name: string, spec: StructSpec, ctx: ShapeContext): StructShape {
  const root: MutableGroup = { kind: 'group', name: '', path: '', children: [], index: new Map() };
  const fields: FieldNode[] = [];
  for (const leaf of spec.layout) {
    const fail = (problem: string): never => {
      throw new Error(`struct ${name}: leaf '${leaf.path}': ${problem}`);
    };
    const parts = leaf.path.split('.');
    if (parts.some((p) => p.length === 0)) fail('empty path component');
    let parent = root;
    for (const part of parts.slice(0, -1)) {
      const existing = parent.index.get(part);
      if (existing && existing.kind !== 'group') fail(`'${existing.path}' is both a leaf and an aggregate`);
      if (existing) {
        parent = existing as MutableGroup;
        continue;
      }
      const group: MutableGroup = {
        kind: 'group',
        name: part,
        path: parent.path ? `${parent.path}.${part}` : part,
        children: [],
        index: new Map(),
      };
      parent.children.push(group);
      parent.index.set(part, group);
      parent = group;
    }
    const memberName = parts[parts.length - 1];
    if (parent.index.has(memberName)) fail('duplicate path');
    const node = buildField(memberName, leaf, spec, ctx, fail);
    parent.children.push(node);
    parent.index.set(memberName, node);
    fields.push(node);
  }
  return { name, spec, root: freeze(root), fields, hasOverlaps: findOverlap(fields) !== undefined };
}

interface MutableGroup extends GroupNode {
  children: ShapeNode[];
  index: Map<string, ShapeNode>;
}

function freeze(group: MutableGroup): GroupNode {
  return {
    kind: 'group',
    name: group.name,
    path: group.path,
    children: group.children.map((c) => (c.kind === 'group' ? freeze(c as MutableGroup) : c)),
  };
}

function buildField(
  name: string,
  leaf: LayoutLeaf,
  owner: StructSpec,
  ctx: ShapeContext,
  fail: (problem: string) => never,
): FieldNode {
  const path = leaf.path;
  const aggregate = aggregateName(leaf.type);
  const isArray = leaf.count !== undefined || leaf.dims !== undefined;
  const count = isArray ? arrayCount(leaf, fail) : 1;
  const flexible = isArray && count === 0;

  if (aggregate !== undefined) {
    const element = Object.hasOwn(ctx.structs, aggregate) ? ctx.structs[aggregate] : undefined;
    if (!element) fail(`element type '${leaf.type}' is not in the spec's structs`);
    if (leaf.bitWidth !== undefined) fail('an aggregate cannot be a bitfield');
    if (!isArray) {
      checkBounds(leaf, element!.size, owner, fail);
      return { kind: 'struct', name, path, leaf, struct: aggregate, bytes: element!.size };
    }
    if (leaf.size !== element!.size) fail(`element size ${leaf.size} differs from sizeof(${leaf.type}) = ${element!.size}`);
    checkBounds(leaf, element!.size * count, owner, fail);
    return { kind: 'structArray', name, path, leaf, count, flexible, stride: element!.size, struct: aggregate };
  }

  const resolved = resolveScalar(leaf.type, ctx.arch, ctx.typedefs);
  if (!resolved) fail(`unknown type '${leaf.type}'`);
  // Enums take the size the compiler gave them, which only the leaf knows.
  const isEnum = leaf.type.trim().startsWith('enum ');
  if (isEnum && ![1, 2, 4, 8].includes(leaf.size)) fail(`an enum of ${leaf.size} bytes is not an integer type`);
  const scalar: ScalarInfo = isEnum ? { ...resolved!, size: leaf.size as ScalarInfo['size'] } : resolved!;

  if (leaf.bitWidth !== undefined || leaf.bitOffset !== undefined) {
    if (isArray) fail('an array cannot be a bitfield');
    if (leaf.bitWidth === undefined || leaf.bitOffset === undefined) fail('bitOffset and bitWidth must come together');
    if (scalar.float) fail('a float cannot be a bitfield');
    if (leaf.size !== scalar.size) fail(`storage unit size ${leaf.size} differs from sizeof(${leaf.type}) = ${scalar.size}`);
    if (leaf.bitWidth! < 1 || leaf.bitOffset! + leaf.bitWidth! > leaf.size * 8) {
      fail(`bits ${leaf.bitOffset}+${leaf.bitWidth} do not fit its ${leaf.size}-byte storage unit`);
    }
    checkBounds(leaf, leaf.size, owner, fail);
    return {
      kind: 'bitfield',
      name,
      path,
      leaf,
      scalar,
      bitOffset: leaf.bitOffset!,
      bitWidth: leaf.bitWidth!,
      big: leaf.bitWidth! > 32,
    };
  }

  if (!isArray) {
    if (leaf.size !== scalar.size) fail(`size ${leaf.size} differs from sizeof(${leaf.type}) = ${scalar.size}`);
    checkBounds(leaf, scalar.size, owner, fail);
    return { kind: 'scalar', name, path, leaf, scalar };
  }
  if (leaf.size !== scalar.size) fail(`element size ${leaf.size} differs from sizeof(${leaf.type}) = ${scalar.size}`);
  checkBounds(leaf, scalar.size * count, owner, fail);
  if (scalar.size === 1 && !scalar.float) {
    return { kind: 'bytes', name, path, leaf, count, flexible, stride: 1, scalar };
  }
  return { kind: 'scalarArray', name, path, leaf, count, flexible, stride: scalar.size, scalar };
}

function arrayCount(leaf: LayoutLeaf, fail: (problem: string) => never): number {
  if (leaf.dims === undefined) return leaf.count!;
  const product = leaf.dims.reduce((a, b) => a * b, 1);
  if (leaf.count !== undefined && leaf.count !== product) {
    fail(`count ${leaf.count} disagrees with dims [${leaf.dims.join(', ')}]`);
  }
  return product;
}

/** A fixed member must lie inside its struct; a flexible one must start inside it. */
function checkBounds(leaf: LayoutLeaf, bytes: number, owner: StructSpec, fail: (problem: string) => never): void {
  if (leaf.offset + bytes > owner.size) {
    fail(`bytes ${leaf.offset}..${leaf.offset + bytes} overrun the ${owner.size}-byte ${owner.kind}`);
  }
}

/**
 * The bit interval [start, end) a field occupies. A flexible array counts as one element here,
 * so that two flexible arrays sharing an offset (a union of them) count as overlapping.
 */
export function fieldBits(field: FieldNode): [number, number] {
  const start = field.leaf.offset * 8;
  switch (field.kind) {
    case 'bitfield':
      return [start + field.bitOffset, start + field.bitOffset + field.bitWidth];
    case 'scalar':
      return [start, start + field.scalar.size * 8];
    case 'struct':
      return [start, start + field.bytes * 8];
    default:
      return [start, start + Math.max(field.count, field.flexible ? 1 : 0) * field.stride * 8];
  }
}

/** The first pair of fields that share bits, if any. */
export function findOverlap(fields: readonly FieldNode[]): [FieldNode, FieldNode] | undefined {
  const spans = fields
    .map((f) => ({ f, bits: fieldBits(f) }))
    .filter((s) => s.bits[1] > s.bits[0])
    .sort((a, b) => a.bits[0] - b.bits[0] || a.bits[1] - b.bits[1]);
  let reach: { f: FieldNode; end: number } | undefined;
  for (const span of spans) {
    if (reach && span.bits[0] < reach.end) return [reach.f, span.f];
    if (!reach || span.bits[1] > reach.end) reach = { f: span.f, end: span.bits[1] };
  }
  return undefined;
}
