import { accessSync, chmodSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { aptDownload, aptUpdate, availableVersions, privateApt } from './apt.js';
import { hostDebianRelease } from './cross-gcc.js';
import { compareDebianVersions } from './debversion.js';
import { extractDebMembers } from './debs.js';
import { FetchError } from './errors.js';
import { userCacheDir } from './paths.js';
import { joinInside } from '../sources/entry-path.js';

/**
 * A tool the tests run, taken from its Debian package for this host's release without root: the
 * package's `members` are unpacked into the user cache, nothing is installed (passt for the
 * user-mode network tests, ping for the tap tests). Its libraries must be the host's own.
 */
export interface UnpackedTool {
  /** The Debian package. */
  pkg: string;
  /** tar patterns of what to unpack ("./usr/bin/passt*"). */
  members: string[];
  /** The executable, relative to the unpacked root ("usr/bin/passt"). */
  binary: string;
}

/**
 * `tool` on PATH, looked up here rather than through a shell: bash with a socket for stdin (as
 * spawnSync gives it) and no SHLVL sources ~/.bashrc, which can block in a stripped CI environment.
 */
export function findOnPath(tool: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  // An empty or relative entry means the current directory: whoever controls it would choose the tool.
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!isAbsolute(dir)) continue;
    const path = join(dir, tool);
    try {
      accessSync(path, constants.X_OK);
      if (statSync(path).isFile()) return path;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

export function unpackedToolRoot(tool: UnpackedTool): string {
  return join(userCacheDir(), 'tools', tool.pkg);
}

/** The cached executable, when an earlier fetch left it. */
export function cachedTool(tool: UnpackedTool): string | undefined {
  const path = join(unpackedToolRoot(tool), tool.binary);
  return existsSync(path) ? path : undefined;
}

export interface FetchedTool {
  path: string;
  /** "pkg=version", or undefined when it was in the cache already. */
  downloaded?: string;
}

/** The cached tool, else a download of the newest version in the host's release (one apt-get update). */
export async function fetchUnpackedTool(tool: UnpackedTool): Promise<FetchedTool> {
  const cached = cachedTool(tool);
  if (cached) return { path: cached };
  const release = hostDebianRelease();
  const apt = privateApt([release, `${release}-updates`, `${release}-security`]);
  await aptUpdate(apt);
  const version = (await availableVersions(apt, tool.pkg)).map((v) => v.version).sort((a, b) => compareDebianVersions(b, a))[0];
  if (!version) throw new FetchError('not-found', `${tool.pkg} is not in Debian ${apt.suites.join('/')}`);
  const root = unpackedToolRoot(tool);
  mkdirSync(dirname(root), { recursive: true });
  const work = mkdtempSync(`${root}.staging-`);
  try {
    await aptDownload(apt, tool.pkg, version, work);
    const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
    if (!deb) throw new FetchError('not-found', `apt-get download ${tool.pkg}=${version} produced no .deb`);
    await extractDebMembers(join(work, deb), work, tool.members);
    const binary = joinInside(work, tool.binary, (why) => new FetchError('extract', `${deb}: /${tool.binary} refused: ${why}`), true);
    if (!existsSync(binary) || !statSync(binary).isFile()) throw new FetchError('extract', `${deb} holds no /${tool.binary}`);
    for (const f of readdirSync(dirname(binary))) chmodSync(join(dirname(binary), f), 0o755);
    rmSync(join(work, deb));
    writeFileSync(join(work, `${tool.pkg}.version`), `${tool.pkg}=${version}\n`);
    rmSync(root, { recursive: true, force: true });
    // Renamed last, so an interrupted fetch never leaves half a tree at the well-known path.
    renameSync(work, root);
    return { path: join(root, tool.binary), downloaded: `${tool.pkg}=${version}` };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
