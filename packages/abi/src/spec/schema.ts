/**
 * The spec FILE format as zod schemas (built in spec-schemas.ts), and the JSON Schema exported
 * from them for tools outside this repo (committed as spec/schema.json by scripts/emit-schema.ts).
 * Importing this module loads zod; the loader and codecs (the `@kvm-ts/abi/runtime` entry point)
 * do not import it.
 */
import { zod } from '../runtime/lazy-zod.js';
import { specSchemas } from './spec-schemas.js';

export { findSpecInconsistency, specSchemas, type SpecSchemas } from './spec-schemas.js';

export const { IoctlSpecSchema, LayoutLeafSchema, StructSpecSchema, SpecSchema } = specSchemas();

export const SPEC_SCHEMA_ID = 'https://kvm-ts.dev/schema/spec.json';

/** The JSON Schema (draft 2020-12) of a spec file. */
export function specJsonSchema(): Record<string, unknown> {
  const schema = zod().z.toJSONSchema(SpecSchema, { target: 'draft-2020-12', io: 'input' });
  return { ...schema, $id: SPEC_SCHEMA_ID, title: 'kvm-ts ABI spec' };
}

/** spec/schema.json exactly as committed. */
export function specJsonSchemaText(): string {
  return `${JSON.stringify(specJsonSchema(), null, 2)}\n`;
}
