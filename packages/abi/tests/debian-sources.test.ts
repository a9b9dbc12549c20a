import test from 'ava';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { privateApt } from '../src/debian/apt.js';
import { FetchError } from '../src/debian/errors.js';
import { discoverMirrors, isDebianSuite, parseDeb822Sources, parseOneLineSources, type AptSourceFiles } from '../src/debian/sources.js';

/** An apt etc directory of its own: sources.list plus sources.list.d files. Hosts here are reserved names. */
function aptEtc(t: { teardown(fn: () => void): void }, list: string, parts: Record<string, string> = {}): AptSourceFiles {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-apt-etc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const sourceParts = join(dir, 'sources.list.d');
  mkdirSync(sourceParts);
  writeFileSync(join(dir, 'sources.list'), list);
  for (const [name, text] of Object.entries(parts)) writeFileSync(join(sourceParts, name), text);
  return { sourceList: join(dir, 'sources.list'), sourceParts };
}

const NO_ENV = {};

test('one-line sources: options in brackets, comments, deb-src and non-Debian suites are skipped', (t) => {
  const entries = parseOneLineSources(
    [
      '# a comment line',
      'deb-src http://src.invalid/debian bookworm main',
      'deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://one.invalid/debian/ bookworm main contrib # trailing',
      'deb http://one.invalid/debian-security bookworm-security main',
      '',
    ].join('\n'),
    '/etc/apt/sources.list',
  );
  t.deepEqual(entries, [
    { uris: ['http://one.invalid/debian/'], suites: ['bookworm'], components: ['main', 'contrib'], signedBy: '/usr/share/keyrings/k.gpg', from: '/etc/apt/sources.list:3' },
    { uris: ['http://one.invalid/debian-security'], suites: ['bookworm-security'], components: ['main'], signedBy: undefined, from: '/etc/apt/sources.list:4' },
  ]);
});

test('deb822 sources: several stanzas, continuation lines, Enabled: no, inline keys are not keyrings', (t) => {
  const text = [
    'Types: deb deb-src',
    '# a comment inside a stanza',
    'URIs: http://two.invalid/debian',
    'Suites: trixie trixie-updates',
    'Components: main',
    'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
    '',
    'Types: deb',
    'URIs: http://off.invalid/debian',
    'Suites: trixie',
    'Components: main',
    'Enabled: no',
    '',
    'Types: deb',
    'URIs: http://two.invalid/debian-security',
    'Suites: trixie-security',
    'Components: main',
    'Signed-By:',
    ' -----BEGIN PGP PUBLIC KEY BLOCK-----',
    ' .',
    ' -----END PGP PUBLIC KEY BLOCK-----',
  ].join('\n');
  const entries = parseDeb822Sources(text, 'debian.sources');
  t.deepEqual(entries.map((e) => [e.uris, e.suites, e.signedBy, e.from]), [
    [['http://two.invalid/debian'], ['trixie', 'trixie-updates'], '/usr/share/keyrings/debian-archive-keyring.gpg', 'debian.sources:1'],
    [['http://two.invalid/debian-security'], ['trixie-security'], undefined, 'debian.sources:14'],
  ]);
});

test('Debian suites are told from Ubuntu and third-party ones', (t) => {
  for (const s of ['bookworm', 'sid', 'trixie-security', 'bullseye-updates', 'stable', 'buster/updates', 'bookworm-backports']) t.true(isDebianSuite(s), s);
  for (const s of ['nodistro', 'jammy', 'noble-security', 'cloud-sdk-bookworm', 'bookworm-pgdg']) t.false(isDebianSuite(s), s);
});

test('deb822 .sources: the archive and the security archive come from their own entries', (t) => {
  const files = aptEtc(t, '', {
    'debian.sources':
      'Types: deb\nURIs: http://main.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n' +
      'Types: deb\nURIs: http://sec.invalid/debian-security\nSuites: bookworm-security\nComponents: main\n',
  });
  const m = discoverMirrors({ files, env: NO_ENV });
  t.is(m.archive.uri, 'http://main.invalid/debian');
  t.is(m.archive.signedBy, '/usr/share/keyrings/debian-archive-keyring.gpg');
  t.is(m.archive.from, `${files.sourceParts}/debian.sources:1`);
  t.is(m.security?.uri, 'http://sec.invalid/debian-security');
});

test('one-line sources.list with a security line', (t) => {
  const files = aptEtc(t, 'deb http://main.invalid/debian/ bullseye main\ndeb http://sec.invalid/debian-security bullseye-security main\n');
  const m = discoverMirrors({ files, env: NO_ENV });
  t.is(m.archive.uri, 'http://main.invalid/debian', 'a trailing slash is dropped');
  t.is(m.security?.uri, 'http://sec.invalid/debian-security');
});

