/**
 * The generator against gcc on declarations nobody has written yet: a fixed-seed differential run
 * (tests/probe/differential.ts) with the host gcc, and a shorter one with each cross gcc, whose
 * psABIs lay unnamed bitfields out differently (AAPCS64). scripts/property-gcc.ts runs the long
 * version (docs/abi-property.md).
 */
import type { Arch } from '../src/spec/types.js';
import { testNeeding } from './helpers/prerequisite.js';
import { toolchain } from './probe/compile.js';
import { describeResult, runDifferential } from './probe/differential.js';

const SEED = 1;
const RUNS: Array<[Arch, number]> = [['x86_64', 800], ['arm64', 200], ['riscv64', 200]];

for (const [arch, headers] of RUNS) {
  const tc = toolchain(arch);
  testNeeding('missing' in tc ? `${tc.missing} not found` : undefined, `differential ${arch}: ${headers} generated uapi headers, spec equals gcc on every item`, (t) => {
    if ('missing' in tc) return;
    const r = runDifferential({ count: headers, seed: SEED, batch: 100, tc, arch });
    t.log(describeResult(r));
    for (const b of r.badRejections.slice(0, 5)) t.log(`rejection without the header's file:line (header ${b.header}): ${b.message}`);
    for (const m of r.mismatches.slice(0, 10)) t.log(`${m.path}: ${m.item}: spec ${m.spec}, gcc ${m.compiler}`);
    t.is(r.headers, headers);
    t.deepEqual(r.badRejections, [], `kept in ${r.dir}`);
    t.deepEqual(r.mismatches.length, 0, `kept in ${r.dir}`);
    // The run must exercise the generator, not its error path.
    t.true(r.checked >= headers * 0.8, `only ${r.checked} of ${headers} headers were checked; rejected: ${r.rejected.slice(0, 3).map((x) => x.message).join(' | ')}`);
    t.true(r.counts.bitfields > headers / 8 && r.counts.constants > headers * 0.375 && r.counts.ioctls > headers / 8, describeResult(r));
  });
}
