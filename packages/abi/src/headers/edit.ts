import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Arch } from '../spec/types.js';
import { includeRoot } from './paths.js';

/** One textual edit of a header: `from` must occur exactly once in `file` (relative to the include root). */
export interface HeaderEdit {
  file: string;
  from: string;
  to: string;
}

/** The edits that cannot apply to a synced pinned set (an anchor missing or ambiguous there), as messages. */
export function editProblems(id: string, arch: Arch, edits: readonly HeaderEdit[]): string[] {
  return edits.flatMap((e) => {
    let text: string;
    try {
      text = readFileSync(join(includeRoot(id, arch), e.file), 'utf8');
    } catch {
      return [`${id}/${arch}: no ${e.file}`];
    }
    const at = text.indexOf(e.from);
    return at < 0 || text.indexOf(e.from, at + 1) >= 0 ? [`${id}/${arch} ${e.file}: '${e.from}' does not occur exactly once`] : [];
  });
}

/**
 * Runs `use` on a temporary copy of a synced pinned include root with `edits` applied (what a
 * kernel developer's one-line mistake would leave), and removes the copy afterwards.
 */
export function withEditedHeaders<T>(id: string, arch: Arch, edits: readonly HeaderEdit[], use: (includeDir: string) => T): T {
  const problems = editProblems(id, arch, edits);
  if (problems.length > 0) throw new Error(problems[0]);
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-edited-'));
  try {
    cpSync(includeRoot(id, arch), dir, { recursive: true });
    for (const e of edits) {
      const path = join(dir, e.file);
      const text = readFileSync(path, 'utf8');
      const at = text.indexOf(e.from);
      writeFileSync(path, text.slice(0, at) + e.to + text.slice(at + e.from.length));
    }
    return use(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
