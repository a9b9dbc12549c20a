/** "7.2+local" → { base: "7.2", local: true }: a "+local" spec is the base set plus kernel-headers/patches. */
export function splitSpecId(id: string): { base: string; local: boolean } {
  const plus = id.indexOf('+');
  return plus < 0 ? { base: id, local: false } : { base: id.slice(0, plus), local: true };
}

/** The base set's headers with every local patch applied, exactly as scripts/generate-local.ts does. */
export { patchedIncludeRoot } from '../../scripts/generate-local.js';
