/**
 * zod, loaded on first use. Importing zod costs tens of milliseconds and several MiB, and a VMM
 * that only decodes committed specs never needs it; so nothing on the loadAbi()/codec path imports
 * zod at module load. zod 4 ships a CommonJS build, which createRequire loads synchronously the
 * first time a schema is actually built (codec.schema, loadSpecFile, validateSpec, ...).
 */
import { createRequire } from 'node:module';
import type * as Zod from 'zod';

let loaded: typeof Zod | undefined;

export function zod(): typeof Zod {
  return (loaded ??= createRequire(import.meta.url)('zod') as typeof Zod);
}
