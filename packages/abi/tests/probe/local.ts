import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { includeRoot, repoRoot } from '../../src/headers/index.js';
import type { Arch } from '../../src/spec/types.js';

/** "7.2+local" → { base: "7.2", local: true }: a "+local" spec is the base set plus kernel-headers/patches. */
export function splitSpecId(id: string): { base: string; local: boolean } {
  const plus = id.indexOf('+');
  return plus < 0 ? { base: id, local: false } : { base: id.slice(0, plus), local: true };
}

export function localPatches(): string[] {
  const dir = join(repoRoot(), 'kernel-headers', 'patches');
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.patch')).sort().map((f) => join(dir, f)) : [];
}

/**
 * A temporary copy of the base set's include root with every local patch applied the way
 * scripts/generate-local.ts applies them (strict `git apply -p1`, name order).
 */
export function patchedIncludeRoot(base: string, arch: Arch): { root: string; cleanup: () => void } {
  const patches = localPatches();
  if (patches.length === 0) throw new Error('a "+local" spec is committed but kernel-headers/patches/ has no .patch files');
  const work = mkdtempSync(join(tmpdir(), 'kvm-ts-probe-local-'));
  const root = join(work, 'include');
  cpSync(includeRoot(base, arch), root, { recursive: true });
  try {
    for (const patch of patches) execFileSync('git', ['apply', '-p1', '--whitespace=nowarn', patch], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    rmSync(work, { recursive: true, force: true });
    throw new Error(`local patches do not apply to ${base}/${arch}: ${String((err as { stderr?: Buffer }).stderr ?? err).split('\n')[0]}`);
  }
  return { root, cleanup: () => rmSync(work, { recursive: true, force: true }) };
}
