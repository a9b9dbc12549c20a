import test from 'ava';
import { loadAbi } from '@kvm-ts/abi';
import { applyVmTag, VM_TAG_CAP } from '../src/extensions/vm-tag.js';

/** Both paths of the co-edit example's tool side, against the +local spec and the pinned one it patches. */
const local = loadAbi('7.2+local', 'x86_64');
const pinned = loadAbi('7.2', 'x86_64');
const TAG = 0x1122_3344_5566_7788n;

function recorder(answer: number) {
  const asked: string[] = [];
  const sent: Uint8Array[] = [];
  return { asked, sent, check: (cap: string) => (asked.push(cap), answer), enable: (arg: Uint8Array) => void sent.push(arg) };
}

test('capability present: the new path sends KVM_ENABLE_CAP with kvmts_tag in the carved-out bytes', (t) => {
  const r = recorder(1);
  const outcome = applyVmTag(local, r.check, r.enable, TAG);
  t.deepEqual(outcome, { path: 'kernel', cap: 0x4b540001 });
  t.deepEqual(r.asked, [VM_TAG_CAP]);
  t.is(r.sent.length, 1);
  const bytes = r.sent[0];
  t.is(bytes.length, local.ioctlSpec('KVM_ENABLE_CAP')!.size, 'the argument size the unchanged ioctl number encodes');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  t.is(view.getUint32(0, true), 0x4b540001, 'cap');
  t.is(local.field('kvm_enable_cap', 'kvmts_tag').offset, 40);
  t.is(view.getBigUint64(40, true), TAG, 'kvmts_tag sits where pad[0..8] was');
  t.true(bytes.subarray(48).every((b) => b === 0), 'the remaining reserved bytes stay zero');
  t.is(local.ioctl('KVM_ENABLE_CAP'), pinned.ioctl('KVM_ENABLE_CAP'), 'the extension did not renumber KVM_ENABLE_CAP');
});

test('capability absent (every real kernel): the old path asks, then leaves the kernel alone', (t) => {
  const r = recorder(0);
  t.deepEqual(applyVmTag(local, r.check, r.enable, TAG), { path: 'userspace', reason: 'kernel-without-capability' });
  t.deepEqual(r.asked, [VM_TAG_CAP]);
  t.deepEqual(r.sent, []);
});

test('a spec without the extension never even asks', (t) => {
  t.false(pinned.hasConstant(VM_TAG_CAP));
  const r = recorder(1);
  t.deepEqual(applyVmTag(pinned, r.check, r.enable, TAG), { path: 'userspace', reason: 'spec-without-extension' });
  t.deepEqual(r.asked, []);
  t.deepEqual(r.sent, []);
});

test('with a zero tag, the new-path bytes are exactly what an old tool sends an old kernel', (t) => {
  const r = recorder(1);
  applyVmTag(local, r.check, r.enable, 0n);
  const old = pinned.codec('kvm_enable_cap').decode(new DataView(r.sent[0].buffer));
  t.is(old.cap, 0x4b540001);
  t.true((old.pad as Uint8Array).every((b) => b === 0), 'with a zero tag an old kernel sees exactly what an old tool sends');
});

test('tags outside 64 bits are refused before anything is sent', (t) => {
  const r = recorder(1);
  t.throws(() => applyVmTag(local, r.check, r.enable, 1n << 64n), { instanceOf: RangeError });
  t.throws(() => applyVmTag(local, r.check, r.enable, -1n), { instanceOf: RangeError });
  t.deepEqual(r.sent, []);
});
