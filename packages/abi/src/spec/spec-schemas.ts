/**
 * The zod schemas of the spec FILE format (mirrors spec/types.ts), built on first use so that
 * importing this module (as the loader does) never loads zod; plus the cheap checks the loader
 * runs on committed spec files instead of a full schema validation.
 * Only the top level admits extra keys, so generator metadata can be added without breaking
 * readers; everything below is strict so that misspelt keys are caught.
 */
import type { z as Z } from 'zod';
import { zod } from '../runtime/lazy-zod.js';
import type { Spec } from './types.js';
import { ARCHES, FD_SOURCES, type FdSource } from './types.js';

function buildSpecSchemas(z: typeof Z) {
  const identifier = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected a C identifier');
  const byteCount = z.number().int().min(0);
  const elementCount = z.number().int().min(0);
  const headerFile = z.string().min(1).describe('Header path relative to the include root (or the Linux tree)');
  const headerLine = z.number().int().min(1).describe('1-based line in that header');
  const SourceLocationSchema = z.strictObject({ file: headerFile, line: headerLine });

  const IoctlSpecSchema = z.strictObject({
    number: z.number().int().min(0).max(0xffff_ffff).describe('The full 32-bit request number'),
    dir: z.enum(['none', 'read', 'write', 'readwrite']),
    size: byteCount.max(0x3fff).describe('_IOC_SIZE: sizeof the argument type, 0 for _IO'),
    type: z.string().min(1).nullable().describe('The C argument type as written in the macro, null for _IO'),
    fd: z.enum(['system', 'vm', 'vcpu', 'device']),
    fds: z.array(z.enum(['system', 'vm', 'vcpu', 'device'])).min(2).optional()
      .describe('Every fd class the ioctl is valid on (fd among them), when api.rst lists more than one'),
    fdSource: z.enum(FD_SOURCES as [FdSource, ...FdSource[]]).optional()
      .describe('api.rst: from the reviewed fd table; header-section: from the linux/kvm.h section the ioctl is defined in'),
    file: headerFile.optional(),
    line: headerLine.optional(),
  });

  const LayoutLeafSchema = z.strictObject({
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
    file: headerFile.optional().describe("Only where it differs from the struct's file"),
    line: headerLine.optional(),
  });

  const StructSpecSchema = z.strictObject({
    size: byteCount,
    align: z.number().int().min(1),
    kind: z.enum(['struct', 'union']),
    file: headerFile.optional(),
    line: headerLine.optional(),
    layout: z.array(LayoutLeafSchema),
  });

  const SpecSchema = z
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
      enums: z.record(identifier, z.array(identifier).min(1)).optional()
        .describe('C enums with members in constants: tag (first enumerator when anonymous) -> members'),
      locations: z.strictObject({
        constants: z.record(identifier, SourceLocationSchema),
        typedefs: z.record(identifier, SourceLocationSchema),
      }).optional().describe('Where each constant and typedef is defined'),
      aliases: z.record(identifier, identifier).optional()
        .describe('Macros defined as another constant or ioctl name: alias -> target'),
      macros: z.record(identifier, z.strictObject({
        params: z.number().int().min(0),
        variadic: z.boolean().optional(),
        body: z.string().describe('Replacement list, tokens joined by one space, parameters spelled $0, $1, ...'),
      })).optional().describe('Function-like KVM_* macros'),
      diagnostics: z.array(z.strictObject({ name: identifier, file: headerFile, line: headerLine, reason: z.string().min(1) })).optional()
        .describe('Macros left out of constants because they need a kernel-only helper (BIT, GENMASK, PAGE_SIZE)'),
    })
    .describe('One generated KVM userspace ABI spec (packages/abi/spec/<series>/<arch>.json)');

  return { IoctlSpecSchema, LayoutLeafSchema, StructSpecSchema, SpecSchema };
}

export type SpecSchemas = ReturnType<typeof buildSpecSchemas>;

let built: SpecSchemas | undefined;

/** The spec file schemas (loads zod the first time). */
export function specSchemas(): SpecSchemas {
  return (built ??= buildSpecSchemas(zod().z));
}

// Keeps the schema and the hand-written contract in step: fails to compile if they diverge.
const parsedIsSpec = (p: Z.infer<SpecSchemas['SpecSchema']>): Spec => p;
const structIsParsed = (s: Spec['structs'][string]): Z.infer<SpecSchemas['StructSpecSchema']> => s;
const ioctlIsParsed = (i: Spec['ioctls'][string]): Z.infer<SpecSchemas['IoctlSpecSchema']> => i;
void [parsedIsSpec, structIsParsed, ioctlIsParsed];


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

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;

/**
 * A structural check without zod, for the spec files committed in this package (CI validates
 * them fully: tests, probe, regenerate): the top-level members and every value the loader and
 * the codecs read have the right JS type, so a damaged file still fails in one line instead of
 * somewhere deep in a codec. Returns the first problem found, or undefined.
 */
export function findSpecShapeProblem(json: unknown): string | undefined {
  if (!isRecord(json)) return '(root): expected an object';
  if (typeof json.kernel !== 'string' || !/^\d+\.\d+/.test(json.kernel)) return 'kernel: expected a kernel version like 6.12.107';
  if (!(ARCHES as readonly unknown[]).includes(json.arch)) return `arch: expected one of ${ARCHES.join(', ')}`;
  for (const key of ['ioctls', 'structs', 'constants', 'typedefs'] as const) {
    if (!isRecord(json[key])) return `${key}: expected an object`;
  }
  for (const [name, ioctl] of Object.entries(json.ioctls as Record<string, unknown>)) {
    if (!isRecord(ioctl) || !isCount(ioctl.number) || !isCount(ioctl.size)) return `ioctls.${name}: expected { number, size, ... }`;
  }
  for (const [name, value] of Object.entries(json.constants as Record<string, unknown>)) {
    if (!Number.isInteger(value) && !(typeof value === 'string' && /^-?\d+$/.test(value))) return `constants.${name}: expected an integer`;
  }
  for (const [name, value] of Object.entries(json.typedefs as Record<string, unknown>)) {
    if (typeof value !== 'string') return `typedefs.${name}: expected a string`;
  }
  for (const [name, struct] of Object.entries(json.structs as Record<string, unknown>)) {
    if (!isRecord(struct) || !isCount(struct.size) || !isCount(struct.align) || !Array.isArray(struct.layout)) {
      return `structs.${name}: expected { size, align, kind, layout }`;
    }
    if (struct.kind !== 'struct' && struct.kind !== 'union') return `structs.${name}.kind: expected 'struct' or 'union'`;
    for (const [i, leaf] of (struct.layout as unknown[]).entries()) {
      if (!isRecord(leaf) || typeof leaf.path !== 'string' || typeof leaf.type !== 'string' || !isCount(leaf.offset) || !isCount(leaf.size)) {
        return `structs.${name}.layout.${i}: expected { path, offset, size, type, ... }`;
      }
    }
  }
  return undefined;
}