test('several entries: apt reading order, third-party repositories and ignored file names skipped', (t) => {
  const files = aptEtc(t, '# only comments here\n', {
    'a-nodesource.sources': 'Types: deb\nURIs: http://node.invalid/node_20.x\nSuites: nodistro\nComponents: main\n',
    'b-cloud.list': 'deb http://cloud.invalid/apt cloud-sdk-bookworm main\n',
    'c-debian.list.disabled': 'deb http://disabled.invalid/debian bookworm main\n',
    'd-contrib-only.list': 'deb http://contrib.invalid/debian bookworm contrib\n',
    'e-debian.list': 'deb http://first.invalid/debian bookworm main\n',
    'f-debian.sources': 'Types: deb\nURIs: http://second.invalid/debian\nSuites: bookworm\nComponents: main\n',
  });
  const m = discoverMirrors({ files, env: NO_ENV });
  t.is(m.archive.uri, 'http://first.invalid/debian');
  t.is(m.archive.from, `${files.sourceParts}/e-debian.list:1`);
  t.is(m.security, undefined, 'no security entry: none is invented');
});

test('sources.list comes before sources.list.d', (t) => {
  const files = aptEtc(t, 'deb http://list.invalid/debian sid main\n', { 'debian.sources': 'Types: deb\nURIs: http://parts.invalid/debian\nSuites: sid\nComponents: main\n' });
  t.is(discoverMirrors({ files, env: NO_ENV }).archive.uri, 'http://list.invalid/debian');
});

test('no Debian source configured: one line naming the variable to set', (t) => {
  const files = aptEtc(t, 'deb http://ubuntu.invalid/ubuntu jammy main\n', { 'node.sources': 'Types: deb\nURIs: http://node.invalid/x\nSuites: nodistro\nComponents: main\n' });
  const err = t.throws(() => discoverMirrors({ files, env: NO_ENV }), { instanceOf: FetchError });
  t.is(err?.kind, 'no-source');
  t.notRegex(err?.message ?? '', /\n/);
  t.regex(err?.message ?? '', /no Debian archive in apt's sources .*: set KVM_TS_DEBIAN_MIRROR to a Debian mirror's URL$/);
  const missing = { sourceList: '/nonexistent/sources.list', sourceParts: '/nonexistent/sources.list.d' };
  t.throws(() => discoverMirrors({ files: missing, env: NO_ENV }), { message: /set KVM_TS_DEBIAN_MIRROR/ });
});

test('the override variables win over apt and work without any apt source', (t) => {
  const files = aptEtc(t, 'deb http://main.invalid/debian bookworm main\ndeb http://sec.invalid/debian-security bookworm-security main\n');
  const archiveOnly = discoverMirrors({ files, env: { KVM_TS_DEBIAN_MIRROR: 'http://local.invalid/debian/' } });
  t.deepEqual([archiveOnly.archive.uri, archiveOnly.archive.from], ['http://local.invalid/debian', 'KVM_TS_DEBIAN_MIRROR']);
  t.is(archiveOnly.security?.uri, 'http://sec.invalid/debian-security', 'the configured security archive stays');
  const both = discoverMirrors({ files: { sourceList: '/nonexistent', sourceParts: '/nonexistent' }, env: { KVM_TS_DEBIAN_MIRROR: 'http://local.invalid/debian', KVM_TS_DEBIAN_SECURITY_MIRROR: 'http://local.invalid/security' } });
  t.is(both.security?.uri, 'http://local.invalid/security');
});

test('the private sources list carries the discovered mirrors, and no security suite without a security archive', (t) => {
  const cache = mkdtempSync(join(tmpdir(), 'kvm-ts-apt-cache-'));
  const before = process.env.XDG_CACHE_HOME;
  process.env.XDG_CACHE_HOME = cache;
  t.teardown(() => {
    if (before === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = before;
    rmSync(cache, { recursive: true, force: true });
  });
  const withSecurity = privateApt(['bookworm', 'bookworm-security'], { archive: { uri: 'http://a.invalid/debian', from: 'x', signedBy: '/k.gpg' }, security: { uri: 'http://s.invalid/debian-security', from: 'y' } });
  const list = readFileSync(join(cache, 'kvm-ts', 'apt', 'sources.list'), 'utf8');
  t.regex(list, /^deb \[arch=amd64 signed-by=\/k\.gpg\] http:\/\/a\.invalid\/debian bookworm main$/m);
  t.regex(list, /^deb \[arch=amd64[^\]]*\] http:\/\/s\.invalid\/debian-security bookworm-security main$/m);
  t.deepEqual(withSecurity.suites, ['bookworm', 'bookworm-security']);
  const without = privateApt(['bookworm', 'bookworm-security'], { archive: { uri: 'http://a.invalid/debian', from: 'x' } });
  t.deepEqual(without.suites, ['bookworm']);
  t.notRegex(readFileSync(join(cache, 'kvm-ts', 'apt', 'sources.list'), 'utf8'), /security/);
});
