/**
 * Runs, inside the testbed, the tests the host deferred to it (needs.ts): per file, one ava run
 * matching exactly their titles, with ava's timeout stretched, resumable after the machine died.
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
  file: string;
  tests: number;
  args: string[];
}

/** One ava run per file, in a stable order, so that a run resumed after a crash knows where it was. */
export function avaRuns(tests: DeferredTest[], scale: number): AvaRun[] {
  const byFile = new Map<string, DeferredTest[]>();
  for (const t of tests) byFile.set(t.file, [...(byFile.get(t.file) ?? []), t]);
  return [...byFile].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([file, ts]) => {
    const cwd = packageDirOf(file);
    const pkg = JSON.parse(readFileSync(join(cwd, 'package.json'), 'utf8')) as { ava?: { timeout?: string } };
    const base = /^(\d+)s$/.exec(pkg.ava?.timeout ?? '')?.[1];
    // ava's timeout is for inactivity (no test finished in that long), so a hang costs all of it:
    // scaled by a third of the factor at most. Slow tests set their own t.timeout, fully scaled.
    const timeout = `${Math.ceil(Number(base ?? 10) * Math.max(1, scale / 3))}s`;
    // --match=TITLE, not two words: a title like "--json prints …" would read as a flag. The serial
    // console is a tty, so colour is turned off for CI's count of ✔ marks.
    return { cwd, file, tests: ts.length, args: ['--no-install', 'ava', '--no-color', `--timeout=${timeout}`, file, ...ts.map((t) => `--match=${matchPattern(t.title)}`)] };
  });
}

/**
 * Where a deferred pass keeps, beside its list, each file's last output (N.log) and, once that run
 * ended, its exit status (N.status). A pass started again after the machine died skips the files
 * with a status and runs the others from the start; .ci/run counts marks in the N.log files, so a
 * file cut off halfway is counted once, from its last run.
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
      write(`testbed: ${run.file}: done before the machine was booted again (exit ${status})\n`);
      if (status !== 0) failed++;
      continue;
    }
    const again = existsSync(join(dir, `${i}.log`)) ? ', again: the machine died during its last run' : '';
    write(`testbed: ${run.file}: ${run.tests} deferred tests${again}\n`);
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
