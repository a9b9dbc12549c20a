/**
 * The differential run: fast-check writes uapi-style headers (tests/helpers/uapi-header.ts), the
 * generator turns each into a spec, and gcc compiles probes of many specs per invocation; every
 * struct size/alignment, leaf offset/size/extent, bit position, constant and ioctl must equal what
 * gcc computes. A header the generator rejects must be rejected with a HeaderError naming a line
 * of that header — a construct the spec cannot express — never with a wrong number.
 */
import fc from 'fast-check';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSpec, HeaderError } from '../../src/generator/index.js';
import type { Arch, Spec } from '../../src/spec/types.js';
import { SHARED_HEADERS, uapiHeader } from '../helpers/uapi-header.js';
import { compareProbe, type Mismatch } from './check.js';
import { compileProbe, type Toolchain } from './compile.js';
import { buildProbeMany } from './items.js';

export interface DifferentialResult {
  headers: number;
  /** Generated and checked against gcc. */
  checked: number;
  /** Rejected by the generator with a HeaderError at a line of the header (file:line: construct: why). */
  rejected: Array<{ header: number; message: string }>;
  /** Rejections that did not name the header's own file:line: always a failure. */
  badRejections: Array<{ header: number; message: string }>;
  mismatches: Array<Mismatch & { header: number; path: string }>;
  counts: { structs: number; leaves: number; bitfields: number; constants: number; ioctls: number };
  /** Where the headers were written (kept when anything failed). */
  dir: string;
}

export function runDifferential(opts: { count: number; seed: number; batch: number; tc: Toolchain; arch?: Arch; keep?: boolean }): DifferentialResult {
  const arch = opts.arch ?? 'x86_64';
  const dir = mkdtempSync(join(tmpdir(), `kvm-ts-differential-${arch}-`));
  const shared = join(dir, 'shared');
  for (const [rel, text] of Object.entries(SHARED_HEADERS)) {
    mkdirSync(join(shared, rel, '..'), { recursive: true });
    writeFileSync(join(shared, rel), text);
  }
  // One draw per header, each with its own prefix and seed: a fixed seed makes the run reproducible.
  const texts = Array.from({ length: opts.count }, (_, i) => fc.sample(uapiHeader(`h${i}`), { seed: opts.seed + i, numRuns: 1 })[0]);
  const result: DifferentialResult = {
    headers: texts.length, checked: 0, rejected: [], badRejections: [], mismatches: [],
    counts: { structs: 0, leaves: 0, bitfields: 0, constants: 0, ioctls: 0 }, dir,
  };
  const specs: Array<{ index: number; spec: Spec }> = [];
  texts.forEach((text, i) => {
    const root = join(dir, `h${i}`);
    mkdirSync(join(root, 'linux'), { recursive: true });
    const path = join(root, 'linux', 'kvm.h');
    writeFileSync(path, text);
    try {
      specs.push({ index: i, spec: generateSpec({ includeDirs: [root, shared], arch, kernel: '0.0.0' }) });
    } catch (err) {
      if (!(err instanceof HeaderError)) throw err;
      const own = err.loc.file === path && err.loc.line > 0 && err.message.startsWith(`${path}:${err.loc.line}: `);
      (own ? result.rejected : result.badRejections).push({ header: i, message: err.message });
    }
  });
  for (let at = 0; at < specs.length; at += opts.batch) {
    const batch = specs.slice(at, at + opts.batch);
    const includes = batch.map((s) => `h${s.index}/linux/kvm.h`);
    const probe = buildProbeMany(batch.map((s) => s.spec), includes);
    const merged: Spec = { kernel: '0', arch, ioctls: {}, structs: {}, constants: {}, typedefs: {} };
    for (const { spec } of batch) {
      Object.assign(merged.ioctls, spec.ioctls);
      Object.assign(merged.structs, spec.structs);
      Object.assign(merged.constants, spec.constants);
    }
    const work = join(dir, `probe-${at}`);
    mkdirSync(work);
    const report = compareProbe(merged, probe, compileProbe(opts.tc, [dir, shared], probe.source, work));
    result.checked += batch.length;
    result.counts.structs += report.counts.structs;
    result.counts.leaves += report.counts.leaves;
    result.counts.bitfields += report.counts.bitfields;
    result.counts.constants += report.counts.constants;
    result.counts.ioctls += report.counts.ioctls;
    for (const m of report.mismatches) {
      // Labels start with the struct key or macro name, which carries the header's prefix.
      const index = Number(/\b(?:KVM_)?[hH](\d+)_/.exec(m.item)?.[1] ?? -1);
      result.mismatches.push({ ...m, header: index, path: join(dir, `h${index}`, 'linux', 'kvm.h') });
    }
  }
  const failed = result.mismatches.length > 0 || result.badRejections.length > 0;
  if (!failed && !opts.keep) rmSync(dir, { recursive: true, force: true });
  return result;
}

export function describeResult(r: DifferentialResult): string {
  const c = r.counts;
  return `${r.headers} headers: ${r.checked} checked against gcc (${c.structs} structs, ${c.leaves} leaves incl. ${c.bitfields} bitfields, ` +
    `${c.constants} constants, ${c.ioctls} ioctls), ${r.rejected.length} rejected with file:line, ${r.mismatches.length} mismatch(es)`;
}
