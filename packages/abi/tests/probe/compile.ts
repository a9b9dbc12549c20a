import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cachedCrossTool } from '../../src/debian/cross-gcc.js';
import { GNU_TRIPLET } from '../../src/spec/arch.js';
import type { Arch } from '../../src/spec/types.js';
import { PROBE_SECTION } from './items.js';

export interface Toolchain {
  cc: string;
  objcopy: string;
}

const NODE_ARCH: Record<Arch, string> = { x86_64: 'x64', arm64: 'arm64', riscv64: 'riscv64' };

function onPath(tool: string): boolean {
  return spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0;
}

/**
 * The C toolchain for `arch` (or the first tool missing): on a host of that arch the plain system
 * gcc/objcopy, else the triplet-prefixed cross tools on PATH, else the ones the test pipeline's
 * fetch step unpacked into the user cache (scripts/fetch.mjs).
 */
export function toolchain(arch: Arch): Toolchain | { missing: string } {
  const triplet = GNU_TRIPLET[arch];
  const candidates: Toolchain[] = [];
  if (process.arch === NODE_ARCH[arch]) candidates.push({ cc: 'gcc', objcopy: 'objcopy' });
  candidates.push({ cc: `${triplet}-gcc`, objcopy: `${triplet}-objcopy` });
  const cc = cachedCrossTool(triplet, 'gcc');
  const objcopy = cachedCrossTool(triplet, 'objcopy');
  if (cc && objcopy) candidates.push({ cc, objcopy });
  for (const tc of candidates) if (onPath(tc.cc) && onPath(tc.objcopy)) return tc;
  const named = { cc: `${triplet}-gcc`, objcopy: `${triplet}-objcopy` };
  return { missing: onPath(named.cc) ? named.objcopy : named.cc };
}

/**
 * Compiles `source` against exactly `includeRoot` (no system headers, no __KERNEL__) into an object
 * file and returns the bytes of the probe section.
 */
export function compileProbe(tc: Toolchain, includeRoot: string | string[], source: string, workDir: string): Buffer {
  const c = join(workDir, 'probe.c');
  const obj = join(workDir, 'probe.o');
  const bin = join(workDir, 'probe.bin');
  writeFileSync(c, source);
  const r = spawnSync(tc.cc, ['-std=gnu11', '-nostdinc', ...[includeRoot].flat().flatMap((d) => ['-I', d]), '-w', '-O0', '-c', c, '-o', obj], { encoding: 'utf8' });
  if (r.status !== 0) {
    const errors = (r.stderr || r.error?.message || '').split('\n').filter((l) => /error/.test(l)).slice(0, 20);
    throw new Error(`${tc.cc} could not compile the probe (${c}):\n${errors.join('\n')}`);
  }
  execFileSync(tc.objcopy, ['-O', 'binary', `--only-section=${PROBE_SECTION}`, obj, bin]);
  return readFileSync(bin);
}
