/** Where the built-in test guest lives once scripts/build-guest.mjs has run (at npm install). */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export class GuestImageError extends Error {
  override name = 'GuestImageError';
}

/** The same relative path works from src/ (tests, tsx) and from dist/ (the published build). */
const GUEST_URL = new URL('../guest/build/guest.elf', import.meta.url);

export function builtinGuestPath(): string {
  const path = fileURLToPath(GUEST_URL);
  if (!existsSync(path)) {
    throw new GuestImageError(`built-in test guest not built (${path} missing): run "node packages/hypervisor/scripts/build-guest.mjs" (needs gcc)`);
  }
  return path;
}
