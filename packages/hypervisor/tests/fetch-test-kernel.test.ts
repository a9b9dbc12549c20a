import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const FETCH = fileURLToPath(new URL('../scripts/fetch-test-kernel.mjs', import.meta.url));

test('the test-kernel fetch step offline: one line naming what and how, exit 0 (1 with --strict), nothing cached', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-kernel-fetch-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const env = { ...process.env, XDG_CACHE_HOME: dir, KVM_TS_TEST_KERNEL: '', KVM_TS_DEBIAN_MIRROR: 'http://127.0.0.1:9/debian', KVM_TS_DEBIAN_SECURITY_MIRROR: 'http://127.0.0.1:9/debian-security' };
  const r = spawnSync(process.execPath, [FETCH], { encoding: 'utf8', env, timeout: 120_000 });
  t.is(r.status, 0, r.stderr);
  t.is(r.stderr, '');
  const [kernel, passt, ping, busybox, iasl, ...rest] = r.stdout.split('\n');
  t.regex(kernel, /^test kernel: could not fetch \(Debian archive unreachable \(http:\/\/127\.0\.0\.1:9\/debian, from KVM_TS_DEBIAN_MIRROR\): .*\); fetch it with `npm run fetch` once the Debian archive is reachable$/);
  // passt the same way, unless this host has one on PATH (then that one is named).
  t.regex(passt, /^passt: (could not fetch \(Debian archive unreachable .*\); fetch it with `npm run fetch` once the Debian archive is reachable|\/.*passt)$/);
  t.regex(ping, /^ping: (could not fetch \(Debian archive unreachable .*\); fetch it with `npm run fetch` once the Debian archive is reachable|\/.*ping)$/);
  t.regex(busybox, /^busybox: could not fetch \(Debian archive unreachable .*\); fetch it with `npm run fetch` once the Debian archive is reachable$/);
  t.regex(iasl, /^iasl: (could not fetch \(Debian archive unreachable .*\); fetch it with `npm run fetch` once the Debian archive is reachable|\/.*iasl)$/);
  t.deepEqual(rest, ['']);
  t.false(existsSync(join(dir, 'kvm-ts', 'kernels', 'vmlinuz')));
  t.false(existsSync(join(dir, 'kvm-ts', 'tools')));
  t.is(spawnSync(process.execPath, [FETCH, '--strict'], { encoding: 'utf8', env, timeout: 120_000 }).status, 1);
});

test('KVM_TS_TEST_KERNEL names the kernel, KVM_TS_PASST passt; a missing kernel is one line', (t) => {
  const ok = spawnSync(process.execPath, [FETCH], { encoding: 'utf8', env: { ...process.env, KVM_TS_TEST_KERNEL: FETCH, KVM_TS_PASST: process.execPath } });
  t.regex(ok.stdout, new RegExp(`^test kernel: ${FETCH}\npasst: ${process.execPath}\nping: /.*ping\nbusybox: /.*busybox\niasl: /.*iasl\n$`));
  const missing = spawnSync(process.execPath, [FETCH, '--strict'], { encoding: 'utf8', env: { ...process.env, KVM_TS_TEST_KERNEL: '/nonexistent/vmlinuz' } });
  t.is(missing.status, 1);
  t.regex(missing.stdout, /^test kernel: could not fetch \(KVM_TS_TEST_KERNEL=\/nonexistent\/vmlinuz does not exist\);/);
});
