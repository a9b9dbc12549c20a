/**
 * The spec FILE format as a zod schema (mirrors spec/types.ts), and the JSON Schema exported from
 * it for tools outside this repo (committed as spec/schema.json by scripts/emit-schema.ts).
 * Only the top level admits extra keys, so generator metadata can be added without breaking
 * readers; everything below is strict so that misspelt keys are caught.
 */
import { z } from 'zod';
import type { Spec } from './types.js';
import { ARCHES } from './types.js';

const identifier = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected a C identifier');
const byteCount = z.number().int().min(0);
const elementCount = z.number().int().min(0);

export const IoctlSpecSchema = z.strictObject({
  number: z.number().int().min(0).max(0xffff_ffff).describe('The full 32-bit request number'),
  dir: z.enum(['none', 'read', 'write', 'readwrite']),
  size: byteCount.max(0x3fff).describe('_IOC_SIZE: sizeof the argument type, 0 for _IO'),
  type: z.string().min(1).nullable().describe('The C argument type as written in the macro, null for _IO'),
  fd: z.enum(['system', 'vm', 'vcpu', 'device']),
});

export const LayoutLeafSchema = z.strictObject({
  path: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/, 'expected a dotted member path')
    .describe('offsetof designator; nested non-array aggregates are expanded into leaves'),
  offset: byteCount,
  size: byteCount.describe('sizeof the member; for an array, of one element; for a bitfield, of its storage unit'),
  type: z.string().min(1).describe('C type; "struct X"/"union X" (X a key of structs) for aggregate arrays'),
  count: elementCount.optional().describe('Element count of an array; 0 for a flexible array member'),
  dims: z.array(z.number().int().min(0)).min(2).optional().describe('Only for multi-dimensional arrays: each extent, outermost first; count is their product'),
  bitOffset: z.number().int().min(0).optional().describe('Bitfield LSB position inside the storage unit'),
  bitWidth: z.number().int().min(1).optional(),
});

export const StructSpecSchema = z.strictObject({
  size: byteCount,
  align: z.number().int().min(1),
  kind: z.enum(['struct', 'union']),
  layout: z.array(LayoutLeafSchema),
});

export const SpecSchema = z
  .looseObject({
    kernel: z
      .string()
      .regex(/^\d+\.\d+[0-9A-Za-z.+~-]*$/, 'expected a kernel version like 6.12.107 or 7.2+local')
      .describe('Upstream kernel version the headers came from; "+local" for patched sets'),
    arch: z.enum(ARCHES as [Spec['arch'], ...Spec['arch'][]]),
    ioctls: z.record(identifier, IoctlSpecSchema),
    structs: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_.]*$/, 'expected a struct name'), StructSpecSchema),
    constants: z.record(
      identifier,
      z.union([z.number().int(), z.string().regex(/^-?\d+$/, 'expected a decimal integer string')]),
    ),
    typedefs: z.record(identifier, z.string().min(1)),
  })
  .describe('One generated KVM userspace ABI spec (packages/abi/spec/<series>/<arch>.json)');

// Keeps the schema and the hand-written contract in step: fails to compile if they diverge.
const parsedIsSpec = (p: z.infer<typeof SpecSchema>): Spec => p;
const structIsParsed = (s: Spec['structs'][string]): z.infer<typeof StructSpecSchema> => s;
const ioctlIsParsed = (i: Spec['ioctls'][string]): z.infer<typeof IoctlSpecSchema> => i;
void [parsedIsSpec, structIsParsed, ioctlIsParsed];

export const SPEC_SCHEMA_ID = 'https://kvm-ts.dev/schema/spec.json';

/** The JSON Schema (draft 2020-12) of a spec file. */
export function specJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(SpecSchema, { target: 'draft-2020-12', io: 'input' });
  return { ...schema, $id: SPEC_SCHEMA_ID, title: 'kvm-ts ABI spec' };
}

/** spec/schema.json exactly as committed. */
export function specJsonSchemaText(): string {
  return `${JSON.stringify(specJsonSchema(), null, 2)}\n`;
}

/**
 * Cross-references a schema cannot express. Returns the first problem found as one line, or
 * undefined. (Leaf-level layout checks happen when a struct's codec is built.)
 */
export function findSpecInconsistency(spec: Spec): string | undefined {
  for (const [name, struct] of Object.entries(spec.structs)) {
    for (const leaf of struct.layout) {
      const element = /^(?:struct|union)\s+(\S.*)$/.exec(leaf.type)?.[1];
      if (element !== undefined && !Object.hasOwn(spec.structs, element)) {
        return `structs.${name}: leaf '${leaf.path}' has type '${leaf.type}' but structs has no '${element}'`;
      }
      if ((leaf.bitOffset === undefined) !== (leaf.bitWidth === undefined)) {
        return `structs.${name}: leaf '${leaf.path}' needs both bitOffset and bitWidth`;
      }
    }
  }
  return undefined;
}
