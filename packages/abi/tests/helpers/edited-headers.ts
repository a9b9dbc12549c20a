import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSpec } from '../../src/generator/index.js';
import { cacheReady, includeRoot } from '../../src/headers/index.js';
import type { Arch, Spec } from '../../src/spec/types.js';

/** One textual edit of a header: `from` must occur exactly once in `file` (relative to the include root). */
export interface HeaderEdit {
  file: string;
  from: string;
  to: string;
}

/** Why a pinned header set cannot be edited here, or undefined when its cache is synced. */
export const headersMissing = (id: string, arch: Arch): string | undefined =>
  cacheReady(id, arch) ? undefined : `the pinned ${id}/${arch} header cache is not synced (npm run fetch)`;

/** The spec of a pinned header set with `edits` applied to a copy of its synced headers. */
export function specOfEditedHeaders(id: string, arch: Arch, edits: readonly HeaderEdit[]): Spec {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-edited-'));
  try {
    cpSync(includeRoot(id, arch), dir, { recursive: true });
    for (const e of edits) {
      const path = join(dir, e.file);
      const text = readFileSync(path, 'utf8');
      const at = text.indexOf(e.from);
      if (at < 0 || text.indexOf(e.from, at + 1) >= 0) throw new Error(`${id}/${arch} ${e.file}: '${e.from}' does not occur exactly once`);
      writeFileSync(path, text.slice(0, at) + e.to + text.slice(at + e.from.length));
    }
    return generateSpec({ includeDirs: [dir], arch, kernel: id });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
