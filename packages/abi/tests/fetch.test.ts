/**
 * The test pipeline's fetch step (scripts/fetch.mjs, turbo task "fetch" before "test"): offline it
 * says in one line per item what it could not fetch and how to fetch it, and lets the tests report
 * what is missing; warm, it downloads nothing.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cachedCrossGcc } from '../src/debian/cross-gcc.js';
import { cacheReady, pinnedSets } from '../src/headers/index.js';
import { GNU_TRIPLET } from '../src/spec/arch.js';
import { testNeeding } from './helpers/prerequisite.js';

const FETCH = fileURLToPath(new URL('../scripts/fetch.mjs', import.meta.url));
const onPath = (tool: string, env = process.env): boolean => spawnSync(tool, ['--version'], { stdio: 'ignore', env }).status === 0;

function runFetch(env: NodeJS.ProcessEnv, args: string[] = []) {
  const r = spawnSync(process.execPath, [FETCH, ...args], { encoding: 'utf8', env, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('unreachable archive, empty caches: one line per item naming what and how, exit 0 (1 with --strict)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-fetch-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Port 9 (discard) on loopback refuses at once: an archive that cannot be reached, without a network.
  const env = {
    ...process.env,
    XDG_CACHE_HOME: join(dir, 'cache'),
    KVM_TS_HEADERS_CACHE: join(dir, 'headers'),
    KVM_TS_DEBIAN_MIRROR: 'http://127.0.0.1:9/debian',
    KVM_TS_DEBIAN_SECURITY_MIRROR: 'http://127.0.0.1:9/debian-security',
    // No cross compiler on PATH, so both items are attempted.
    PATH: `/usr/sbin:/usr/bin:/sbin:/bin`,
  };
  const r = runFetch(env);
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, '');
  const lines = r.stdout.split('\n').filter(Boolean);
  const failures = lines.filter((l) => / could not fetch /.test(l));
  t.is(failures.length, lines.length, r.stdout);
  t.regex(failures[0] ?? '', /^kernel headers: could not fetch \(Debian archive unreachable \(http:\/\/127\.0\.0\.1:9\/debian, from KVM_TS_DEBIAN_MIRROR\): .*\); fetch it with `npm run fetch` once the Debian archive is reachable$/);
  const crossMissing = [GNU_TRIPLET.arm64, GNU_TRIPLET.riscv64].some((tr) => !onPath(`${tr}-gcc`, env));
  if (crossMissing) t.regex(failures[1] ?? '', /^cross gcc \(.*\): could not fetch \(.*\); fetch it with `npm run fetch`/);
  t.is(runFetch(env, ['--strict']).code, 1);
});

const cold = [
  ...pinnedSets().flatMap((s) => s.arches.filter((a) => !cacheReady(s.id, a)).map((a) => `${s.id}/${a} headers`)),
  ...[GNU_TRIPLET.arm64, GNU_TRIPLET.riscv64].filter((tr) => !onPath(`${tr}-gcc`) && !cachedCrossGcc(tr)).map((tr) => `${tr} cross gcc`),
];
testNeeding(cold.length ? `not fetched yet: ${cold.join(', ')} (npm run fetch)` : undefined, 'warm caches: the fetch step runs no apt at all', (t) => {
  // A PATH with node alone: any apt-get, apt-cache or dpkg-deb call would fail the step.
  const bin = mkdtempSync(join(tmpdir(), 'kvm-ts-fetch-bin-'));
  t.teardown(() => rmSync(bin, { recursive: true, force: true }));
  mkdirSync(join(bin, 'bin'));
  symlinkSync(process.execPath, join(bin, 'bin', 'node'));
  const r = runFetch({ ...process.env, PATH: join(bin, 'bin') }, ['--strict']);
  t.is(r.code, 0, r.stdout + r.stderr);
  for (const line of r.stdout.split('\n').filter(Boolean)) t.regex(line, /up to date/, line);
});
