/**
 * The stock Debian kernel that scripts/fetch-test-kernel.mjs caches for the loader tests.
 * Kept in step with that script: KVM_TS_TEST_KERNEL wins, else $XDG_CACHE_HOME (or ~/.cache)/kvm-ts/kernels/vmlinuz.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export function testKernelCachePath(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'kvm-ts', 'kernels', 'vmlinuz');
}

/** The cached test kernel's path, or undefined when it has not been fetched. */
export function cachedTestKernel(): string | undefined {
  const override = process.env.KVM_TS_TEST_KERNEL;
  if (override) return existsSync(override) ? override : undefined;
  const p = testKernelCachePath();
  return existsSync(p) ? p : undefined;
}
