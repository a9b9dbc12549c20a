import test from 'ava';
import { innerEnv, parseArgs } from '../src/main.js';
import { commandScript } from '../src/machine.js';
import { spawnSync } from 'node:child_process';

test('options before the command, the command verbatim after them or after --', (t) => {
  const a = parseArgs(['--time-limit', '30', '--cpus', '1', 'npm', 'test', '--', '-x'], {}, 2);
  t.deepEqual(a.command, ['npm', 'test', '--', '-x']);
  t.is(a.timeLimitS, 30);
  t.is(a.cpus, 1);
  t.deepEqual(parseArgs(['--', '--weird'], {}).command, ['--weird']);
  t.is(parseArgs(['x'], { KVM_TS_TESTBED_TIME_LIMIT: '99' }).timeLimitS, 99);
  t.is(parseArgs(['x'], {}).timeScale, 10);
});

test('bad options are usage errors naming what is wrong', (t) => {
  t.throws(() => parseArgs([], {}), { message: 'no command to run' });
  t.throws(() => parseArgs(['--time-limit', '0', 'x'], {}), { message: '--time-limit wants a whole number from 1 to 86400, got 0' });
  t.throws(() => parseArgs(['--cpus'], {}), { message: '--cpus wants a whole number from 1 to 64, got nothing' });
  t.throws(() => parseArgs(['--bogus', 'x'], {}), { message: 'unknown option --bogus' });
  t.throws(() => parseArgs(['x'], { KVM_TS_TESTBED_TIME_LIMIT: 'soon' }), { message: /KVM_TS_TESTBED_TIME_LIMIT wants/ });
});

test('inside, sockets and temporary files go to the tmpfs, the caches stay the host\'s, deferral is off', (t) => {
  const env = innerEnv({ HOME: '/home/u', TMPDIR: '/tmp/x', KVM_TS_TESTBED_DEFER: '/tmp/d', KVM_TS_TEST_LEDGER: '/tmp/l', XDG_CACHE_HOME: '/c', CI: 'true' }, 7, 1000);
  t.is(env.TMPDIR, '/run/kvm-ts-testbed/tmp');
  t.is(env.XDG_RUNTIME_DIR, '/run/user/1000');
  t.is(env.XDG_CACHE_HOME, '/c');
  t.is(env.KVM_TS_TIME_SCALE, '7');
  t.is(env.KVM_TS_TESTBED, '1');
  t.is(env.CI, 'true');
  t.false('KVM_TS_TESTBED_DEFER' in env || 'KVM_TS_TEST_LEDGER' in env);
});

test('the command script runs the command verbatim with exactly the given environment', (t) => {
  const script = commandScript(['sh', '-c', `printf '%s|' "$0" "$A" "$B"`, "it's"], '/', { TMPDIR: '/tmp', A: "x y'z", B: 'line\nbreak', PATH: process.env.PATH ?? '/usr/bin:/bin' });
  const r = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, "it's|x y'z|line\nbreak|");
});
