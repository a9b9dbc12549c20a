import { existsSync } from 'node:fs';

/** Only a host without /dev/kvm may skip KVM tests, and it says so. */
export const kvmMissing = !existsSync('/dev/kvm');
export const skipReason = 'skipped: /dev/kvm is absent on this host';
