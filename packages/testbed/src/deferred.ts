/**
 * Runs, inside the testbed, the tests the host deferred to it (needs.ts): per package, one ava run
 * over the files they are in, matching exactly their titles, with ava's timeout stretched.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { DeferredTest } from './needs.js';
import { timeScale } from './time-scale.js';

export function readDeferred(path: string): DeferredTest[] {
  const seen = new Set<string>();
  const out: DeferredTest[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const d = JSON.parse(line) as DeferredTest;
    if (typeof d.file !== 'string' || typeof d.title !== 'string') throw new Error(`${path}: not a deferred test: ${line}`);
    const key = `${d.file}\0${d.title}`;
    if (!seen.has(key)) out.push(d), seen.add(key);
  }
  return out;
}

function packageDirOf(file: string): string {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) if (existsSync(join(dir, 'package.json'))) return dir;
  throw new Error(`${file} is in no package`);
}

/** ava's --match is a glob over titles: `*` matches itself too, and a leading `!` would negate. */
export function matchPattern(title: string): string {
  return title.startsWith('!') ? `*${title.slice(1)}` : title;
}

export interface AvaRun {
  cwd: string;
  args: string[];
}

export function avaRuns(tests: DeferredTest[], scale: number): AvaRun[] {
  const byPackage = new Map<string, DeferredTest[]>();
  for (const t of tests) {
    const dir = packageDirOf(t.file);
    byPackage.set(dir, [...(byPackage.get(dir) ?? []), t]);
  }
  return [...byPackage].map(([cwd, ts]) => {
    const pkg = JSON.parse(readFileSync(join(cwd, 'package.json'), 'utf8')) as { ava?: { timeout?: string } };
    const base = /^(\d+)s$/.exec(pkg.ava?.timeout ?? '')?.[1];
    // ava's timeout is for inactivity (no test finished in that long), so a hang costs all of it:
    // scaled by a third of the factor at most. Slow tests set their own t.timeout, fully scaled.
    const timeout = `${Math.ceil(Number(base ?? 10) * Math.max(1, scale / 3))}s`;
    const files = [...new Set(ts.map((t) => t.file))];
    // --match=TITLE, not two words: a title like "--json prints …" would read as a flag. The serial
    // console is a tty, so colour is turned off for CI's count of ✔ marks.
    return { cwd, args: ['--no-install', 'ava', '--no-color', `--timeout=${timeout}`, ...files, ...ts.map((t) => `--match=${matchPattern(t.title)}`)] };
  });
}

export function runDeferred(path: string): number {
  const tests = readDeferred(path);
  if (tests.length === 0) {
    process.stdout.write('testbed: no deferred tests\n');
    return 0;
  }
  let failed = 0;
  for (const run of avaRuns(tests, timeScale())) {
    process.stdout.write(`testbed: ${run.cwd}: ${tests.filter((t) => packageDirOf(t.file) === run.cwd).length} deferred tests\n`);
    const r = spawnSync('npx', run.args, { cwd: run.cwd, stdio: 'inherit' });
    if (r.status !== 0) failed++;
  }
  return failed === 0 ? 0 : 1;
}
