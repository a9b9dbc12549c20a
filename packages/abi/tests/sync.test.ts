/**
 * `kvm-cli abi sync` end to end against a fake archive (fixture .debs, fake apt-get/apt-cache on
 * PATH): the happy path, cache reuse without apt, the series fallback, and every failure as one
 * line with its own exit status and nothing half-installed.
 */
import test from 'ava';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256File } from '../src/debian/hash.js';
import { CLOSURE, fakeArchive, PKG, runSyncCli, SUITE, type CliRun, type FakeArchive } from './sync/fake-archive.js';

const V = '9.9.1-1';

function oneLineError(t: import('ava').ExecutionContext, r: CliRun, code: number, pattern: RegExp): void {
  t.is(r.code, code, `exit ${r.code}, stderr: ${r.stderr}`);
  const lines = r.stderr.split('\n').filter(Boolean);
  t.is(lines.length, 1, `stderr must be one line: ${r.stderr}`);
  t.regex(lines[0] ?? '', /^kvm-cli: abi sync: /);
  t.regex(lines[0] ?? '', pattern);
}

/** No staging/old directories and no partially installed set are left anywhere. */
function assertNothingHalfDone(t: import('ava').ExecutionContext, a: FakeArchive): void {
  const leftovers = existsSync(a.headersCache) ? readdirSync(a.headersCache).filter((n) => n.startsWith('.')) : [];
  t.deepEqual(leftovers, [], 'staging directories left behind');
  const debDir = join(a.userCache, 'kvm-ts', 'debs');
  const partial = existsSync(debDir) ? readdirSync(debDir).filter((n) => n.startsWith('.')) : [];
  t.deepEqual(partial, [], 'partial downloads left behind');
}

function pinned(a: FakeArchive): string {
  const sha = a.buildDeb(V);
  a.setMadison([[V, SUITE]]);
  a.writePins({ version: V, debSha256: sha, headers: a.headerHashes(V) });
  return sha;
}

test('syncs the pinned set: include closure (incl. #ifdef branches and quoted includes), verified, one line', (t) => {
  const a = fakeArchive();
  t.teardown(() => a.cleanup());
  const sha = pinned(a);
  const r = runSyncCli(a.env);
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, '');
  const lines = r.stdout.split('\n').filter(Boolean);
  t.is(lines.length, 1);
  t.regex(lines[0], /^9\.9: linux-libc-dev 9\.9\.1-1 \(fakesuite\) downloaded, \.deb and headers verified \[x86_64 6\]/);
  t.deepEqual(a.aptCalls(), ['apt-get update', 'apt-cache madison linux-libc-dev', 'apt-get download']);

  const include = join(a.headersCache, '9.9', 'x86_64', 'include');
  for (const rel of CLOSURE) t.true(existsSync(join(include, rel)), `${rel} missing`);
  t.false(existsSync(join(include, 'linux', 'unrelated.h')), 'headers outside the closure must not be copied');
  t.regex(readFileSync(join(include, 'asm', 'kvm.h'), 'utf8'), /struct kvm_regs/);

  const synced = JSON.parse(readFileSync(join(a.headersCache, '9.9', 'synced.json'), 'utf8'));
  t.like(synced, { id: '9.9', version: V, pinnedVersion: V, kernel: '9.9.1', fallback: false, debSha256: sha });
  // In code-unit order, whatever the locale: synced.json and the pins re-pinning writes are deterministic.
  t.deepEqual(Object.keys(synced.arches.x86_64), [...CLOSURE].sort());
  t.deepEqual(synced.unresolvedIncludes, ['x86_64: stddef.h from linux/types.h']);
  t.true(existsSync(join(a.userCache, 'kvm-ts', 'debs', `${PKG}_${V}_all.deb`)), 'the .deb is kept in the per-user cache');
  assertNothingHalfDone(t, a);
});

