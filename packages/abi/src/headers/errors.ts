/**
 * Why a header sync failed. The CLI maps each kind to its own exit status, so scripts (and CI logs)
 * can tell "no network" from "the archive served different bytes".
 */
export type HeaderSyncErrorKind =
  | 'tool-missing' // apt-get / apt-cache / dpkg-deb not on PATH
  | 'unreachable' // the Debian archive could not be reached
  | 'not-found' // the package/version is not in the archive (and no fallback exists)
  | 'integrity' // a .deb or header sha256 differs from kernel-headers/versions.json
  | 'extract' // dpkg-deb failed or the package lacks a header we need
  | 'config'; // kernel-headers/versions.json is missing or malformed

/** A one-line, user-facing failure of the header sync. */
export class HeaderSyncError extends Error {
  constructor(
    readonly kind: HeaderSyncErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'HeaderSyncError';
  }
}
