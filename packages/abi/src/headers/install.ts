import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Arch } from '../spec/types.js';
import { upstreamVersion } from '../debian/debversion.js';
import type { CachedDeb } from '../debian/debs.js';
import { HeaderSyncError } from './errors.js';
import { joinInside, quoted } from '../sources/entry-path.js';
import { extractDeb } from '../debian/debs.js';
import { headerClosure } from './extract.js';
import { sha256File } from '../debian/hash.js';
import { headersCacheRoot, includeRoot, setCacheDir, syncedFile } from './paths.js';
import { archesOf, type PinnedSetRecord } from './versions.js';

/** kernel-headers/cache/<id>/synced.json: what a sync actually put in place. */
export interface SyncedRecord {
  id: string;
  package: string;
  pinnedVersion: string;
  /** The Debian version actually extracted; differs from pinnedVersion only when fallback is true. */
  version: string;
  /** Always the pin's upstream version: specs are named after the pin. */
  kernel: string;
  fallback: boolean;
  debSha256: string;
  arches: Partial<Record<Arch, Record<string, string>>>;
  /** #include targets the package cannot provide (libc/compiler headers). */
  unresolvedIncludes: string[];
}

export function readSynced(id: string): SyncedRecord | undefined {
  try {
    return JSON.parse(readFileSync(syncedFile(id), 'utf8')) as SyncedRecord;
  } catch {
    return undefined;
  }
}

/** True when cache/<id> holds exactly the pinned headers, byte for byte. */
export function installedMatchesPin(set: PinnedSetRecord): boolean {
  const synced = readSynced(set.id);
  if (!synced || synced.fallback || synced.version !== set.debianVersion || synced.debSha256 !== set.debSha256) return false;
  for (const arch of archesOf(set)) {
    const root = includeRoot(set.id, arch);
    for (const [rel, sha] of Object.entries(set.arches[arch] ?? {})) {
      const file = join(root, rel);
      if (!existsSync(file) || sha256File(file) !== sha) return false;
    }
  }
  return true;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Compares an arch's extracted closure with the pinned path → sha256 map; one line naming the first difference. */
function checkAgainstPin(set: PinnedSetRecord, arch: Arch, hashes: Record<string, string>): void {
  const pinned = set.arches[arch] ?? {};
  for (const [rel, sha] of Object.entries(pinned)) {
    if (!(rel in hashes)) throw new HeaderSyncError('integrity', `set ${set.id} ${arch}: pinned header ${rel} is not in the package's include closure`);
    if (hashes[rel] !== sha) {
      throw new HeaderSyncError('integrity', `set ${set.id} ${arch}: ${rel} sha256 ${hashes[rel]} does not match the pinned ${sha}`);
    }
  }
  const extra = Object.keys(hashes).filter((rel) => !(rel in pinned));
  if (extra.length > 0) {
    throw new HeaderSyncError('integrity', `set ${set.id} ${arch}: ${extra[0]} is in the include closure but not pinned (${extra.length} such)`);
  }
}

// Leftovers of a killed sync are named after its pid; only dead processes' leftovers are removed.
function removeStaleStaging(root: string): void {
  let names: string[] = [];
  try {
    names = readdirSync(root);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(/^\.(?:staging|old)-.+-(\d+)-[^-]+$/.exec(name)?.[1]);
    if (!pid) continue;
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (err) {
      alive = (err as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (!alive) rmSync(join(root, name), { recursive: true, force: true });
  }
}

export interface InstallOutcome {
  record: SyncedRecord;
  headerCounts: Partial<Record<Arch, number>>;
}

/**
 * Extracts `deb`, copies each arch's header closure into a staging directory next to the cache,
 * verifies it (unless this is a fallback version) and renames it over cache/<id>. On any failure
 * the previous cache/<id> is untouched and no partial directory remains.
 */
export async function installSet(set: PinnedSetRecord, deb: CachedDeb, fallback: boolean): Promise<InstallOutcome> {
  const root = headersCacheRoot();
  mkdirSync(root, { recursive: true });
  removeStaleStaging(root);
  const unpacked = mkdtempSync(join(tmpdir(), 'kvm-ts-deb-'));
  const staging = mkdtempSync(join(root, `.staging-${set.id}-${process.pid}-`));
  try {
    await extractDeb(deb.path, unpacked);
    const record: SyncedRecord = {
      id: set.id,
      package: set.package,
      pinnedVersion: set.debianVersion,
      version: deb.version,
      kernel: upstreamVersion(set.debianVersion),
      fallback,
      debSha256: deb.sha256,
      arches: {},
      unresolvedIncludes: [],
    };
    const headerCounts: Partial<Record<Arch, number>> = {};
    for (const arch of archesOf(set)) {
      const closure = headerClosure(unpacked, arch);
      const hashes: Record<string, string> = {};
      for (const [rel, file] of closure.files) {
        const data = readFileSync(file);
        hashes[rel] = sha256(data);
        const dest = joinInside(join(staging, arch, 'include'), rel, (why) => new HeaderSyncError('extract', `header ${quoted(rel)} refused: ${why}`));
        mkdirSync(dirname(dest), { recursive: true });
        writeFileSync(dest, data);
      }
      if (!fallback) checkAgainstPin(set, arch, hashes);
      record.arches[arch] = hashes;
      headerCounts[arch] = closure.files.size;
      for (const u of closure.unresolved) record.unresolvedIncludes.push(`${arch}: ${u}`);
    }
    writeFileSync(join(staging, 'synced.json'), `${JSON.stringify(record, null, 2)}\n`);
    // mkdtemp made it private; the installed tree should read like any checked-out directory.
    chmodSync(staging, 0o755);
    replaceDir(staging, setCacheDir(set.id), root, set.id);
    return { record, headerCounts };
  } finally {
    rmSync(unpacked, { recursive: true, force: true });
    rmSync(staging, { recursive: true, force: true });
  }
}

function replaceDir(staging: string, target: string, root: string, id: string): void {
  if (!existsSync(target)) {
    renameSync(staging, target);
    return;
  }
  const old = join(root, `.old-${id}-${process.pid}-${Date.now().toString(36)}`);
  renameSync(target, old);
  try {
    renameSync(staging, target);
  } catch (err) {
    renameSync(old, target);
    throw err;
  }
  rmSync(old, { recursive: true, force: true });
}

/** True when sync has put `arch`'s include root for set `id` in place. Cheap: no hashing. */
export function installedArch(id: string, arch: Arch): boolean {
  const synced = readSynced(id);
  if (!synced?.arches?.[arch]) return false;
  const inc = includeRoot(id, arch);
  return existsSync(join(inc, 'linux', 'kvm.h')) && existsSync(join(inc, 'asm', 'kvm.h'));
}
