import test from 'ava';
import { innerEnv, machineDeath, parseArgs } from '../src/main.js';
import { commandScript, kernelPanic } from '../src/machine.js';
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

test('--retries and --stall-limit: whole numbers in range, off and 300 s by default', (t) => {
  const d = parseArgs(['x'], {});
  t.is(d.retries, 0);
  t.is(d.stallLimitS, 300);
  const a = parseArgs(['--retries', '2', '--stall-limit', '60', 'x'], {});
  t.is(a.retries, 2);
  t.is(a.stallLimitS, 60);
  t.is(parseArgs(['--retries', '0', 'x'], {}).retries, 0);
  t.throws(() => parseArgs(['--retries', '11', 'x'], {}), { message: '--retries wants a whole number from 0 to 10, got 11' });
  t.throws(() => parseArgs(['--stall-limit', '5', 'x'], {}), { message: '--stall-limit wants a whole number from 10 to 86400, got 5' });
});

test('the machine\'s own death is told from the command\'s end: a kernel panic by its words, a freeze, QEMU gone without a status', (t) => {
  const console = '[   87.3] stack guard page: 0000 [#1] PREEMPT SMP NOPTI\r\n[   87.3] Kernel panic - not syncing: Fatal exception in interrupt\r\n[   87.3] Kernel Offset: 0x11400000\r\n';
  t.is(kernelPanic(console), 'Fatal exception in interrupt');
  t.is(kernelPanic('[ 1.0] Run /init as init process\n'), undefined);
  t.is(machineDeath({ kind: 'no-status', qemuStatus: 0, signal: null, panic: 'Fatal exception in interrupt', seconds: 90 }, 300), "the machine's kernel panicked (Fatal exception in interrupt)");
  t.is(machineDeath({ kind: 'no-status', qemuStatus: null, signal: 'SIGSEGV', seconds: 9 }, 300), 'the machine ended (QEMU SIGSEGV)');
  t.is(machineDeath({ kind: 'stalled', seconds: 400 }, 300), 'the machine froze (nothing on its serial ports for 300 s)');
  t.is(machineDeath({ kind: 'exited', status: 1, seconds: 9 }, 300), undefined, "a command's failure is not retried");
  t.is(machineDeath({ kind: 'time-limit', seconds: 9 }, 300), undefined);
});
