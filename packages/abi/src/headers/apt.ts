import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HeaderSyncError } from './errors.js';
import { aptStateDir } from './paths.js';
import { firstErrorLine, runTool } from './run.js';

/**
 * apt-get/apt-cache driven entirely by -o options pointing at a private sources list and state
 * directory: the system's sources, lists, dpkg status and locks are never read or written.
 */
export interface PrivateApt {
  options: string[];
  /** Per suite, the first apt-get update error for it (absent when the suite's index was fetched). */
  suiteErrors: Map<string, string>;
}

const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const NETWORK_FAILURE = /could not resolve|could not connect|temporary failure|connection failed|connection timed out|timed out|unable to connect|network is unreachable|no route to host/i;

function mirrorFor(suite: string): string {
  const base = process.env.KVM_TS_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
  return suite.endsWith('-security') ? `${base.replace(/\/debian\/?$/, '')}/debian-security` : base;
}

function sourcesList(suites: string[]): string {
  return suites.map((s) => `deb [arch=amd64 signed-by=${KEYRING}] ${mirrorFor(s)} ${s} main\n`).join('');
}

export function privateApt(suites: string[]): PrivateApt {
  const dir = aptStateDir();
  for (const sub of ['lists/partial', 'cache/archives/partial']) mkdirSync(join(dir, sub), { recursive: true });
  writeFileSync(join(dir, 'sources.list'), sourcesList(suites));
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
  return { options, suiteErrors: new Map() };
}

function isNetworkFailure(message: string): boolean {
  return NETWORK_FAILURE.test(message);
}

/** apt-get update for the private lists. Per-suite failures are kept, to explain a later "not found". */
export async function aptUpdate(apt: PrivateApt, suites: string[]): Promise<void> {
  const r = await runTool('apt-get', [...apt.options, '-q', 'update'], { providedBy: 'apt', timeoutMs: 600_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  for (const line of out.split('\n')) {
    const m = /^(?:Err:\d+|W: Failed to fetch|E: Failed to fetch)\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const suite = suites.find((s) => new RegExp(`[ /]${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?:[ /]|$)`).test(m[1]));
    if (suite && !apt.suiteErrors.has(suite)) apt.suiteErrors.set(suite, m[1].trim());
  }
  // Continuation lines ("  Could not resolve 'deb.debian.org'") carry the reason; attach it to suites that failed.
  const reason = out.split('\n').map((l) => l.trim()).find((l) => isNetworkFailure(l));
  if (reason) {
    for (const [s, msg] of apt.suiteErrors) if (!isNetworkFailure(msg)) apt.suiteErrors.set(s, `${msg} (${reason})`);
  }
  if (r.code !== 0 && apt.suiteErrors.size === 0) {
    const line = firstErrorLine(r.stderr || r.stdout);
    throw new HeaderSyncError(isNetworkFailure(out) ? 'unreachable' : 'not-found', `apt-get update failed: ${line}`);
  }
  if (suites.length > 0 && suites.every((s) => apt.suiteErrors.has(s))) {
    const first = apt.suiteErrors.get(suites[0]) ?? '';
    throw new HeaderSyncError(
      isNetworkFailure(out) ? 'unreachable' : 'not-found',
      `Debian archive unreachable (${mirrorFor(suites[0])}): ${first}`,
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
  if (r.code !== 0) throw new HeaderSyncError('not-found', `apt-cache madison ${pkg} failed: ${firstErrorLine(r.stderr || r.stdout)}`);
  const found: AvailableVersion[] = [];
  for (const line of r.stdout.split('\n')) {
    // " linux-libc-dev | 6.12.107-1 | http://deb.debian.org/debian trixie/main amd64 Packages"
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
    throw new HeaderSyncError(isNetworkFailure(out) ? 'unreachable' : 'not-found', `apt-get download ${pkg}=${version} failed: ${line}`);
  }
}

export function describeSuiteError(apt: PrivateApt, suite: string): string {
  const e = apt.suiteErrors.get(suite);
  return e ? `; apt-get update could not fetch ${suite}: ${e}` : '';
}

export function suiteErrorIsNetwork(apt: PrivateApt, suite: string): boolean {
  return isNetworkFailure(apt.suiteErrors.get(suite) ?? '');
}
