/** The header sync fails with the Debian fetch's own one-line errors; the old names stay for callers. */
export { FetchError as HeaderSyncError, type FetchErrorKind as HeaderSyncErrorKind } from '../debian/errors.js';
