import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FetchError } from './errors.js';
import { aptStateDir } from './paths.js';
import { firstErrorLine, runTool } from './run.js';
import { discoverMirrors, isSecuritySuite, type DebianMirrors, type MirrorChoice } from './sources.js';

/**
 * apt-get/apt-cache driven entirely by -o options pointing at a private sources list and state
 * directory: the system's sources, lists, dpkg status and locks are never read or written.
 */
export interface PrivateApt {
  options: string[];
  mirrors: DebianMirrors;
  /** The suites the private sources list carries: security suites need a security archive. */
  suites: string[];
  /** Per suite, the first apt-get update error for it (absent when the suite's index was fetched). */
  suiteErrors: Map<string, string>;
}

const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const NETWORK_FAILURE = /could not resolve|could not connect|temporary failure|connection failed|connection timed out|timed out|unable to connect|network is unreachable|no route to host/i;

function mirrorFor(mirrors: DebianMirrors, suite: string): MirrorChoice | undefined {
  return isSecuritySuite(suite) ? mirrors.security : mirrors.archive;
}

function sourcesList(mirrors: DebianMirrors, suites: string[]): string {
  return suites
    .map((s) => {
      const m = mirrorFor(mirrors, s) as MirrorChoice;
      const keyring = m.signedBy ?? (existsSync(DEBIAN_KEYRING) ? DEBIAN_KEYRING : undefined);
      return `deb [arch=amd64${keyring ? ` signed-by=${keyring}` : ''}] ${m.uri} ${s} main\n`;
    })
    .join('');
}

/**
 * A private apt for `wanted` suites on this machine's Debian mirror (sources.ts). Security suites are
 * left out when no security archive is configured; `suites` says what is in.
 */
export function privateApt(wanted: string[], mirrors: DebianMirrors = discoverMirrors()): PrivateApt {
  const dir = aptStateDir();
  for (const sub of ['lists/partial', 'cache/archives/partial']) mkdirSync(join(dir, sub), { recursive: true });
  const suites = wanted.filter((s) => mirrorFor(mirrors, s));
  writeFileSync(join(dir, 'sources.list'), sourcesList(mirrors, suites));
  const options = [
    `Dir::Etc::SourceList=${join(dir, 'sources.list')}`,
    'Dir::Etc::SourceParts=/dev/null',
    `Dir::State::Lists=${join(dir, 'lists')}`,
    `Dir::Cache=${join(dir, 'cache')}`,
    'Dir::State::status=/dev/null',
    'Debug::NoLocking=1',
    // Every pinned .deb is either amd64 or all; the host's own architecture is irrelevant.
    'APT::Architecture=amd64',
    'APT::Architectures=amd64',
    'Acquire::Languages=none',
    'Acquire::http::Timeout=30',
    'Acquire::Retries=2',
    // As root, apt drops to _apt, which cannot write into a root-owned private cache.
    ...(process.getuid?.() === 0 ? ['APT::Sandbox::User=root'] : []),
  ].flatMap((o) => ['-o', o]);
  return { options, mirrors, suites, suiteErrors: new Map() };
}

function isNetworkFailure(message: string): boolean {
  return NETWORK_FAILURE.test(message);
}

