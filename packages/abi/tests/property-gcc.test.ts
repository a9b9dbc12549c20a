/**
 * The generator against gcc on declarations nobody has written yet: a fixed-seed differential run
 * (tests/probe/differential.ts). scripts/property-gcc.ts runs the long version (docs/abi-property.md).
 */
import { testNeeding } from './helpers/prerequisite.js';
import { toolchain } from './probe/compile.js';
import { describeResult, runDifferential } from './probe/differential.js';

const HEADERS = 800;
const SEED = 1;
const tc = toolchain('x86_64');

testNeeding('missing' in tc ? `${tc.missing} not found` : undefined, `differential: ${HEADERS} generated uapi headers, spec equals gcc on every item`, (t) => {
  if ('missing' in tc) return;
  const r = runDifferential({ count: HEADERS, seed: SEED, batch: 100, tc });
  t.log(describeResult(r));
  for (const b of r.badRejections.slice(0, 5)) t.log(`rejection without the header's file:line (header ${b.header}): ${b.message}`);
  for (const m of r.mismatches.slice(0, 10)) t.log(`${m.path}: ${m.item}: spec ${m.spec}, gcc ${m.compiler}`);
  t.is(r.headers, HEADERS);
  t.deepEqual(r.badRejections, [], `kept in ${r.dir}`);
  t.deepEqual(r.mismatches.length, 0, `kept in ${r.dir}`);
  // The run must exercise the generator, not its error path.
  t.true(r.checked >= HEADERS * 0.8, `only ${r.checked} of ${HEADERS} headers were checked; rejected: ${r.rejected.slice(0, 3).map((x) => x.message).join(' | ')}`);
  t.true(r.counts.bitfields > 100 && r.counts.constants > 300 && r.counts.ioctls > 100, describeResult(r));
});
