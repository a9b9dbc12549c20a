/**
 * Why fetching from the Debian archive failed. The CLI maps each kind to its own exit status, so
 * scripts (and CI logs) can tell "no network" from "the archive served different bytes".
 */
export type FetchErrorKind =
  | 'tool-missing' // apt-get / apt-cache / dpkg-deb not on PATH
  | 'no-source' // no Debian archive in apt's sources and no KVM_TS_DEBIAN_MIRROR
  | 'unreachable' // the Debian archive could not be reached
  | 'not-found' // the package/version is not in the archive (and no fallback exists)
  | 'integrity' // a .deb or header sha256 differs from what was pinned
  | 'extract' // dpkg-deb failed or the package lacks a file we need
  | 'config'; // a pins file is missing or malformed

/** A one-line, user-facing failure of a fetch from the Debian archive (header sync, test kernel, toolchains). */
export class FetchError extends Error {
  constructor(
    readonly kind: FetchErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'FetchError';
  }
}
