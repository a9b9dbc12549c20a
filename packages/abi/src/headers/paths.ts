import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Arch } from '../spec/types.js';

let cachedRepoRoot: string | undefined;

/** The monorepo root: the nearest ancestor of this module whose package.json declares workspaces. */
export function repoRoot(): string {
  if (cachedRepoRoot) return cachedRepoRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ('workspaces' in JSON.parse(readFileSync(pkg, 'utf8'))) return (cachedRepoRoot = dir);
      } catch {
        // An unreadable package.json is not the root; keep walking.
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the kvm-ts repository root above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** kernel-headers/versions.json; KVM_TS_HEADERS_PINS points elsewhere (tests use it for fixture pins). */
export function pinsFile(): string {
  return process.env.KVM_TS_HEADERS_PINS ? resolve(process.env.KVM_TS_HEADERS_PINS) : join(repoRoot(), 'kernel-headers', 'versions.json');
}

/** kernel-headers/cache, or KVM_TS_HEADERS_CACHE. Holds <id>/<arch>/include and <id>/synced.json. */
export function headersCacheRoot(): string {
  return process.env.KVM_TS_HEADERS_CACHE ? resolve(process.env.KVM_TS_HEADERS_CACHE) : join(repoRoot(), 'kernel-headers', 'cache');
}

export function setCacheDir(id: string): string {
  return join(headersCacheRoot(), id);
}

/** Absolute path of the include root (linux/, asm/, asm-generic/) for one pinned set and arch. */
export function includeRoot(id: string, arch: Arch): string {
  return join(setCacheDir(id), arch, 'include');
}

export function syncedFile(id: string): string {
  return join(setCacheDir(id), 'synced.json');
}

export { userCacheDir, debCacheDir, aptStateDir } from '../debian/paths.js';
