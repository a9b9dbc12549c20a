/** @kvm-ts/abi/sources: every way to name a spec (file, pinned id, include dir, Linux tree, git ref). */
export { loadSpecSource, kernelVersion, type SourceKind, type SourceOptions } from './resolve.js';
export { SpecSourceError } from './errors.js';
export { installedHeaderText } from './install-text.js';
export { parseGitSource } from './git-tree.js';
export { clearSpecCache, pruneSpecCache, specCacheDir, specCacheEntries, specCacheMaxBytes, SPEC_CACHE_MAX_BYTES } from './spec-cache.js';
