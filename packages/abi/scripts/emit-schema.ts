/**
 * Writes spec/schema.json, the JSON Schema of a spec file, from the zod schema in
 * src/spec/schema.ts. Run after changing that schema, and commit the result:
 *
 *   npx tsx packages/abi/scripts/emit-schema.ts
 *
 * tests/load.test.ts fails while the committed file is stale.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { specJsonSchemaText } from '../src/spec/schema.js';

const target = fileURLToPath(new URL('../spec/schema.json', import.meta.url));
mkdirSync(dirname(target), { recursive: true });
writeFileSync(target, specJsonSchemaText());
console.log(`wrote ${target}`);
