/**
 * Runs, inside the testbed, the tests the host deferred to it (needs.ts): per package, one ava run
 * over the files they are in, matching exactly their titles, with ava's timeout stretched,
 * resumable after the machine died.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
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
  tests: number;
  args: string[];
}

/**
 * One ava run per package, in a stable order, so that a pass resumed after a crash knows where it
 * was. Not one per file: inside, ava's start costs about a minute, and one run per package lets it
 * run the package's files side by side (one run per file took the CLI's 60 tests from 7 to 25 min).
 */
export function avaRuns(tests: DeferredTest[], scale: number): AvaRun[] {
  const byPackage = new Map<string, DeferredTest[]>();
  for (const t of tests) {
    const dir = packageDirOf(t.file);
    byPackage.set(dir, [...(byPackage.get(dir) ?? []), t]);
  }
  return [...byPackage].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([cwd, ts]) => {
    const pkg = JSON.parse(readFileSync(join(cwd, 'package.json'), 'utf8')) as { ava?: { timeout?: string } };
    const base = /^(\d+)s$/.exec(pkg.ava?.timeout ?? '')?.[1];
    // ava's timeout is for inactivity (no test finished in that long), so a hang costs all of it:
    // scaled by a third of the factor at most. Slow tests set their own t.timeout, fully scaled.
    const timeout = `${Math.ceil(Number(base ?? 10) * Math.max(1, scale / 3))}s`;
    const files = [...new Set(ts.map((t) => t.file))].sort();
    // --match=TITLE, not two words: a title like "--json prints …" would read as a flag. The serial
    // console is a tty, so colour is turned off for CI's count of ✔ marks.
    return { cwd, tests: ts.length, args: ['--no-install', 'ava', '--no-color', `--timeout=${timeout}`, ...files, ...ts.map((t) => `--match=${matchPattern(t.title)}`)] };
  });
}

/**
 * Where a deferred pass keeps, beside its list, each package's last output (N.log) and, once that
 * run ended, its exit status (N.status). A pass started again after the machine died skips the
 * packages with a status and runs the others from the start; .ci/run counts marks in the N.log
 * files, so a package cut off halfway is counted once, from its last run.
 */
export const progressDir = (list: string) => `${list}.runs`;

export type AvaRunner = (run: AvaRun, output: (chunk: Buffer) => void) => Promise<number>;

const npxAva: AvaRunner = (run, output) => new Promise((resolve) => {
  const child = spawn('npx', run.args, { cwd: run.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', output);
  child.stderr.on('data', output);
  child.on('error', (e) => {
    output(Buffer.from(`testbed: cannot run npx ava: ${e.message}\n`));
    resolve(1);
  });
  child.on('close', (status) => resolve(status ?? 1));
});

/** `write` is where the pass's output goes (the machine's command port). */
export async function runDeferred(path: string, runner: AvaRunner = npxAva, write: (s: string | Buffer) => void = (s) => process.stdout.write(s)): Promise<number> {
  const tests = readDeferred(path);
  if (tests.length === 0) {
    write('testbed: no deferred tests\n');
    return 0;
  }
  const dir = progressDir(path);
  mkdirSync(dir, { recursive: true });
  let failed = 0;
  for (const [i, run] of avaRuns(tests, timeScale()).entries()) {
    const statusFile = join(dir, `${i}.status`);
    if (existsSync(statusFile)) {
      const status = Number(readFileSync(statusFile, 'utf8'));
      write(`testbed: ${run.cwd}: done before the machine was booted again (exit ${status})\n`);
      if (status !== 0) failed++;
      continue;
    }
    const again = existsSync(join(dir, `${i}.log`)) ? ', again: the machine died during its last run' : '';
    write(`testbed: ${run.cwd}: ${run.tests} deferred tests${again}\n`);
    const log = openSync(join(dir, `${i}.log`), 'w');
    const status = await runner(run, (chunk) => {
      write(chunk);
      writeSync(log, chunk);
    });
    fsyncSync(log);
    closeSync(log);
    const done = openSync(statusFile, 'w');
    writeSync(done, String(status));
    fsyncSync(done);
    closeSync(done);
    if (status !== 0) failed++;
  }
  return failed === 0 ? 0 : 1;
}