test('a second sync touches nothing; with the .deb cached, a fresh checkout needs no apt-get at all', (t) => {
  const a = fakeArchive();
  t.teardown(() => a.cleanup());
  pinned(a);
  t.is(runSyncCli(a.env).code, 0);
  writeFileSync(a.aptLog, '');

  const again = runSyncCli(a.env);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /^9\.9: up to date — linux-libc-dev 9\.9\.1-1 \(fakesuite\), headers verified \[x86_64 6\]/);
  t.deepEqual(a.aptCalls(), []);

  // A new clone: no kernel-headers/cache, but the per-user .deb cache is warm (CI's case).
  rmSync(a.headersCache, { recursive: true });
  const fresh = runSyncCli({ ...a.env, PATH: a.env.PATH?.replace(`${a.bin}:`, '') });
  t.is(fresh.code, 0, fresh.stderr);
  t.regex(fresh.stdout, /from the \.deb cache, \.deb and headers verified/);
  t.deepEqual(a.aptCalls(), [], 'apt-get update must be skipped when every pinned .deb is cached');
  t.true(existsSync(join(a.headersCache, '9.9', 'x86_64', 'include', 'linux', 'kvm.h')));
});

test('a tampered installed header is noticed and replaced from the cached .deb', (t) => {
  const a = fakeArchive();
  t.teardown(() => a.cleanup());
  pinned(a);
  t.is(runSyncCli(a.env).code, 0);
  const kvmH = join(a.headersCache, '9.9', 'x86_64', 'include', 'linux', 'kvm.h');
  writeFileSync(kvmH, '/* edited */\n');
  const r = runSyncCli(a.env);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /from the \.deb cache/);
  t.regex(readFileSync(kvmH, 'utf8'), /KVM_API_VERSION/);
});

test('apt-get missing from PATH: one line, exit 3', (t) => {
  const a = fakeArchive({ withApt: false });
  t.teardown(() => a.cleanup());
  pinned(a);
  oneLineError(t, runSyncCli(a.env), 3, /apt-get not found on PATH.*Debian package apt/);
  t.false(existsSync(join(a.headersCache, '9.9')));
  assertNothingHalfDone(t, a);
});

test('archive unreachable: one line, exit 4', (t) => {
  const a = fakeArchive();
  t.teardown(() => a.cleanup());
  pinned(a);
  a.setUpdate('unreachable');
  oneLineError(t, runSyncCli(a.env), 4, /Debian archive unreachable \(http:\/\/archive\.invalid\/debian, from KVM_TS_DEBIAN_MIRROR\): .*Could not resolve 'archive\.invalid'/);
  t.false(existsSync(join(a.headersCache, '9.9')));
});

test('package version not in the archive and no fallback in its series: one line, exit 4', (t) => {
  const a = fakeArchive();
  t.teardown(() => a.cleanup());
  pinned(a);
  a.setMadison([['9.10.1-1', SUITE], ['9.9.7-1', 'othersuite']]);
  oneLineError(t, runSyncCli(a.env), 4, /linux-libc-dev 9\.9\.1-1 not found in Debian fakesuite, nor any other 9\.9\.\* version/);
  t.false(existsSync(join(a.headersCache, '9.9')));
});

test('.deb sha256 mismatch: one line, exit 5, the bad download is not cached', (t) => {
  const a = fakeArchive();
  t.teardown(() => a.cleanup());
  a.buildDeb(V);
  a.setMadison([[V, SUITE]]);
  a.writePins({ version: V, debSha256: 'a'.repeat(64), headers: a.headerHashes(V) });
  oneLineError(t, runSyncCli(a.env), 5, /linux-libc-dev_9\.9\.1-1_all\.deb: sha256 [0-9a-f]{64} does not match the pinned a{64}/);
  t.deepEqual(readdirSync(join(a.userCache, 'kvm-ts', 'debs')), []);
  t.false(existsSync(join(a.headersCache, '9.9')));
  assertNothingHalfDone(t, a);
});

test('header sha256 mismatch: one line, exit 5, the previously installed set stays intact', (t) => {
  const a = fakeArchive();
  t.teardown(() => a.cleanup());
  const sha = pinned(a);
  t.is(runSyncCli(a.env).code, 0);
  const before = readFileSync(join(a.headersCache, '9.9', 'synced.json'), 'utf8');
  const headers = a.headerHashes(V);
  headers['asm/types.h'] = 'b'.repeat(64);
  a.writePins({ version: V, debSha256: sha, headers });
  oneLineError(t, runSyncCli(a.env), 5, /set 9\.9 x86_64: asm\/types\.h sha256 [0-9a-f]{64} does not match the pinned b{64}/);
  t.is(readFileSync(join(a.headersCache, '9.9', 'synced.json'), 'utf8'), before);
  t.true(existsSync(join(a.headersCache, '9.9', 'x86_64', 'include', 'asm', 'types.h')));
  assertNothingHalfDone(t, a);
});

