/**
 * The testbed itself, booted for real: a command's exit status comes back (0 and not), its output is
 * streamed, a command that hangs is killed at the time limit with the machine, and a Debian archive
 * that cannot be reached is one line. Each boot takes ~10 s of QEMU TCG on this kind of machine.
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cachedEmulator } from '../src/emulator.js';
import { cachedKernel } from '../src/kernel.js';
import { inTestbed } from '../src/needs.js';

const BIN = fileURLToPath(new URL('../bin/testbed.js', import.meta.url));
const ci = process.env.CI === 'true';
const inside = inTestbed();
const unbuilt = cachedEmulator() && cachedKernel() ? undefined : 'the testbed is not built (npm run testbed -- --fetch builds it; under CI the fetch step does)';

/** Boots the machine: fails under CI when it is not built, skips with the reason elsewhere (and inside it). */
function booting(title: string, fn: (t: import('ava').ExecutionContext) => Promise<void> | void): void {
  if (inside) test.skip(`${title} — skipped: already inside the testbed`, fn);
  else if (!unbuilt) test.serial(title, fn);
  else if (ci) test.serial(title, (t) => t.fail(unbuilt));
  else test.skip(`${title} — skipped: ${unbuilt}`, fn);
}

function testbed(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ status: number | null; stdout: string; stderr: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (status) => resolve({ status, stdout, stderr, ms: performance.now() - started }));
  });
}

booting('a command inside sees a real /dev/kvm and its exit status 0 comes back', async (t) => {
  const r = await testbed(['--time-limit', '300', 'sh', '-c', 'test -c /dev/kvm && grep -qw svm /proc/cpuinfo && echo "inside: $(hostname)"']);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, 'inside: kvm-ts-testbed\n');
  t.regex(r.stderr, /^testbed: sh -c .*: exit 0 after [\d.]+ s$/m);
});

booting('a non-zero exit status comes back as the testbed\'s own, with the output streamed before it', async (t) => {
  const r = await testbed(['--time-limit', '300', '--', 'sh', '-c', 'echo one; echo two >&2; exit 7']);
  t.is(r.status, 7, r.stderr);
  t.is(r.stdout, 'one\ntwo\n');
  t.regex(r.stderr, /: exit 7 after /);
});

booting('a command that hangs is killed at the time limit: exit 124, one line naming the console log, no QEMU left', async (t) => {
  const r = await testbed(['--time-limit', '25', 'sleep', '100000']);
  t.is(r.status, 124, r.stderr);
  const log = /killed at the 25 s time limit; the machine's console is in (\S+)$/m.exec(r.stderr)?.[1];
  t.truthy(log, r.stderr);
  t.true(r.ms < 60_000, `ended ${Math.round(r.ms / 1000)} s after starting`);
  const left = spawnSync('pgrep', ['-f', `file:${log}`], { encoding: 'utf8' });
  t.is(left.stdout, '', 'the QEMU process is gone');
});

test('a Debian archive that cannot be reached is one line and exit 125, never a stack trace', async (t) => {
  const cache = mkdtempSync(join(tmpdir(), 'kvm-ts-testbed-cache-'));
  t.teardown(() => rmSync(cache, { recursive: true, force: true }));
  // Port 9 (discard) on loopback: refused at once, and nothing leaves the machine.
  const r = await testbed(['true'], { ...process.env, XDG_CACHE_HOME: cache, KVM_TS_DEBIAN_MIRROR: 'http://127.0.0.1:9/debian', KVM_TS_DEBIAN_SECURITY_MIRROR: 'http://127.0.0.1:9/debian-security' });
  t.is(r.status, 125, r.stderr);
  t.is(r.stdout, '');
  t.regex(r.stderr, /^testbed: cannot build the emulated machine \(QEMU, busybox, Debian's kernel\): Debian archive unreachable [^\n]*127\.0\.0\.1:9[^\n]*\n$/);
});

test('usage errors exit 2 with the usage; --help exits 0', async (t) => {
  const bad = await testbed(['--time-limit', 'soon', 'true']);
  t.is(bad.status, 2);
  t.regex(bad.stderr, /^testbed: --time-limit wants a whole number from 1 to 86400, got soon\nusage: npm run testbed -- /);
  const help = await testbed(['--help']);
  t.is(help.status, 0);
  t.regex(help.stderr, /^usage: npm run testbed -- /);
});

booting('the testbed killed by a signal takes its machine with it', async (t) => {
  const child = spawn(process.execPath, [BIN, '--time-limit', '300', 'sleep', '100000'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const running = new Promise<void>((resolve) => child.stderr.on('data', (d: Buffer) => (stderr += d) && stderr.includes('testbed: running') && resolve()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, signal) => resolve(signal)));
  await Promise.race([running, exited]);
  t.regex(stderr, /testbed: running/);
  const qemu = spawnSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' }).stdout.trim();
  t.regex(qemu, /^\d+$/, 'QEMU is the testbed\'s child');
  child.kill('SIGTERM');
  t.is(await exited, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && spawnSync('kill', ['-0', qemu]).status === 0) await new Promise((r) => setTimeout(r, 100));
  t.not(spawnSync('kill', ['-0', qemu]).status, 0, `QEMU ${qemu} is gone`);
});

/** A command that panics the machine's kernel on its first boot and prints on the next. */
function panicOnce(marker: string): string[] {
  return ['sh', '-c', `if [ -e '${marker}' ]; then echo "second boot"; else : >'${marker}'; echo c >/proc/sysrq-trigger; sleep 60; fi`];
}

booting('a machine whose kernel panics ends the run with exit 125 naming the panic; with --retries it boots again and reruns the command', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-testbed-panic-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const once = await testbed(['--time-limit', '300', ...panicOnce(join(dir, 'a'))]);
  t.is(once.status, 125, once.stderr);
  t.regex(once.stderr, /^testbed: the machine's kernel panicked \(sysrq triggered crash\) after [\d.]+ s, without reporting sh -c .*'s exit status; its console is in \S+$/m);
  const retried = await testbed(['--time-limit', '300', '--retries', '1', ...panicOnce(join(dir, 'b'))]);
  t.is(retried.status, 0, retried.stderr);
  t.is(retried.stdout, 'second boot\n');
  t.regex(retried.stderr, /^testbed: the machine's kernel panicked \(sysrq triggered crash\) after [\d.]+ s \(console: \S+\); booting it again to rerun sh -c .* \(retry 1 of 1\)$/m);
});

booting('a machine silent on both serial ports for the stall limit is killed as frozen: exit 125, one line', async (t) => {
  const silent = await testbed(['--time-limit', '300', '--stall-limit', '40', 'sleep', '100000']);
  t.is(silent.status, 125, silent.stderr);
  t.regex(silent.stderr, /^testbed: the machine froze \(nothing on its serial ports for 40 s\) after [\d.]+ s, without reporting sleep 100000's exit status; its console is in \S+$/m);
  t.true(silent.ms < 100_000, `ended ${Math.round(silent.ms / 1000)} s after starting`);
});

booting('a command that prints only on its own port is not taken for a frozen machine', async (t) => {
  const ticking = await testbed(['--time-limit', '300', '--stall-limit', '40', 'sh', '-c', 'for i in 1 2 3 4 5; do sleep 9; echo tick; done']);
  t.is(ticking.status, 0, ticking.stderr);
  // 45 s of ticks: past the 40 s stall limit, before stage2's first process list at 60 s.
  t.is(ticking.stdout, 'tick\n'.repeat(5));
});
