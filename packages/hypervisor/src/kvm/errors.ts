import { isSysError } from './native.js';

/** A KVM call failed or KVM cannot run this VM; the message is one line a user can act on. */
export class KvmError extends Error {
  override name = 'KvmError';
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** Why /dev/kvm could not be opened, and what to do about it. */
export function kvmOpenError(path: string, err: unknown): KvmError {
  if (!isSysError(err)) return new KvmError(`cannot open ${path}: ${String(err)}`);
  switch (err.code) {
    case 'ENOENT':
    case 'ENXIO':
    case 'ENODEV':
      return new KvmError(
        `${path} does not exist: hardware virtualization is unavailable (enable VT-x/AMD-V in the firmware, or load kvm_intel/kvm_amd)`,
        err.code,
      );
    case 'EACCES':
    case 'EPERM':
      return new KvmError(
        `permission denied opening ${path}: add this user to the 'kvm' group (sudo usermod -aG kvm $USER, then log in again) or check the device's permissions`,
        err.code,
      );
    default:
      return new KvmError(`cannot open ${path}: ${err.message}`, err.code);
  }
}

/** Names the ioctl that failed instead of its number. */
export function ioctlError(name: string, err: unknown): Error {
  if (!isSysError(err)) return err instanceof Error ? err : new Error(String(err));
  const e = new KvmError(`${name} failed: ${err.code} (${err.message.split(',')[0].replace(/^\w+: /, '')})`, err.code);
  return e;
}
