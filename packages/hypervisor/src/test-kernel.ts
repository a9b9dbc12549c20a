/**
 * The stock Debian kernel the loader and boot tests use: the bzImage of bookworm's newest
 * linux-image-<abi>-amd64, cached at $XDG_CACHE_HOME (or ~/.cache)/kvm-ts/kernels/vmlinuz.
 * KVM_TS_TEST_KERNEL=<path> replaces it. test-kernel-fetch.ts downloads it.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** @kvm-ts/abi/debian's userCacheDir(), without loading the fetch code into every VMM start. */
export function testKernelCachePath(): string {
  const base = process.env.XDG_CACHE_HOME ? resolve(process.env.XDG_CACHE_HOME) : join(homedir(), '.cache');
  return join(base, 'kvm-ts', 'kernels', 'vmlinuz');
}

/** The cached test kernel's path, or undefined when it has not been fetched. */
export function cachedTestKernel(): string | undefined {
  const override = process.env.KVM_TS_TEST_KERNEL;
  if (override) return existsSync(override) ? override : undefined;
  const p = testKernelCachePath();
  return existsSync(p) ? p : undefined;
}

