import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ARCHES, type Arch, type Spec } from '../../src/spec/types.js';

export const SPEC_DIR = fileURLToPath(new URL('../../spec/', import.meta.url));

export interface SpecFile {
  /** The spec directory name, which is the pinned header set id ("6.12"). */
  id: string;
  arch: Arch;
  file: string;
}

/** Every committed packages/abi/spec/<id>/<arch>.json, in a stable order. */
export function committedSpecs(): SpecFile[] {
  if (!existsSync(SPEC_DIR)) return [];
  const found: SpecFile[] = [];
  for (const entry of readdirSync(SPEC_DIR, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    for (const arch of ARCHES) {
      const file = join(SPEC_DIR, entry.name, `${arch}.json`);
      if (existsSync(file)) found.push({ id: entry.name, arch, file });
    }
  }
  return found.sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }) || ARCHES.indexOf(a.arch) - ARCHES.indexOf(b.arch));
}

export function loadSpec(file: string): Spec {
  return JSON.parse(readFileSync(file, 'utf8')) as Spec;
}
