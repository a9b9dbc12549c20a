import test from 'ava';
import {
  changedNumbers,
  consecutivePairs,
  exitUnionOffset,
  kvmRunViolations,
  pairName,
  pairReport,
  pinnedHistory,
  repoSuppressions,
  sharedNumberViolations,
} from '../src/index.js';

const history = pinnedHistory();
const pairs = consecutivePairs(history);
const suppressions = repoSuppressions();

for (const pair of pairs) {
  test(`${pairName(pair)}: (c) every old ioctl number and constant value unchanged unless reviewed`, (t) => {
    t.deepEqual(changedNumbers(pair, pairReport(pair, suppressions)), []);
  });
  test(`${pairName(pair)}: (d) kvm_run keeps its size and 256-byte exit union`, (t) => {
    t.truthy(exitUnionOffset(pair.new.spec), 'kvm_run exit union padding[256] not found');
    t.deepEqual(kvmRunViolations(pair), []);
  });
}

for (const [arch, list] of history) {
  test(`${arch}: (e) within one fd class no two ioctls share a number unless the oldest version did`, (t) => {
    t.deepEqual(sharedNumberViolations(list, suppressions.file?.entries ?? []), []);
  });
}

test('(c), (d), (e) detect what they look for', (t) => {
  const pair = pairs[0];
  t.truthy(pair);
  const renumbered = structuredClone(pair.new);
  const [ioctl] = Object.keys(pair.old.spec.ioctls).filter((n) => n in renumbered.spec.ioctls);
  renumbered.spec.ioctls[ioctl].number ^= 1;
  const p2 = { ...pair, new: renumbered };
  t.true(changedNumbers(p2, pairReport(p2, suppressions)).some((v) => v.startsWith(`ioctl ${ioctl}:`)));
  const grown = structuredClone(pair.new);
  grown.spec.structs.kvm_run.size += 8;
  grown.spec.structs.kvm_run.layout.push({ path: 'big', offset: exitUnionOffset(grown.spec)! + 200, size: 8, type: '__u64', count: 8 });
  t.deepEqual(kvmRunViolations({ ...pair, new: grown }).length, 2);
  const shared = structuredClone(pair.new);
  const [a, b] = Object.keys(shared.spec.ioctls).filter((n) => shared.spec.ioctls[n].fd === 'vcpu');
  shared.spec.ioctls[b].number = shared.spec.ioctls[a].number;
  t.is(sharedNumberViolations([pair.old, shared], []).length, 1);
  t.deepEqual(sharedNumberViolations([pair.old, shared], [{ rule: 'ioctl-number-collision', item: b, reason: 'reviewed in test' }, { rule: 'ioctl-number-collision', item: a, reason: 'reviewed in test' }]), []);
});
