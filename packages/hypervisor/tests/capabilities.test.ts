import test from 'ava';
import { loadAbi } from '@kvm-ts/abi';
import { CapabilityCheck, kernelAsMask, OPTIONAL_CAPS, probeCapabilities, REQUIRED_CAPS, type CapabilityMask } from '../src/kvm/capabilities.js';

/** A /dev/kvm that answers every capability it is asked about with `present` (by number). */
function fakeSource(abiId: string, mask: CapabilityMask = {}, present: (cap: number) => number = () => 1) {
  const abi = loadAbi(abiId, 'x86_64');
  const asked: number[] = [];
  const caps = new CapabilityCheck(abi, (n) => (asked.push(n), present(n)), mask);
  return { source: { path: '/dev/fake-kvm', abi, caps }, asked, abi };
}

test('a name the spec does not define is absent without asking the kernel', (t) => {
  const { source, asked } = fakeSource('7.2');
  t.deepEqual(source.caps.answer('KVM_CAP_KVMTS_VM_TAG'), { value: 0, absent: 'not-in-spec' });
  t.deepEqual(asked, []);
});

test('--without-cap and --kernel-caps-as answer absent before the kernel is asked', (t) => {
  const old = loadAbi('5.10', 'x86_64');
  const newOnly = Object.keys(loadAbi('7.2', 'x86_64').spec.constants).find((c) => c.startsWith('KVM_CAP_') && !old.hasConstant(c))!;
  t.truthy(newOnly, 'some capability arrived after 5.10');
  const { source, asked } = fakeSource('7.2', { kernelAs: kernelAsMask(old), without: ['KVM_CAP_IRQFD'] });
  t.deepEqual(source.caps.answer(newOnly), { value: 0, absent: 'kernel-as' });
  t.deepEqual(source.caps.answer('KVM_CAP_IRQFD'), { value: 0, absent: 'without-cap' });
  t.deepEqual(asked, []);
  t.deepEqual(source.caps.answer('KVM_CAP_IOEVENTFD'), { value: 1 });
  t.is(asked.length, 1);
});

test('the kernel saying 0 is absence too', (t) => {
  const { source } = fakeSource('7.2', {}, () => 0);
  t.deepEqual(source.caps.answer('KVM_CAP_IRQFD'), { value: 0, absent: 'kernel' });
});

test('every optional capability absent: each fallback listed once, NR_VCPUS only when MAX_VCPUS is gone too', (t) => {
  const withAll = probeCapabilities(fakeSource('7.2+local').source);
  t.deepEqual(withAll.fallbacks, []);
  t.true(withAll.ioeventfd && withAll.irqfd && withAll.immediateExit && withAll.tscDeadline);

  const all = Object.keys(OPTIONAL_CAPS);
  const caps = probeCapabilities(fakeSource('7.2+local', { without: all }).source);
  t.deepEqual(caps.fallbacks.map((f) => f.capability), all);
  t.is(caps.maxVcpus, 4, 'api.rst: 4 without either capability');
  t.false(caps.ioeventfd || caps.irqfd || caps.immediateExit || caps.tscDeadline);
  t.like(caps.fallbacks.find((f) => f.capability === 'KVM_CAP_IRQFD'), { fallback: 'KVM_IRQ_LINE from the VMM' });

  const onlyMax = probeCapabilities(fakeSource('7.2', { without: ['KVM_CAP_MAX_VCPUS'] }, () => 8).source);
  t.deepEqual(onlyMax.fallbacks.map((f) => f.capability), ['KVM_CAP_MAX_VCPUS']);
  t.is(onlyMax.maxVcpus, 8, 'KVM_CAP_NR_VCPUS is the limit');
});

test('the co-edit capability is a fallback only for a spec that has it', (t) => {
  const tagAbsent = { without: ['KVM_CAP_KVMTS_VM_TAG'] };
  t.false(probeCapabilities(fakeSource('7.2').source).fallbacks.some((f) => f.capability === 'KVM_CAP_KVMTS_VM_TAG'));
  t.true(probeCapabilities(fakeSource('7.2+local', tagAbsent).source).fallbacks.some((f) => f.capability === 'KVM_CAP_KVMTS_VM_TAG'));
});

test('a required capability missing, really or masked: one line naming each, why, and what needs it', (t) => {
  const err = t.throws(() => probeCapabilities(fakeSource('7.2', { without: ['KVM_CAP_IRQCHIP'] }, (n) => (n === loadAbi('7.2').constant('KVM_CAP_HLT') ? 0 : 1)).source));
  t.is(
    err?.message,
    'required capability missing: KVM_CAP_IRQCHIP is masked (--without-cap) (kvm-ts needs it for in-kernel PIC, IOAPIC and LAPICs); ' +
      '/dev/fake-kvm lacks KVM_CAP_HLT (kvm-ts needs it for HLT handled in the kernel)',
  );
  t.notRegex(err?.message ?? '', /\n/);
});

test('every required capability is in the oldest pinned spec: the VMM can run on all of them', (t) => {
  const oldest = loadAbi('5.10', 'x86_64');
  for (const cap of Object.keys(REQUIRED_CAPS)) t.true(oldest.hasConstant(cap), cap);
});
