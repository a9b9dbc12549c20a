import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** Per-user download cache shared by every checkout: $XDG_CACHE_HOME/kvm-ts (default ~/.cache/kvm-ts). */
export function userCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME ? resolve(process.env.XDG_CACHE_HOME) : join(homedir(), '.cache');
  return join(base, 'kvm-ts');
}

/** Verified .debs, named as apt names them (pkg_version_arch.deb). */
export function debCacheDir(): string {
  return join(userCacheDir(), 'debs');
}

/** apt's private lists/cache/state: apt-get never touches the system's own configuration. */
export function aptStateDir(): string {
  return join(userCacheDir(), 'apt');
}
