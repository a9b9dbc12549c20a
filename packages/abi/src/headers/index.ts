/**
 * The pinned kernel uapi header sets (kernel-headers/versions.json) and their local cache
 * (kernel-headers/cache/<id>/<arch>/include), filled by `kvm-cli abi sync`.
 */
import type { Arch } from '../spec/types.js';
import { installedArch } from './install.js';

export { pinnedSets, loadPins, type PinnedSet, type PinnedSetRecord, type PinsFile } from './versions.js';
export { includeRoot, headersCacheRoot, repoRoot, debCacheDir } from './paths.js';
export { syncHeaders, type SyncResult, type SyncedSet, type SyncOptions } from './sync.js';
export { readSynced, type SyncedRecord } from './install.js';
export { editProblems, withEditedHeaders, type HeaderEdit } from './edit.js';
export { HeaderSyncError, type HeaderSyncErrorKind } from './errors.js';
export { upstreamVersion, seriesOf, compareDebianVersions } from '../debian/debversion.js';

/** True when `kvm-cli abi sync` has put the include root for (id, arch) in place. */
export function cacheReady(id: string, arch: Arch): boolean {
  return installedArch(id, arch);
}
