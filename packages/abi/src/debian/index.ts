/**
 * Fetching from the Debian archive this machine's apt uses, without touching the system: a private
 * apt (sources list, lists and cache under the user cache), verified .debs, and the cross compilers
 * the layout probe needs. The header sync, the test-kernel fetch and the toolchain fetch share it.
 */
export { discoverMirrors, aptSourceFiles, readAptSources, parseOneLineSources, parseDeb822Sources, isDebianSuite, isSecuritySuite, MIRROR_ENV, SECURITY_MIRROR_ENV, type AptSourceEntry, type AptSourceFiles, type DebianMirrors, type MirrorChoice } from './sources.js';
export { privateApt, aptUpdate, availableVersions, aptDownload, packageNames, dependsOf, type PrivateApt, type AvailableVersion } from './apt.js';
export { findCachedDeb, downloadDeb, extractDeb, extractDebMembers, type CachedDeb } from './debs.js';
export { compareDebianVersions, upstreamVersion } from './debversion.js';
export { newestKernelPackage, KERNEL_SUITES } from './kernel-package.js';
export { runTool, firstErrorLine, type RunResult } from './run.js';
export { fetchCrossGcc, cachedCrossGcc, cachedCrossTool, crossGccDir, hostDebianRelease, type CrossGccResult } from './cross-gcc.js';
export { FetchError, type FetchErrorKind } from './errors.js';
export { userCacheDir } from './paths.js';
export { cachedTool, fetchUnpackedTool, findOnPath, unpackedToolRoot, type FetchedTool, type UnpackedTool } from './unpacked.js';
