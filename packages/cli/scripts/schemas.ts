/**
 * Writes the JSON Schemas of docs/schemas/ from the zod schemas they document: the control
 * socket's requests and replies (@kvm-ts/hypervisor/control) and `kvm-cli run --config` files
 * (src/run-options.ts). `--check` only compares (tests/schemas.test.ts does the same).
 *
 *   cd packages/cli && npm run schemas
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { controlJsonSchemas, loadZod } from '@kvm-ts/hypervisor/control';
import { configJsonSchema } from '../src/run-options.js';

export const SCHEMA_DIR = fileURLToPath(new URL('../../../docs/schemas/', import.meta.url));

/** File name → the text it must hold. */
export function schemaFiles(): Record<string, string> {
  const z = loadZod();
  const control = controlJsonSchemas();
  const text = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
  return {
    'control-request.schema.json': text(control.request),
    'control-reply.schema.json': text(control.reply),
    'run-config.schema.json': text(configJsonSchema(z)),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const [name, text] of Object.entries(schemaFiles())) {
    const path = SCHEMA_DIR + name;
    if (check) {
      let old = '';
      try {
        old = readFileSync(path, 'utf8');
      } catch {
        // missing counts as stale
      }
      if (old !== text) {
        console.error(`stale: docs/schemas/${name}`);
        stale++;
      }
    } else {
      writeFileSync(path, text);
      console.log(`wrote docs/schemas/${name}`);
    }
  }
  process.exitCode = stale ? 1 : 0;
}
