import test, { type ExecutionContext } from 'ava';
import type { Suppressed } from '@kvm-ts/abi/diff';
import fc from 'fast-check';
import { changedStructs, consecutivePairs, pairName, pairReport, PairModel, propertyParameters, repoSuppressions } from '../src/index.js';

/**
 * (a) old tool on a new kernel and (b) new tool on an old kernel, byte for byte, for every struct that
 * changed between consecutive pinned versions on every arch both carry. A struct whose change the
 * diff reports as a reviewed (suppressed) binary break is skipped with its reason; any other
 * violation is a real incompatibility.
 */
const pairs = consecutivePairs();

/** A reviewed (suppressed) binary break is a known incompatibility: say so in the output instead of passing silently. */
function notChecked(t: ExecutionContext, reviewed: Suppressed): void {
  t.log(`not checked: reviewed break ${reviewed.change.rule} ${reviewed.change.item}: ${reviewed.by.reason}`);
  t.pass();
}
const suppressions = repoSuppressions();

test('the pinned history has pairs to check', (t) => {
  t.true(pairs.length > 0, 'no two consecutive pinned specs found under packages/abi/spec');
});

for (const pair of pairs) {
  const report = pairReport(pair, suppressions);
  for (const sp of changedStructs(pair)) {
    const reviewed = report.suppressed.find((s) => s.change.breaks.includes('BINARY') && (s.change.item === sp.name || s.change.item.startsWith(`${sp.name}.`)));
    const model = new PairModel(sp);
    const bytes = fc.uint8Array({ minLength: Math.max(sp.old.size, sp.new.size), maxLength: Math.max(sp.old.size, sp.new.size) });
    const check = (violations: (b: Uint8Array) => string[]) => (b: Uint8Array) => {
      const v = violations(b);
      if (v.length > 0) throw new Error(v.slice(0, 5).join('; '));
    };
    test(`${pairName(pair)} struct ${sp.name}: (a) old tool on new kernel`, (t) => {
      if (reviewed) return notChecked(t, reviewed);
      fc.assert(fc.property(bytes, check((b) => model.oldToolOnNewKernel(b))), propertyParameters(60));
      t.pass();
    });
    test(`${pairName(pair)} struct ${sp.name}: (b) new tool on old kernel`, (t) => {
      if (reviewed) return notChecked(t, reviewed);
      fc.assert(fc.property(bytes, check((b) => model.newToolOnOldKernel(b))), propertyParameters(60));
      t.pass();
    });
  }
}
