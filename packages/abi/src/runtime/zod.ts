/**
 * zod schemas for struct values, following the same shape as the codecs: a value passes exactly
 * when every member is present with the JS type decode produces, inside the C type's range.
 * zod is loaded when the first schema is built (lazy-zod.ts), never by importing this module.
 */
import type { z } from 'zod';
import { zod } from './lazy-zod.js';
import { integerRange, isBigScalar, type ScalarInfo } from './scalars.js';
import type { FieldNode, GroupNode, ShapeNode, StructShape } from './shape.js';

export type ElementSchema = (struct: string) => z.ZodType;

export function buildStructSchema(shape: StructShape, element: ElementSchema): z.ZodType {
  return groupSchema(shape.root, element);
}

function groupSchema(group: GroupNode, element: ElementSchema): z.ZodType {
  const z = zod().z;
  const members: Record<string, z.ZodType> = {};
  for (const child of group.children) members[child.name] = nodeSchema(child, element);
  return z.strictObject(members);
}

function nodeSchema(node: ShapeNode, element: ElementSchema): z.ZodType {
  return node.kind === 'group' ? groupSchema(node, element) : fieldSchema(node, element);
}

function fieldSchema(node: FieldNode, element: ElementSchema): z.ZodType {
  const z = zod().z;
  switch (node.kind) {
    case 'scalar':
      return scalarSchema(node.scalar);
    case 'bitfield': {
      const { min, max } = integerRange(node.scalar.signed, node.bitWidth);
      return node.big ? z.bigint().min(min).max(max) : z.number().int().min(Number(min)).max(Number(max));
    }
    case 'bytes': {
      const bytes = z.instanceof(Uint8Array);
      if (node.flexible) return bytes;
      const count = node.count;
      return bytes.refine((b) => b.length === count, { message: `expected exactly ${count} bytes` });
    }
    case 'scalarArray':
      return sized(z.array(scalarSchema(node.scalar)), node.count, node.flexible);
    case 'structArray':
      return sized(z.array(element(node.struct)), node.count, node.flexible);
    case 'struct':
      return element(node.struct);
  }
}

function sized<T extends z.ZodType>(array: z.ZodArray<T>, count: number, flexible: boolean): z.ZodType {
  return flexible ? array : array.length(count);
}

export function scalarSchema(scalar: ScalarInfo): z.ZodType {
  const z = zod().z;
  if (scalar.float) {
    // Any double the type can hold, NaN and infinities included: decode of arbitrary bytes yields them.
    const single = scalar.size === 4;
    return z.custom<number>(
      (v) => typeof v === 'number' && (!single || Number.isNaN(v) || Object.is(Math.fround(v), v)),
      { message: single ? 'expected a number representable as a 32-bit float' : 'expected a number' },
    );
  }
  const { min, max } = integerRange(scalar.signed, scalar.size * 8);
  if (isBigScalar(scalar)) return z.bigint().min(min).max(max);
  return z.number().int().min(Number(min)).max(Number(max));
}
