/**
 * kernel-headers/versions.json and the helpers around it: pin invariants, Debian version ordering
 * (checked against dpkg itself), path resolution, and that the synced cache is exactly what is pinned.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import {
  cacheReady,
  compareDebianVersions,
  HeaderSyncError,
  includeRoot,
  loadPins,
  pinnedSets,
  repoRoot,
  seriesOf,
  upstreamVersion,
} from '../src/headers/index.js';
import { inSeries } from '../src/debian/debversion.js';
import { sha256File } from '../src/debian/hash.js';
import { testNeeding } from './helpers/prerequisite.js';
import { ARCHES } from '../src/spec/types.js';


function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

test('committed pins: ordered oldest → newest, self-consistent, both root headers per arch', (t) => {
  const sets = pinnedSets();
  t.true(sets.length >= 1);
  for (let i = 1; i < sets.length; i++) t.true(compareDebianVersions(sets[i - 1].debianVersion, sets[i].debianVersion) < 0);
  for (const record of loadPins().sets) {
    const set = sets.find((s) => s.id === record.id);
    t.truthy(set);
    t.is(set?.kernel, upstreamVersion(record.debianVersion));
    t.is(record.series, seriesOf(record.debianVersion));
    t.is(record.id, record.series, 'a set id names its upstream series (spec/<series>/…)');
    t.true(inSeries(record.debianVersion, record.series));
    // Only the arch-independent packages carry more than the build arch's asm/.
    if (record.debArch !== 'all') t.deepEqual(set?.arches, ['x86_64']);
    for (const arch of set?.arches ?? []) {
      const headers = Object.keys(record.arches[arch] ?? {});
      t.true(headers.includes('linux/kvm.h') && headers.includes('asm/kvm.h'), `${record.id}/${arch}`);
      t.true(headers.every((h) => /^(linux|asm|asm-generic)\//.test(h)), `${record.id}/${arch}: ${headers.join(' ')}`);
    }
  }
});

test('pinnedSets reports the pin as "kernel" (upstream part of the Debian version)', (t) => {
  t.is(upstreamVersion('6.12.107-1'), '6.12.107');
  t.is(upstreamVersion('1:6.1.176-1+deb12u1'), '6.1.176');
  t.is(seriesOf('7.2.13-1'), '7.2');
  t.true(inSeries('6.12.107-1', '6.12'));
  t.false(inSeries('6.120.1-1', '6.12'));
  t.false(inSeries('6.1.176-1', '6.12'));
});

const VERSION_PAIRS: Array<[string, string]> = [
  ['6.12.94-1', '6.12.107-1'],
  ['6.1.176-1', '6.1.176-1+deb12u1'],
  ['1.0~rc1-1', '1.0-1'],
  ['1.0-1', '1.0-1.1'],
  ['9.9', '1:0.1'],
  ['5.10.223-1', '6.1.176-1'],
  ['2.0a-1', '2.0b-1'],
  ['2.0-1', '2.0a-1'],
  ['1.0~~', '1.0~'],
  ['7.2.13-1', '7.2.13-1'],
];

test('compareDebianVersions agrees with dpkg --compare-versions', (t) => {
  const dpkg = spawnSync('dpkg', ['--version'], { stdio: 'ignore' }).status === 0;
  for (const [a, b] of VERSION_PAIRS) {
    const ours = Math.sign(compareDebianVersions(a, b));
    t.is(Math.sign(compareDebianVersions(b, a)), 0 - ours || 0, `${a} vs ${b} not antisymmetric`);
    if (dpkg) {
      const lt = spawnSync('dpkg', ['--compare-versions', a, 'lt', b]).status === 0;
      const eq = spawnSync('dpkg', ['--compare-versions', a, 'eq', b]).status === 0;
      t.is(ours, lt ? -1 : eq ? 0 : 1, `${a} vs ${b}`);
    }
  }
  if (!dpkg) t.log('dpkg not found: checked antisymmetry only');
});

const GOOD_SET = {
  id: '6.12',
  package: 'linux-libc-dev',
  debianVersion: '6.12.107-1',
  suite: 'trixie',
  series: '6.12',
  debArch: 'all',
  debSha256: 'a'.repeat(64),
  arches: { x86_64: { 'linux/kvm.h': 'b'.repeat(64), 'asm/kvm.h': 'c'.repeat(64) } },
};

const BAD_PINS: Array<[string, unknown, RegExp]> = [
  ['not JSON', '{', /invalid JSON/],
  ['no sets', { sets: [] }, /"sets" must be a non-empty array/],
  ['bad .deb sha', { sets: [{ ...GOOD_SET, debSha256: 'xyz' }] }, /set "6\.12" debSha256 is not a sha256/],
  ['unknown arch', { sets: [{ ...GOOD_SET, arches: { mips: GOOD_SET.arches.x86_64 } }] }, /unknown arch "mips"/],
  ['no asm/kvm.h', { sets: [{ ...GOOD_SET, arches: { x86_64: { 'linux/kvm.h': 'b'.repeat(64) } } }] }, /lacks asm\/kvm\.h/],
  ['escaping path', { sets: [{ ...GOOD_SET, arches: { x86_64: { ...GOOD_SET.arches.x86_64, '../x.h': 'd'.repeat(64) } } }] }, /unsafe path "\.\.\/x\.h"/],
  ['duplicate id', { sets: [GOOD_SET, GOOD_SET] }, /duplicate set id "6\.12"/],
];

test('a malformed versions.json is one config error line naming the file and the problem', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-pins-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'versions.json');
  withEnv({ KVM_TS_HEADERS_PINS: file }, () => {
    writeFileSync(file, JSON.stringify({ sets: [GOOD_SET] }));
    t.deepEqual(pinnedSets(), [{ id: '6.12', kernel: '6.12.107', debianVersion: '6.12.107-1', suite: 'trixie', arches: ['x86_64'] }]);
    for (const [what, content, message] of BAD_PINS) {
      writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
      const err = t.throws(() => loadPins(), { instanceOf: HeaderSyncError, message }, what);
      t.is(err?.kind, 'config');
      t.false(err?.message.includes('\n'), `${what}: multi-line message`);
      t.true(err?.message.startsWith(file), what);
    }
    rmSync(file);
    t.throws(() => loadPins(), { message: /cannot read \(ENOENT\)/ });
  });
});

test('includeRoot: kernel-headers/cache under the repo root, or KVM_TS_HEADERS_CACHE', (t) => {
  const root = repoRoot();
  t.true('workspaces' in JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')));
  withEnv({ KVM_TS_HEADERS_CACHE: undefined }, () => {
    t.is(includeRoot('6.12', 'arm64'), join(root, 'kernel-headers', 'cache', '6.12', 'arm64', 'include'));
  });
  withEnv({ KVM_TS_HEADERS_CACHE: '/somewhere/else' }, () => {
    t.is(includeRoot('7.2', 'riscv64'), '/somewhere/else/7.2/riscv64/include');
    t.false(cacheReady('7.2', 'riscv64'));
  });
});

// The cache others' tests compile against must be exactly the pinned bytes, file for file.
const unsynced = pinnedSets().flatMap((s) => s.arches.filter((a) => !cacheReady(s.id, a)).map((a) => `${s.id}/${a}`));
const cacheTitle = 'the synced cache holds exactly the pinned headers';
testNeeding(unsynced.length ? `not synced (${unsynced.join(', ')}); run npm run headers:sync` : undefined, cacheTitle, (t) => {
  let files = 0;
  for (const set of loadPins().sets) {
    for (const arch of ARCHES) {
      const pinned = set.arches[arch];
      if (!pinned) continue;
      const inc = includeRoot(set.id, arch);
      const present = listFiles(inc).map((f) => relative(inc, f)).sort();
      t.deepEqual(present, Object.keys(pinned).sort(), `${set.id}/${arch}`);
      const synced = JSON.parse(readFileSync(join(inc, '..', '..', 'synced.json'), 'utf8'));
      if (synced.fallback) {
        t.log(`${set.id}: synced by FALLBACK to ${synced.version}; header hashes not comparable`);
        continue;
      }
      for (const rel of present) {
        t.is(sha256File(join(inc, rel)), pinned[rel], `${set.id}/${arch}/${rel}`);
        files++;
      }
    }
  }
  t.log(`${files} cached headers match their pinned sha256`);
});

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? listFiles(p) : [p];
  });
}