/** apt-get update for the private lists. Per-suite failures are kept, to explain a later "not found". */
export async function aptUpdate(apt: PrivateApt): Promise<void> {
  const { suites } = apt;
  const r = await runTool('apt-get', [...apt.options, '-q', 'update'], { providedBy: 'apt', timeoutMs: 600_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  for (const line of out.split('\n')) {
    const m = /^(?:Err:\d+|W: Failed to fetch|E: Failed to fetch)\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const suite = suites.find((s) => new RegExp(`[ /]${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?:[ /]|$)`).test(m[1]));
    if (suite && !apt.suiteErrors.has(suite)) apt.suiteErrors.set(suite, m[1].trim());
  }
  // Continuation lines ("  Could not resolve '<host>'") carry the reason; attach it to suites that failed.
  const reason = out.split('\n').map((l) => l.trim()).find((l) => isNetworkFailure(l));
  if (reason) {
    for (const [s, msg] of apt.suiteErrors) if (!isNetworkFailure(msg)) apt.suiteErrors.set(s, `${msg} (${reason})`);
  }
  if (r.code !== 0 && apt.suiteErrors.size === 0) {
    const line = firstErrorLine(r.stderr || r.stdout);
    throw new FetchError(isNetworkFailure(out) ? 'unreachable' : 'not-found', `apt-get update failed: ${line}`);
  }
  if (suites.length > 0 && suites.every((s) => apt.suiteErrors.has(s))) {
    const first = apt.suiteErrors.get(suites[0]) ?? '';
    throw new FetchError(
      isNetworkFailure(out) ? 'unreachable' : 'not-found',
      `Debian archive unreachable (${mirrorFor(apt.mirrors, suites[0])?.uri}, from ${mirrorFor(apt.mirrors, suites[0])?.from}): ${first}`,
    );
  }
}

export interface AvailableVersion {
  version: string;
  suite: string;
}

/** Every version of `pkg` the private lists know, with the suite each comes from (apt-cache madison). */
export async function availableVersions(apt: PrivateApt, pkg: string): Promise<AvailableVersion[]> {
  const r = await runTool('apt-cache', [...apt.options, 'madison', pkg], { providedBy: 'apt' });
  if (r.code !== 0) throw new FetchError('not-found', `apt-cache madison ${pkg} failed: ${firstErrorLine(r.stderr || r.stdout)}`);
  const found: AvailableVersion[] = [];
  for (const line of r.stdout.split('\n')) {
    // " linux-libc-dev | 6.12.107-1 | <mirror> trixie/main amd64 Packages"
    const cols = line.split('|').map((c) => c.trim());
    if (cols.length < 3 || cols[0] !== pkg) continue;
    const suite = /^\S+\s+([^/\s]+)\//.exec(cols[2])?.[1];
    if (suite && /Packages$/.test(cols[2])) found.push({ version: cols[1], suite });
  }
  return found;
}

/** apt-get download pkg=version into `dir`. */
export async function aptDownload(apt: PrivateApt, pkg: string, version: string, dir: string): Promise<void> {
  const r = await runTool('apt-get', [...apt.options, '-q', 'download', `${pkg}=${version}`], {
    cwd: dir,
    providedBy: 'apt',
    timeoutMs: 600_000,
  });
  if (r.code !== 0) {
    const out = `${r.stdout}\n${r.stderr}`;
    const line = firstErrorLine(r.stderr || r.stdout);
    throw new FetchError(isNetworkFailure(out) ? 'unreachable' : 'not-found', `apt-get download ${pkg}=${version} failed: ${line}`);
  }
}

export function describeSuiteError(apt: PrivateApt, suite: string): string {
  const e = apt.suiteErrors.get(suite);
  return e ? `; apt-get update could not fetch ${suite}: ${e}` : '';
}

export function suiteErrorIsNetwork(apt: PrivateApt, suite: string): boolean {
  return isNetworkFailure(apt.suiteErrors.get(suite) ?? '');
}

async function aptCache(apt: PrivateApt, args: string[]): Promise<string> {
  const r = await runTool('apt-cache', [...apt.options, ...args], { providedBy: 'apt' });
  if (r.code !== 0) throw new FetchError('not-found', `apt-cache ${args.join(' ')} failed: ${firstErrorLine(r.stderr || r.stdout)}`);
  return r.stdout;
}

/** Every package name in the private lists that starts with `prefix` (apt-cache pkgnames). */
export async function packageNames(apt: PrivateApt, prefix: string): Promise<string[]> {
  return (await aptCache(apt, ['pkgnames', prefix])).split('\n').map((n) => n.trim()).filter(Boolean);
}

/** The direct Depends of `pkg` (alternatives flattened), as apt-cache depends lists them. */
export async function dependsOf(apt: PrivateApt, pkg: string): Promise<string[]> {
  const out = await aptCache(apt, ['depends', '--no-recommends', '--no-suggests', '--no-conflicts', '--no-breaks', '--no-replaces', '--no-enhances', pkg]);
  return out
    .split('\n')
    .map((l) => /^\s*\|?Depends:\s*<?([^\s>]+)>?/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined);
}
