import test from 'ava';
import { existsSync } from 'node:fs';

/** Only a host without /dev/kvm may skip KVM tests, and it says so; under CI=true that is a failure. */
export const kvmMissing = !existsSync('/dev/kvm');
export const skipReason = 'skipped: /dev/kvm is absent on this host';

/**
 * The one visible mark a file's skipped KVM tests leave: a skip mark carrying the reason (a skip, never
 * a pass: CI's count must not add it to "N passed"), or under CI a failure.
 */
export function markKvmMissing(what = 'KVM tests'): void {
  if (process.env.CI === 'true') test(`${what}: /dev/kvm is absent but CI=true requires it`, (t) => t.fail('/dev/kvm is absent'));
  else test.skip(`${what} — ${skipReason}`, () => {});
}
