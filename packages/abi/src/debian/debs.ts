import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { aptDownload, type PrivateApt } from './apt.js';
import { FetchError } from './errors.js';
import { sha256File } from './hash.js';
import { firstErrorLine, runTool } from './run.js';
import { debCacheDir } from './paths.js';

export interface CachedDeb {
  path: string;
  version: string;
  /** The .deb's Architecture, read from apt's file name (pkg_version_arch.deb). */
  debArch: string;
  sha256: string;
}

// apt names downloads pkg_version_arch.deb with the epoch colon escaped.
function fileVersion(version: string): string {
  return version.replace(/:/g, '%3a');
}

function debArchOf(fileName: string): string {
  return /_([^_]+)\.deb$/.exec(fileName)?.[1] ?? 'unknown';
}

/** A .deb of exactly pkg=version already in the per-user cache, if any. */
export function findCachedDeb(pkg: string, version: string): CachedDeb | undefined {
  const dir = debCacheDir();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return undefined;
  }
  const prefix = `${pkg}_${fileVersion(version)}_`;
  const name = names.find((n) => n.startsWith(prefix) && n.endsWith('.deb'));
  if (!name) return undefined;
  const path = join(dir, name);
  return { path, version, debArch: debArchOf(name), sha256: sha256File(path) };
}

/**
 * Downloads pkg=version into the per-user cache. The file only enters the cache once it matches
 * `expectedSha256` (null: unknown, e.g. a fallback version or while re-pinning), so a bad download
 * can never poison later runs.
 */
export async function downloadDeb(apt: PrivateApt, pkg: string, version: string, expectedSha256: string | null): Promise<CachedDeb> {
  const dir = debCacheDir();
  mkdirSync(dir, { recursive: true });
  const tmp = mkdtempSync(join(dir, '.download-'));
  try {
    await aptDownload(apt, pkg, version, tmp);
    const debs = readdirSync(tmp).filter((n) => n.endsWith('.deb'));
    if (debs.length !== 1) {
      throw new FetchError('not-found', `apt-get download ${pkg}=${version} produced ${debs.length} .deb files, expected 1`);
    }
    const sha256 = sha256File(join(tmp, debs[0]));
    if (expectedSha256 !== null && sha256 !== expectedSha256) {
      throw new FetchError(
        'integrity',
        `${debs[0]}: sha256 ${sha256} does not match the pinned ${expectedSha256} (kernel-headers/versions.json)`,
      );
    }
    const path = join(dir, debs[0]);
    renameSync(join(tmp, debs[0]), path);
    return { path, version, debArch: debArchOf(debs[0]), sha256 };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Unpacks a .deb's data into `dest` with dpkg-deb. */
export async function extractDeb(deb: string, dest: string): Promise<void> {
  const r = await runTool('dpkg-deb', ['-x', deb, dest], { providedBy: 'dpkg' });
  if (r.code !== 0) throw new FetchError('extract', `dpkg-deb -x ${deb} failed: ${firstErrorLine(r.stderr || r.stdout)}`);
}

/** Unpacks only the members matching shell `patterns` ("./boot/vmlinuz-*") of a .deb into `dest`. */
export async function extractDebMembers(deb: string, dest: string, patterns: string[]): Promise<void> {
  const r = await runTool('sh', ['-c', 'd=$1; o=$2; shift 2; dpkg-deb --fsys-tarfile "$d" | tar -x --wildcards -C "$o" "$@"', 'sh', deb, dest, ...patterns], { providedBy: 'dpkg' });
  if (r.code !== 0) throw new FetchError('extract', `extracting ${patterns.join(' ')} from ${deb} failed: ${firstErrorLine(r.stderr || r.stdout)}`);
}