test('a header in the closure but not in the pins is an integrity failure too', (t) => {
  const a = fakeArchive();
  t.teardown(() => a.cleanup());
  const sha = pinned(a);
  const headers = a.headerHashes(V);
  delete headers['linux/kernel_only.h'];
  a.writePins({ version: V, debSha256: sha, headers });
  oneLineError(t, runSyncCli(a.env), 5, /linux\/kernel_only\.h is in the include closure but not pinned/);
});

test('dpkg-deb failure: one line, exit 6, nothing installed', (t) => {
  const a = fakeArchive();
  t.teardown(() => a.cleanup());
  const garbage = join(a.debs, `${PKG}_${V}_all.deb`);
  writeFileSync(garbage, 'this is not an ar archive\n');
  a.setMadison([[V, SUITE]]);
  a.writePins({ version: V, debSha256: sha256File(garbage), headers: a.headerHashes(V) });
  oneLineError(t, runSyncCli(a.env), 6, /dpkg-deb -x \S+ failed: /);
  t.false(existsSync(join(a.headersCache, '9.9')));
  assertNothingHalfDone(t, a);
});

test('pinned version gone: falls back to the newest of the same series in the same suite, loudly', (t) => {
  const a = fakeArchive();
  t.teardown(() => a.cleanup());
  pinned(a);
  rmSync(join(a.debs, `${PKG}_${V}_all.deb`));
  a.buildDeb('9.9.3-1');
  a.buildDeb('9.9.2-1');
  a.setMadison([['9.10.1-1', SUITE], ['9.9.3-1', SUITE], ['9.9.2-1', SUITE], ['9.9.5-1', 'othersuite']]);
  const r = runSyncCli(a.env);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^9\.9: FALLBACK — pinned linux-libc-dev 9\.9\.1-1 is no longer in fakesuite; installed 9\.9\.3-1 UNVERIFIED/);
  const synced = JSON.parse(readFileSync(join(a.headersCache, '9.9', 'synced.json'), 'utf8'));
  t.like(synced, { version: '9.9.3-1', pinnedVersion: V, kernel: '9.9.1', fallback: true });
  t.regex(readFileSync(join(a.headersCache, '9.9', 'x86_64', 'include', 'linux', 'kvm.h'), 'utf8'), /9\.9\.3-1/);
});

test('malformed pins file: one line, exit 1; stray arguments: usage error, exit 2', (t) => {
  const a = fakeArchive();
  t.teardown(() => a.cleanup());
  writeFileSync(a.pinsFile, '{"sets": [{"id": "x"}]}');
  oneLineError(t, runSyncCli(a.env), 1, /versions\.json: set "x" package must be a non-empty string/);
  const usage = runSyncCli(a.env, ['--bogus']);
  t.is(usage.code, 2);
  t.regex(usage.stderr, /^kvm-cli: .*--bogus.*\(usage: kvm-cli abi sync\)\n$/);
});

test('no Debian archive in apt sources and no KVM_TS_DEBIAN_MIRROR: one line naming the variable, exit 4, apt not run', (t) => {
  const a = fakeArchive();
  t.teardown(() => a.cleanup());
  pinned(a);
  // apt-config reads APT_CONFIG: an apt whose only source is a third-party repository.
  mkdirSync(join(a.root, 'etc', 'sources.list.d'), { recursive: true });
  writeFileSync(join(a.root, 'etc', 'sources.list'), 'deb http://vendor.invalid/apt nodistro main\n');
  writeFileSync(join(a.root, 'apt.conf'), `Dir::Etc::sourcelist "${join(a.root, 'etc', 'sources.list')}";\nDir::Etc::sourceparts "${join(a.root, 'etc', 'sources.list.d')}";\n`);
  const env = { ...a.env, APT_CONFIG: join(a.root, 'apt.conf') };
  delete env.KVM_TS_DEBIAN_MIRROR;
  oneLineError(t, runSyncCli(env), 4, /no Debian archive in apt's sources \(.*\/etc\/sources\.list, .*\): set KVM_TS_DEBIAN_MIRROR to a Debian mirror's URL$/);
  t.deepEqual(a.aptCalls(), []);
});
