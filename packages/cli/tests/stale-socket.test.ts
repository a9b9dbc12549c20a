/**
 * A client verb finding NAME.sock that nobody answers on removes it only if it is a socket
 * (#24): a regular file of that name is someone's data, and stays.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './helpers/cli.js';

const runtime = mkdtempSync(join(tmpdir(), 'kvm-ts-xdg-'));
process.env.XDG_RUNTIME_DIR = runtime;
const dir = join(runtime, 'kvm-ts');
mkdirSync(dir, { mode: 0o700 });
test.after.always(() => rmSync(runtime, { recursive: true, force: true }));

test('stat NAME on a regular file NAME.sock: one line, the file stays', (t) => {
  const file = join(dir, 'zz.sock');
  writeFileSync(file, 'precious');
  const r = cli('stat', 'zz');
  t.is(r.code, 1, r.stderr);
  t.is(r.stderr, `kvm-cli: no VM named 'zz' (${file} is not a socket; left alone)\n`);
  t.is(readFileSync(file, 'utf8'), 'precious');
});

test('stat NAME on a stale socket still removes it', (t) => {
  const path = join(dir, 'gone.sock');
  // A listener killed by SIGKILL leaves its socket file bound to no one, as a killed VMM does.
  spawnSync(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  t.true(existsSync(path));
  const r = cli('stat', 'gone');
  t.is(r.stderr, "kvm-cli: no VM named 'gone' (its socket was stale and has been removed)\n");
  t.false(existsSync(path));
});
