import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Spec } from '../../src/spec/types.js';
import { compileProbe, type Toolchain } from './compile.js';
import { buildProbe, PROBE_MAGIC, type Probe, type ValueItem } from './items.js';

export interface Mismatch {
  item: string;
  spec: string;
  compiler: string;
}

export interface ProbeReport {
  counts: { structs: number; leaves: number; leafChecks: number; bitfields: number; ioctlChecks: number; ioctls: number; constants: number };
  mismatches: Mismatch[];
}

/** Decodes the probe section (little-endian: all three arches are) and compares it with the spec. */
export function compareProbe(spec: Spec, probe: Probe, section: Buffer): ProbeReport {
  const u64 = (at: number) => section.readBigUInt64LE(at);
  if (section.length < 56 || u64(0) !== PROBE_MAGIC) throw new Error('probe section lacks the magic header: wrong section or byte order');
  const nv = Number(u64(8));
  const nb = Number(u64(16));
  if (nv !== probe.values.length || nb !== probe.bitfields.length) throw new Error(`probe holds ${nv}/${nb} items, expected ${probe.values.length}/${probe.bitfields.length}`);
  const [valueAt, negAt, bfOffAt, bfSizeAt] = [24, 32, 40, 48].map((at) => Number(u64(at)));
  const mismatches: Mismatch[] = [];

  probe.values.forEach((item: ValueItem, i) => {
    const raw = u64(valueAt + 8 * i);
    const actual = section[negAt + i] ? raw - (1n << 64n) : raw;
    if (actual !== item.expected) mismatches.push({ item: item.label, spec: String(item.expected), compiler: String(actual) });
  });

  probe.bitfields.forEach((b, i) => {
    const off = Number(u64(bfOffAt + 8 * i));
    const size = Number(u64(bfSizeAt + 8 * i));
    const bytes = section.subarray(off, off + size);
    const set: number[] = [];
    bytes.forEach((byte, k) => {
      for (let bit = 0; bit < 8; bit++) if (byte & (1 << bit)) set.push(k * 8 + bit);
    });
    const first = set[0] ?? -1;
    const contiguous = set.every((bit, k) => bit === first + k);
    if (!contiguous || first !== b.firstBit || set.length !== b.width) {
      mismatches.push({
        item: b.label,
        spec: `bits ${b.firstBit}..${b.firstBit + b.width - 1}`,
        compiler: set.length === 0 ? 'no bits set' : contiguous ? `bits ${first}..${first + set.length - 1}` : `bits {${set.join(',')}}`,
      });
    }
  });

  const count = (c: ValueItem['category']) => probe.values.filter((v) => v.category === c).length;
  return {
    counts: {
      structs: Object.keys(spec.structs).length,
      leaves: probe.values.filter((v) => v.label.startsWith('offsetof(')).length + probe.bitfields.length,
      leafChecks: count('leaf') + probe.bitfields.length,
      bitfields: probe.bitfields.length,
      ioctls: Object.keys(spec.ioctls).length,
      ioctlChecks: count('ioctl'),
      constants: count('constant'),
    },
    mismatches,
  };
}

export function formatMismatches(m: Mismatch[], limit = 20): string {
  const shown = m.slice(0, limit).map((x) => `  ${x.item}: spec ${x.spec}, compiler ${x.compiler}`);
  const more = m.length > limit ? `\n  … and ${m.length - limit} more` : '';
  return `${m.length} mismatch(es):\n${shown.join('\n')}${more}`;
}

export { buildProbe };

/** Builds, compiles and compares the probe for one spec: one compiler run for everything. */
export function runProbe(spec: Spec, includeRoot: string, tc: Toolchain, includes?: string[]): ProbeReport {
  const probe = buildProbe(spec, includes);
  const work = mkdtempSync(join(tmpdir(), `kvm-ts-probe-${spec.arch}-`));
  try {
    return compareProbe(spec, probe, compileProbe(tc, includeRoot, probe.source, work));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
