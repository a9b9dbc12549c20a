/**
 * fast-check generators derived from a struct's shape: values valid per its zod schema, and the
 * mask of the bits a struct's members cover (what survives decode → encode; padding does not).
 */
import { fc } from '@fast-check/ava';
import { integerRange, isBigScalar, type CodecRegistry, type FieldNode, type ScalarInfo, type ShapeNode, type StructShape } from '../../src/index.js';

/** Whether no member of the struct, or of any struct its arrays hold, overlaps another. */
export function overlapFree(registry: CodecRegistry, name: string, seen = new Set<string>()): boolean {
  if (seen.has(name)) return true;
  seen.add(name);
  const shape = registry.shape(name);
  if (shape.hasOverlaps) return false;
  return shape.fields.every((f) => !('struct' in f) || overlapFree(registry, f.struct, seen));
}

export function hasFlexibleArray(shape: StructShape): boolean {
  return shape.fields.some((f) => 'flexible' in f && f.flexible);
}

/** Values of struct `name` whose flexible arrays hold `flex` elements. */
export function valueArbitrary(registry: CodecRegistry, name: string, flex: number): fc.Arbitrary<unknown> {
  return nodeArbitrary(registry, registry.shape(name).root, flex);
}

function nodeArbitrary(registry: CodecRegistry, node: ShapeNode, flex: number): fc.Arbitrary<unknown> {
  if (node.kind === 'group') {
    const members: Record<string, fc.Arbitrary<unknown>> = {};
    for (const child of node.children) members[child.name] = nodeArbitrary(registry, child, flex);
    return fc.record(members);
  }
  return fieldArbitrary(registry, node, flex);
}

function fieldArbitrary(registry: CodecRegistry, node: FieldNode, flex: number): fc.Arbitrary<unknown> {
  switch (node.kind) {
    case 'scalar':
      return scalarArbitrary(node.scalar);
    case 'bitfield': {
      const { min, max } = integerRange(node.scalar.signed, node.bitWidth);
      return node.big ? fc.bigInt({ min, max }) : fc.integer({ min: Number(min), max: Number(max) });
    }
    case 'bytes': {
      const length = node.flexible ? flex : node.count;
      return fc.uint8Array({ minLength: length, maxLength: length });
    }
    case 'scalarArray': {
      const length = node.flexible ? flex : node.count;
      return fc.array(scalarArbitrary(node.scalar), { minLength: length, maxLength: length });
    }
    case 'structArray': {
      const length = node.flexible ? flex : node.count;
      return fc.array(valueArbitrary(registry, node.struct, 0), { minLength: length, maxLength: length });
    }
    case 'struct':
      return valueArbitrary(registry, node.struct, 0);
  }
}

function scalarArbitrary(scalar: ScalarInfo): fc.Arbitrary<unknown> {
  if (scalar.float) return scalar.size === 4 ? fc.float() : fc.double();
  const { min, max } = integerRange(scalar.signed, scalar.size * 8);
  return isBigScalar(scalar) ? fc.bigInt({ min, max }) : fc.integer({ min: Number(min), max: Number(max) });
}

/**
 * Bits of a `bytes`-long buffer that hold member values of struct `name` at `base`, with flexible
 * arrays holding `flex` elements. Float bits are left out: NaN payloads need not survive a
 * float32 → double → float32 trip.
 */
export function memberMask(registry: CodecRegistry, name: string, flex: number, bytes: number): Uint8Array {
  const mask = new Uint8Array(bytes);
  cover(registry, registry.shape(name), 0, flex, mask);
  return mask;
}

function cover(registry: CodecRegistry, shape: StructShape, base: number, flex: number, mask: Uint8Array): void {
  const set = (startBit: number, bits: number) => {
    for (let b = startBit; b < startBit + bits; b++) mask[b >> 3] |= 1 << (b & 7);
  };
  for (const field of shape.fields) {
    const at = (base + field.leaf.offset) * 8;
    switch (field.kind) {
      case 'scalar':
        if (!field.scalar.float) set(at, field.scalar.size * 8);
        break;
      case 'bitfield':
        set(at + field.bitOffset, field.bitWidth);
        break;
      case 'bytes':
      case 'scalarArray':
        if (!field.scalar.float) set(at, (field.flexible ? flex : field.count) * field.stride * 8);
        break;
      case 'structArray': {
        const element = registry.shape(field.struct);
        const count = field.flexible ? flex : field.count;
        for (let i = 0; i < count; i++) cover(registry, element, base + field.leaf.offset + i * field.stride, 0, mask);
        break;
      }
      case 'struct':
        cover(registry, registry.shape(field.struct), base + field.leaf.offset, 0, mask);
        break;
    }
  }
}

/** `a` and `b` agree on every bit set in `mask`. */
export function equalUnderMask(a: Uint8Array, b: Uint8Array, mask: Uint8Array): boolean {
  for (let i = 0; i < mask.length; i++) if (((a[i] ^ b[i]) & mask[i]) !== 0) return false;
  return true;
}
