import test from 'ava';
import { AbiInputError, buildReport, parseSuppressions, SuppressionSet } from '../src/diff/index.js';
import type { Spec } from '../src/spec/types.js';
import { clone, fixtureSpec } from './diff-fixture.js';

const side = (spec: Spec, id: string) => ({ spec, label: { id, arch: spec.arch, kernel: spec.kernel, source: id } });
const removedConstant = (): Spec => {
  const s = clone(fixtureSpec());
  delete s.constants.KVM_X86_DISABLE_VALID_EXITS;
  s.constants.KVM_MEM_READONLY = 4;
  return s;
};
const file = (entries: unknown[]) => parseSuppressions(JSON.stringify({ suppressions: entries }), 'suppressions.json');

test('a matching entry suppresses exactly its change and clears its exit bit', (t) => {
  const set = new SuppressionSet(file([{ rule: 'constant-removed', item: 'KVM_X86_DISABLE_VALID_EXITS', reason: 'folded into KVM_X86_DISABLE_EXITS_* in 7.0; value unchanged' }]));
  const r = buildReport(side(fixtureSpec(), '6.12'), side(removedConstant(), '7.2'), set);
  t.is(r.exit, 8, 'SOURCE bit cleared, BINARY bit of the unsuppressed change kept');
  t.deepEqual(r.suppressed.map((s) => s.change.item), ['KVM_X86_DISABLE_VALID_EXITS']);
  t.deepEqual(r.changes.map((c) => c.item), ['KVM_MEM_READONLY']);
  t.deepEqual(set.stale(), []);
});

test('an entry in scope that matches nothing is stale; one out of scope is not', (t) => {
  const set = new SuppressionSet(file([
    { rule: 'constant-removed', item: 'KVM_GONE', reason: 'was never in a release header', old: '6.12', new: '7.2' },
    { rule: 'constant-removed', item: 'KVM_OTHER', reason: 'only between 5.10 and 6.1 here', old: '5.10', new: '6.1' },
    { rule: 'constant-removed', item: 'KVM_ARM_ONLY', reason: 'arm64 header reorganisation', arch: 'arm64' },
  ]));
  buildReport(side(fixtureSpec(), '6.12'), side(removedConstant(), '7.2'), set);
  t.deepEqual(set.stale().map((s) => s.item), ['KVM_GONE']);
  t.deepEqual(set.unused().map((s) => s.item), ['KVM_GONE', 'KVM_OTHER', 'KVM_ARM_ONLY']);
});

test('an entry for a spec corrected in place (old == new) is never stale', (t) => {
  const set = new SuppressionSet(file([{ rule: 'member-retyped', item: 'kvm_regs.rax', reason: 'generator fix: the 7.2 spec had the wrong type', old: '7.2', new: '7.2' }]));
  buildReport(side(fixtureSpec(), '7.2'), side(fixtureSpec(), '7.2'), set);
  t.deepEqual(set.stale(), []);
});

test('scope by series and arch, and "*" globs', (t) => {
  const entry = { rule: 'constant-removed', item: 'KVM_X86_*', reason: 'x86 disable-exit masks were folded', new: '7.2', arch: 'x86_64' };
  const r1 = buildReport(side(fixtureSpec(), '6.12'), side(removedConstant(), '7.2'), new SuppressionSet(file([entry])));
  t.is(r1.suppressed.length, 1);
  const r2 = buildReport(side(fixtureSpec(), '6.1'), side(removedConstant(), '6.12'), new SuppressionSet(file([entry])));
  t.is(r2.suppressed.length, 0, 'new: "7.2" does not apply to 6.1 -> 6.12');
});

test('malformed suppression files fail with one line naming the problem', (t) => {
  const bad = (text: string) => t.throws(() => parseSuppressions(text, 's.json'), { instanceOf: AbiInputError });
  t.regex(bad('{').message, /^s\.json: malformed suppression file: top level: not JSON/);
  t.regex(bad('[]').message, /expected \{"suppressions"/);
  t.regex(bad(JSON.stringify({ suppressions: [{ rule: 'no-such-rule', item: 'X', reason: 'long enough reason' }] })).message, /suppressions\[0\]\.rule: not a known rule id \(no-such-rule\)/);
  t.regex(bad(JSON.stringify({ suppressions: [{ rule: 'constant-removed', item: 'X', reason: 'short' }] })).message, /reason: a reviewed reason/);
  t.regex(bad(JSON.stringify({ suppressions: [{ rule: 'constant-removed', item: '', reason: 'long enough reason' }] })).message, /item: not a non-empty string/);
  t.regex(bad(JSON.stringify({ suppressions: [{ rule: 'constant-removed', item: 'X', reason: 'long enough reason', typo: 1 }] })).message, /typo: unknown key/);
  for (const e of [bad('{')]) t.false(e.message.includes('\n'));
});
