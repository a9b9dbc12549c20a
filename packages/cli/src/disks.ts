/**
 * `-d/--disk PATH[,ro][,direct]` and the built-in guest's scratch disk. Every disk is opened,
 * checked and locked here, before the VM exists, so a bad one is one line and exit 2.
 */
import { mkdtempSync, openSync, closeSync, ftruncateSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BlockBackend, DiskOptions } from '@kvm-ts/hypervisor';
import { UsageError } from './errors.js';

type Hypervisor = typeof import('@kvm-ts/hypervisor');

/** A sparse scratch disk of this size for the built-in guest's write test. */
export const SCRATCH_BYTES = 64 * 1024 * 1024;

/** "img,ro,direct" → { path: 'img', readOnly: true, direct: true }. */
export function parseDiskSpec(spec: string): DiskOptions {
  const parts = spec.split(',');
  const opts: DiskOptions = { path: parts[0] };
  for (const p of parts.slice(1)) {
    if (p === 'ro') opts.readOnly = true;
    else if (p === 'direct') opts.direct = true;
    else throw new UsageError(`--disk: unknown option '${p}' in '${spec}' (PATH[,ro][,direct])`);
  }
  if (!opts.path) throw new UsageError(`--disk: '${spec}' has no path (PATH[,ro][,direct])`);
  return opts;
}

/** Opens every disk; on the first refusal closes the ones already open and throws one usage line. */
export function openDisks(hv: Hypervisor, specs: DiskOptions[]): BlockBackend[] {
  const open: BlockBackend[] = [];
  try {
    for (const s of specs) open.push(hv.DiskImage.open(s));
    return open;
  } catch (err) {
    for (const d of open) void d.close();
    if (err instanceof hv.DiskError) throw new UsageError(`--disk: ${err.message}`);
    throw err;
  }
}

/**
 * A sparse file in a fresh temporary directory, opened and then unlinked at once: the open
 * descriptor keeps it alive for the run, and nothing is left behind on any way out, SIGKILL included.
 */
export function scratchDisk(hv: Hypervisor): BlockBackend {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-scratch-'));
  try {
    const path = join(dir, 'kvm-ts-scratch');
    const fd = openSync(path, 'wx', 0o600);
    try {
      ftruncateSync(fd, SCRATCH_BYTES);
    } finally {
      closeSync(fd);
    }
    return hv.DiskImage.open({ path });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
