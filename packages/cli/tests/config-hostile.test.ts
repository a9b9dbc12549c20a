/**
 * --config files that are not config files (#24): a device, a FIFO, a symlink to a device, a
 * huge file. Each is refused from the opened descriptor in one line, exit 2, at once: nothing is
 * read without a bound and nothing waits for a writer.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-config-hostile-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const fifo = join(dir, 'fifo.json');
execFileSync('mkfifo', [fifo]);
symlinkSync('/dev/zero', join(dir, 'vm.json'));
writeFileSync(join(dir, 'big.json'), `{"name": "${'x'.repeat(5 * 1024 * 1024)}"}`);

/** One line, exit 2, and no slower than a config file that is simply missing (plus a second). */
function refusedAtOnce(t: import('ava').ExecutionContext, path: string, reason: RegExp): void {
  const t0 = Date.now();
  cli('run', '--config', join(dir, 'missing.json'));
  const baseline = Date.now() - t0;
  const t1 = Date.now();
  const r = cli('run', '--config', path);
  const took = Date.now() - t1;
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, new RegExp(`^kvm-cli: --config: ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ${reason.source}\\n$`));
  t.true(took < baseline + 1000, `took ${took} ms, a missing file ${baseline} ms`);
}

test('--config /dev/zero: not a regular file', (t) => refusedAtOnce(t, '/dev/zero', /not a regular file \(a character device\)/));
test('--config FIFO: refused without waiting for a writer', (t) => refusedAtOnce(t, fifo, /not a regular file \(a FIFO\)/));
test('--config vm.json -> /dev/zero: the symlink is judged by what it opens', (t) => refusedAtOnce(t, join(dir, 'vm.json'), /not a regular file \(a character device\)/));
test('--config with more than 4 MiB: refused before it is parsed', (t) => refusedAtOnce(t, join(dir, 'big.json'), /larger than 4 MiB, the most a config file may be/));
