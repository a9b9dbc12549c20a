import test from 'ava';
import fc from 'fast-check';
import { diffSpecs, exitBits } from '@kvm-ts/abi/diff';
import {
  changedStructs,
  consecutivePairs,
  mutate,
  MUTATION_KINDS,
  type Mutation,
  PairModel,
  pairName,
  pairReport,
  pinnedHistory,
  propertyParameters,
  repoSuppressions,
} from '../src/index.js';

const specs = [...pinnedHistory().values()].flat();
const RUNS_PER_KIND = 40;

/**
 * A mutation is drawn as [spec index, choices]: the counterexample fast-check prints stays small and
 * shrinks toward the first spec and the first target, and the thrown message names the mutation.
 */
const choicesArb = fc.tuple(fc.nat({ max: Math.max(0, specs.length - 1) }), fc.array(fc.nat(), { minLength: 4, maxLength: 4 }));
const draw = (kind: (typeof MUTATION_KINDS)[number], [i, seeds]: [number, number[]]) => {
  let next = 0;
  return mutate(specs[i].spec, kind, (n) => seeds[next++ % seeds.length] % n);
};

const counts = { generated: 0, flagged: 0, falseNegatives: 0 };

for (const kind of MUTATION_KINDS) {
  test.serial(`mutation ${kind}: abi diff flags it with the right bits`, (t) => {
    t.true(specs.length > 0, 'no pinned specs to mutate');
    fc.assert(
      fc.property(choicesArb, (choices) => {
        const m = draw(kind, choices);
        if (!m) return true;
        const source = `${specs[choices[0]].id}/${specs[choices[0]].arch}`;
        counts.generated++;
        const got = exitBits(diffSpecs(specs[choices[0]].spec, m.spec));
        if (got !== m.expectedExit) {
          counts.falseNegatives++;
          throw new Error(`${source}: ${describe(m)} -> abi diff exit ${got}, expected ${m.expectedExit}`);
        }
        counts.flagged++;
        return true;
      }),
      propertyParameters(RUNS_PER_KIND),
    );
    t.pass();
  });
}

const describe = (m: Mutation) => `${m.kind}: ${m.what}`;

test.serial('mutation totals: 0 false negatives', (t) => {
  t.log(`mutations: ${counts.generated} generated, ${counts.flagged} flagged with the right bits, ${counts.falseNegatives} false negatives`);
  t.true(counts.generated >= MUTATION_KINDS.length * RUNS_PER_KIND * 0.9, 'most draws should find a target');
  t.is(counts.falseNegatives, 0);
});

test('real history: compatible extensions are not flagged breaking (0 false positives)', (t) => {
  const suppressions = repoSuppressions();
  let compatible = 0;
  let reviewed = 0;
  let structsChanged = 0;
  const falsePositives: string[] = [];
  for (const pair of consecutivePairs()) {
    const report = pairReport(pair, suppressions);
    compatible += report.counts.compatible;
    reviewed += report.counts.suppressed;
    for (const c of report.changes) if (c.breaks.length > 0) falsePositives.push(`${pairName(pair)}: ${c.rule} ${c.item}`);
    // Independent evidence: a struct the byte-level oracle finds compatible must carry no BINARY change.
    for (const sp of changedStructs(pair)) {
      structsChanged++;
      const model = new PairModel(sp);
      const ones = new Uint8Array(Math.max(sp.old.size, sp.new.size)).fill(0xff);
      const oracleOk = model.oldToolOnNewKernel(ones).length === 0 && model.newToolOnOldKernel(ones).length === 0;
      const flagged = report.changes.filter((c) => c.breaks.includes('BINARY') && (c.item === sp.name || c.item.startsWith(`${sp.name}.`)));
      if (oracleOk && flagged.length > 0) falsePositives.push(`${pairName(pair)}: struct ${sp.name} is byte-compatible but flagged ${flagged.map((c) => c.rule).join(', ')}`);
    }
  }
  t.log(`real history: ${compatible} compatible changes, ${structsChanged} changed structs, ${reviewed} reviewed (suppressed) breaks, ${falsePositives.length} false positives`);
  t.deepEqual(falsePositives, []);
  t.true(compatible > 0);
});
