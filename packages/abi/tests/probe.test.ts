/**
 * Every committed spec, checked against a real C compiler over the same cached headers: struct
 * sizes/alignments, member offsets and sizes, bitfield positions, ioctl numbers and constants.
 * All values are read back from an object file, so arm64/riscv64 need only cross compilers.
 */
import test from 'ava';
import { rmSync } from 'node:fs';
import { cacheReady, includeRoot, pinnedSets } from '../src/headers/index.js';
import { formatMismatches, runProbe, type ProbeReport } from './probe/check.js';
import { testNeeding } from './helpers/prerequisite.js';
import { toolchain, type Toolchain } from './probe/compile.js';
import { fixtureSpec, writeFixtureHeaders } from './probe/fixture.js';
import { patchedIncludeRoot, splitSpecId } from './probe/local.js';
import { listSpecs, loadSpecFile, SPEC_DIR } from '../src/index.js';
import type { Spec } from '../src/spec/types.js';

function summary(r: ProbeReport): string {
  const c = r.counts;
  return (
    `checked ${c.structs} structs (size+align), ${c.leaves} leaves incl. ${c.bitfields} bitfields (${c.leafChecks} checks), ` +
    `${c.ioctls} ioctls (${c.ioctlChecks} checks), ${c.constants} constants: all match`
  );
}

// The fixture runs everywhere gcc does: it proves the probe itself finds right values and flags wrong ones.
const host = toolchain('x86_64');
if ('missing' in host) {
  testNeeding(`${host.missing} not found`, 'probe self-test', () => {});
} else {
  const tc: Toolchain = host;

  test('probe self-test: a correct hand-made spec matches the compiler exactly', (t) => {
    const root = writeFixtureHeaders();
    t.teardown(() => rmSync(root, { recursive: true, force: true }));
    const r = runProbe(fixtureSpec(), root, tc);
    if (r.mismatches.length > 0) t.fail(formatMismatches(r.mismatches));
    else t.log(summary(r));
    t.deepEqual(r.counts, { structs: 3, leaves: 13, leafChecks: 32, bitfields: 2, ioctls: 2, ioctlChecks: 9, constants: 3 });
  });

  test('probe self-test: every kind of wrong value is reported with spec and compiler values', (t) => {
    const root = writeFixtureHeaders();
    t.teardown(() => rmSync(root, { recursive: true, force: true }));
    const spec: Spec = fixtureSpec();
    spec.structs.fix_point.size = 12;
    spec.structs.fix_main.align = 4;
    spec.structs.fix_main.layout[3].offset = 12; // wide
    spec.structs.fix_main.layout[5].size = 3; // grid: a row's size, not one element's
    spec.structs.fix_main.layout[7].count = 3; // un.c
    spec.structs.fix_main.layout[2].bitOffset = 10; // mid
    spec.structs['fix_main.pair'].layout[1].offset = 1;
    spec.ioctls.FIX_IOC_GET.number += 1;
    spec.constants.FIX_NEG = 5;
    spec.constants.FIX_BIG = -1; // same 64-bit pattern, wrong sign
    const r = runProbe(spec, root, tc);
    t.deepEqual(
      r.mismatches.map((m) => `${m.item}: ${m.spec} vs ${m.compiler}`).sort(),
      [
        'FIX_BIG: -1 vs 18446744073709551615',
        'FIX_IOC_GET number: 2148052482 vs 2148052481',
        'FIX_NEG: 5 vs -5',
        '_Alignof(fix_main): 4 vs 8',
        'fix_main.mid bits: bits 10..16 vs bits 11..17',
        'offsetof(fix_main, wide): 12 vs 8',
        'offsetof(fix_main.pair, b): 1 vs 2',
        'extent 0 of fix_main.un.c (count): 3 vs 4',
        'sizeof(fix_main.grid[0][0]): 3 vs 1',
        'sizeof(fix_point): 12 vs 8',
      ].sort(),
    );
    t.regex(formatMismatches(r.mismatches), /^10 mismatch\(es\):\n {2}\S/);
  });

  test('probe self-test: a name the headers lack fails the compile with the compiler error', (t) => {
    const root = writeFixtureHeaders();
    t.teardown(() => rmSync(root, { recursive: true, force: true }));
    const spec = fixtureSpec();
    spec.constants.FIX_MISSING = 1;
    t.throws(() => runProbe(spec, root, tc), { message: /could not compile the probe[\s\S]*FIX_MISSING/ });
  });
}

const specs = listSpecs();
const pinned = new Set(pinnedSets().map((s) => s.id));

if (specs.length === 0) test('committed specs exist', (t) => t.fail(`no spec files under ${SPEC_DIR}`));

for (const { id, arch, path: file } of specs) {
  const title = `compiler probe ${id}/${arch}`;
  const { base, local } = splitSpecId(id);
  if (!pinned.has(base)) {
    test(title, (t) => t.fail(`spec/${id}: no pinned header set "${base}" in kernel-headers/versions.json`));
    continue;
  }
  const tc = toolchain(arch);
  const missing = 'missing' in tc ? `${tc.missing} is neither on PATH nor fetched (npm run fetch)` : !cacheReady(base, arch) ? 'kernel headers not synced (npm run fetch)' : '';
  testNeeding(missing || undefined, title, (t) => {
    const spec = loadSpecFile(file);
    t.is(spec.arch, arch, `${file} declares arch ${spec.arch}`);
    // A "+local" spec describes the base headers with kernel-headers/patches applied.
    const headers = local ? patchedIncludeRoot(base, arch) : { root: includeRoot(base, arch), cleanup: () => {} };
    t.teardown(headers.cleanup);
    const r = runProbe(spec, headers.root, tc as Toolchain);
    t.true(r.counts.structs > 0 && r.counts.ioctls > 0 && r.counts.constants > 0, `${file} is missing structs, ioctls or constants`);
    if (r.mismatches.length > 0) t.fail(`${file}: ${formatMismatches(r.mismatches)}`);
    else t.log(summary(r));
  });
}
