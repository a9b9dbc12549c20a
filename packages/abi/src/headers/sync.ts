import { relative } from 'node:path';
import type { Arch } from '../spec/types.js';
import { aptUpdate, availableVersions, describeSuiteError, privateApt, suiteErrorIsNetwork, type PrivateApt } from '../debian/apt.js';
import { compareDebianVersions, inSeries, upstreamVersion } from '../debian/debversion.js';
import { downloadDeb, findCachedDeb, type CachedDeb } from '../debian/debs.js';
import { HeaderSyncError } from './errors.js';
import { installedMatchesPin, installSet } from './install.js';
import { headersCacheRoot } from './paths.js';
import { archesOf, loadPins, type PinnedSetRecord } from './versions.js';

export interface SyncedSet {
  id: string;
  /** The pin's upstream version ("6.12.107"). */
  kernel: string;
  pinnedVersion: string;
  /** The Debian version now in the cache. */
  version: string;
  fallback: boolean;
  /** unchanged: cache/<id> already matched the pin; cached: extracted from the per-user .deb cache. */
  source: 'unchanged' | 'cached' | 'downloaded';
  headerCounts: Partial<Record<Arch, number>>;
}

export interface SyncResult {
  sets: SyncedSet[];
  /** Whether apt-get update ran (it is skipped when every needed .deb is already cached). */
  aptUpdated: boolean;
}

export interface SyncOptions {
  log?: (line: string) => void;
}

function cachedPinnedDeb(set: PinnedSetRecord): CachedDeb | undefined {
  const deb = findCachedDeb(set.package, set.debianVersion);
  return deb && deb.sha256 === set.debSha256 ? deb : undefined;
}

/**
 * Picks what to download for a set whose .deb is not cached: the pinned version when the suite
 * still has it, else (Debian replaces point releases) the newest version of the same series in
 * the same suite.
 */
async function resolveVersion(apt: PrivateApt, set: PinnedSetRecord): Promise<{ version: string; fallback: boolean }> {
  const inSuite = (await availableVersions(apt, set.package)).filter((v) => v.suite === set.suite);
  if (inSuite.some((v) => v.version === set.debianVersion)) return { version: set.debianVersion, fallback: false };
  const candidates = inSuite.filter((v) => inSeries(v.version, set.series)).sort((a, b) => compareDebianVersions(b.version, a.version));
  if (candidates.length > 0) return { version: candidates[0].version, fallback: true };
  const why = describeSuiteError(apt, set.suite);
  throw new HeaderSyncError(
    suiteErrorIsNetwork(apt, set.suite) ? 'unreachable' : 'not-found',
    `${set.package} ${set.debianVersion} not found in Debian ${set.suite}, nor any other ${set.series}.* version${why}`,
  );
}

function describe(set: PinnedSetRecord, s: SyncedSet): string {
  const rel = relative(process.cwd(), headersCacheRoot());
  const where = rel === '' ? '.' : rel.startsWith('..') ? headersCacheRoot() : rel;
  const counts = archesOf(set).map((a) => `${a} ${s.headerCounts[a] ?? 0}`).join(', ');
  const pkg = `${set.package} ${s.version} (${set.suite})`;
  if (s.source === 'unchanged') return `${set.id}: up to date — ${pkg}, headers verified [${counts}] in ${where}/${set.id}`;
  if (s.fallback) {
    return (
      `${set.id}: FALLBACK — pinned ${set.package} ${set.debianVersion} is no longer in ${set.suite}; ` +
      `installed ${s.version} UNVERIFIED (the regenerated ${set.series} spec must equal the committed one) [${counts}] in ${where}/${set.id}`
    );
  }
  const how = s.source === 'cached' ? 'from the .deb cache' : 'downloaded';
  return `${set.id}: ${pkg} ${how}, .deb and headers verified [${counts}] in ${where}/${set.id}`;
}

function syncedSet(set: PinnedSetRecord, deb: { version: string }, fallback: boolean, source: SyncedSet['source'], headerCounts: SyncedSet['headerCounts']): SyncedSet {
  return { id: set.id, kernel: upstreamVersion(set.debianVersion), pinnedVersion: set.debianVersion, version: deb.version, fallback, source, headerCounts };
}

/** What a set needs: nothing, an extraction from the cached .deb, or apt. */
type Plan = { set: PinnedSetRecord; installed: boolean; cachedDeb?: CachedDeb };

/**
 * Brings kernel-headers/cache up to the pins in kernel-headers/versions.json, one set at a time in
 * pin order. apt-get runs (one update for all) only when some set's verified .deb is not in the
 * per-user cache.
 */
export async function syncHeaders(opts: SyncOptions = {}): Promise<SyncResult> {
  const log = opts.log ?? (() => {});
  const plans: Plan[] = loadPins().sets.map((set) =>
    installedMatchesPin(set) ? { set, installed: true } : { set, installed: false, cachedDeb: cachedPinnedDeb(set) },
  );
  const result: SyncResult = { sets: [], aptUpdated: false };

  const needApt = plans.filter((p) => !p.installed && !p.cachedDeb).map((p) => p.set);
  let apt: PrivateApt | undefined;
  if (needApt.length > 0) {
    const suites = [...new Set(needApt.map((s) => s.suite))];
    apt = privateApt(suites);
    await aptUpdate(apt);
    result.aptUpdated = true;
  }

  for (const { set, installed, cachedDeb } of plans) {
    let s: SyncedSet;
    if (installed) {
      const counts = Object.fromEntries(archesOf(set).map((a) => [a, Object.keys(set.arches[a] ?? {}).length]));
      s = syncedSet(set, { version: set.debianVersion }, false, 'unchanged', counts);
    } else if (cachedDeb) {
      s = syncedSet(set, cachedDeb, false, 'cached', (await installSet(set, cachedDeb, false)).headerCounts);
    } else {
      const chosen = await resolveVersion(apt as PrivateApt, set);
      // A fallback version has no pinned sha256 to check a cached copy against; reuse whatever apt fetched before.
      const reused = chosen.fallback ? findCachedDeb(set.package, chosen.version) : undefined;
      const deb = reused ?? (await downloadDeb(apt as PrivateApt, set.package, chosen.version, chosen.fallback ? null : set.debSha256));
      s = syncedSet(set, deb, chosen.fallback, reused ? 'cached' : 'downloaded', (await installSet(set, deb, chosen.fallback)).headerCounts);
    }
    result.sets.push(s);
    log(describe(set, s));
  }
  return result;
}
