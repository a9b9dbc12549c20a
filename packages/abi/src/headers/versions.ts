import { readFileSync } from 'node:fs';
import { ARCHES, type Arch } from '../spec/types.js';
import { compareDebianVersions, upstreamVersion } from '../debian/debversion.js';
import { HeaderSyncError } from './errors.js';
import { pinsFile } from './paths.js';
import { entryPathProblem, quoted } from '../sources/entry-path.js';

/** One pinned header set as recorded in kernel-headers/versions.json. */
export interface PinnedSetRecord {
  id: string;
  /** Debian binary package, e.g. "linux-libc-dev". */
  package: string;
  /** Exact Debian version, e.g. "6.12.107-1". */
  debianVersion: string;
  /** Debian suite it is fetched from, e.g. "trixie". A fallback stays within this suite. */
  suite: string;
  /** Upstream series, e.g. "6.12". A fallback stays within this series. */
  series: string;
  /** Architecture field of the .deb: "amd64" (x86 headers only) or "all" (every arch's uapi). */
  debArch: string;
  debSha256: string;
  /** Per arch: include-root-relative header path → sha256. */
  arches: Partial<Record<Arch, Record<string, string>>>;
}

export interface PinsFile {
  sets: PinnedSetRecord[];
}

export interface PinnedSet {
  id: string;
  /** Upstream kernel version of the PIN ("6.12.107"), even when sync had to fall back. */
  kernel: string;
  debianVersion: string;
  suite: string;
  arches: Arch[];
}

const SHA256 = /^[0-9a-f]{64}$/;

function fail(why: string): never {
  throw new HeaderSyncError('config', `${pinsFile()}: ${why}`);
}

function str(value: unknown, where: string): string {
  if (typeof value !== 'string' || value === '') fail(`${where} must be a non-empty string`);
  return value;
}

function validateSet(raw: unknown, index: number): PinnedSetRecord {
  if (typeof raw !== 'object' || raw === null) fail(`sets[${index}] must be an object`);
  const r = raw as Record<string, unknown>;
  const id = str(r.id, `sets[${index}].id`);
  const at = (key: string) => `set "${id}" ${key}`;
  const set: PinnedSetRecord = {
    id,
    package: str(r.package, at('package')),
    debianVersion: str(r.debianVersion, at('debianVersion')),
    suite: str(r.suite, at('suite')),
    series: str(r.series, at('series')),
    debArch: str(r.debArch, at('debArch')),
    debSha256: str(r.debSha256, at('debSha256')),
    arches: {},
  };
  if (!SHA256.test(set.debSha256)) fail(`${at('debSha256')} is not a sha256`);
  if (typeof r.arches !== 'object' || r.arches === null) fail(`${at('arches')} must be an object`);
  for (const [arch, headers] of Object.entries(r.arches as Record<string, unknown>)) {
    if (!ARCHES.includes(arch as Arch)) fail(`${at('arches')} has unknown arch "${arch}"`);
    if (typeof headers !== 'object' || headers === null) fail(`${at(`arches.${arch}`)} must map header paths to sha256s`);
    const map = headers as Record<string, unknown>;
    for (const required of ['linux/kvm.h', 'asm/kvm.h']) {
      if (!(required in map)) fail(`${at(`arches.${arch}`)} lacks ${required}`);
    }
    for (const [path, sha] of Object.entries(map)) {
      if (typeof sha !== 'string' || !SHA256.test(sha)) fail(`${at(`arches.${arch}["${path}"]`)} is not a sha256`);
      if (entryPathProblem(path)) fail(`${at(`arches.${arch}`)} has unsafe path ${quoted(path)} (${entryPathProblem(path)})`);
    }
    set.arches[arch as Arch] = map as Record<string, string>;
  }
  if (Object.keys(set.arches).length === 0) fail(`${at('arches')} is empty`);
  return set;
}

/** Reads and validates kernel-headers/versions.json (sets in file order: oldest → newest). */
export function loadPins(): PinsFile {
  let text: string;
  try {
    text = readFileSync(pinsFile(), 'utf8');
  } catch (err) {
    fail(`cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    fail(`invalid JSON (${(err as Error).message})`);
  }
  const sets = (raw as { sets?: unknown })?.sets;
  if (!Array.isArray(sets) || sets.length === 0) fail('"sets" must be a non-empty array');
  const parsed = sets.map(validateSet);
  const ids = new Set<string>();
  for (const s of parsed) {
    if (ids.has(s.id)) fail(`duplicate set id "${s.id}"`);
    ids.add(s.id);
  }
  return { sets: parsed };
}

/** The arches a set covers, in the canonical ARCHES order. */
export function archesOf(set: PinnedSetRecord): Arch[] {
  return ARCHES.filter((a) => set.arches[a] !== undefined);
}

/** Every pinned header set, oldest → newest. */
export function pinnedSets(): PinnedSet[] {
  const sets = [...loadPins().sets].sort((a, b) => compareDebianVersions(a.debianVersion, b.debianVersion));
  return sets.map((s) => ({
    id: s.id,
    kernel: upstreamVersion(s.debianVersion),
    debianVersion: s.debianVersion,
    suite: s.suite,
    arches: archesOf(s),
  }));
}
