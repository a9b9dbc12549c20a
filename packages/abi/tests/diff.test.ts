import test from 'ava';
import { diffSpecs, exitBits, isSpecPath } from '../src/diff/index.js';
import { listSpecs } from '../src/index.js';
import { compareSpecIds } from '../src/spec/ids.js';
import type { Spec } from '../src/spec/types.js';
import { clone, fixtureSpec } from './diff-fixture.js';

const after = (mutate: (s: Spec) => void): Spec => {
  const s = clone(fixtureSpec());
  mutate(s);
  return s;
};
const rules = (old: Spec, neu: Spec) => diffSpecs(old, neu).map((c) => `${c.rule} ${c.item}`);
const base = fixtureSpec();

test('identical specs: no change, exit 0', (t) => {
  t.deepEqual(diffSpecs(base, fixtureSpec()), []);
  t.is(exitBits(diffSpecs(base, fixtureSpec())), 0);
});

test('ioctl added is compatible; removed breaks BINARY and SOURCE', (t) => {
  const added = after((s) => { s.ioctls.KVM_GET_SREGS = { number: 0x8138ae83, dir: 'read', size: 312, type: 'struct kvm_sregs', fd: 'vcpu' }; });
  t.deepEqual(diffSpecs(base, added).map((c) => [c.rule, c.item, c.breaks]), [['ioctl-added', 'KVM_GET_SREGS', []]]);
  const removed = after((s) => { delete s.ioctls.KVM_SET_CPUID2; });
  t.deepEqual(diffSpecs(base, removed).map((c) => [c.rule, c.breaks]), [['ioctl-removed', ['BINARY', 'SOURCE']]]);
  t.is(exitBits(diffSpecs(base, removed)), 12);
});

test('ioctl renumbered, direction, size, fd and argument type changes', (t) => {
  t.deepEqual(rules(base, after((s) => { s.ioctls.KVM_RUN.number = 0xae81; })), ['ioctl-renumbered KVM_RUN']);
  t.deepEqual(rules(base, after((s) => { s.ioctls.KVM_GET_REGS.dir = 'readwrite'; s.ioctls.KVM_GET_REGS.number = 0xc090ae81; })), ['ioctl-direction-changed KVM_GET_REGS']);
  t.deepEqual(rules(base, after((s) => { s.ioctls.KVM_ENABLE_CAP.size = 112; s.ioctls.KVM_ENABLE_CAP.number = 0x4070aea3; })), ['ioctl-size-changed KVM_ENABLE_CAP']);
  t.deepEqual(rules(base, after((s) => { s.ioctls.KVM_RUN.fd = 'vm'; })), ['ioctl-fd-changed KVM_RUN']);
  const retyped = diffSpecs(base, after((s) => { s.ioctls.KVM_GET_REGS.type = 'struct kvm_regs_v2'; }));
  t.deepEqual(retyped.map((c) => [c.rule, c.breaks]), [['ioctl-arg-type-changed', ['SOURCE']]]);
  t.is(exitBits(retyped), 4);
});

test('a number shared within one fd class is flagged only when new', (t) => {
  const shared = after((s) => { s.ioctls.KVM_NEW = { ...s.ioctls.KVM_RUN }; });
  t.deepEqual(rules(base, shared), ['ioctl-added KVM_NEW', 'ioctl-number-collision KVM_NEW']);
  const again = after((s) => { s.ioctls.KVM_NEW = { ...s.ioctls.KVM_RUN }; s.ioctls.KVM_OTHER = { ...s.ioctls.KVM_GET_API_VERSION }; });
  t.deepEqual(rules(shared, again), ['ioctl-added KVM_OTHER', 'ioctl-number-collision KVM_OTHER'], 'the grandfathered pair is not reported again');
  const otherFd = after((s) => { s.ioctls.KVM_NEW = { ...s.ioctls.KVM_RUN, fd: 'vm' }; });
  t.deepEqual(rules(base, otherFd), ['ioctl-added KVM_NEW'], 'same number on another fd class is no collision');
});

test('constants: added, enum value added or reused, removed, changed, limit grown', (t) => {
  const verdicts = (neu: Spec) => diffSpecs(base, neu).map((c) => [c.rule, c.item, c.breaks.join('+')]);
  t.deepEqual(verdicts(after((s) => { s.constants.KVM_DIRTY_LOG_PAGE_OFFSET = 64; })), [['constant-added', 'KVM_DIRTY_LOG_PAGE_OFFSET', '']]);
  t.deepEqual(verdicts(after((s) => { s.constants.KVM_EXIT_TDX = 40; })), [['enum-value-added', 'KVM_EXIT_TDX', '']]);
  t.deepEqual(verdicts(after((s) => { s.constants.KVM_EXIT_MEMORY_FAULT = 2; })), [['family-value-reused', 'KVM_EXIT_MEMORY_FAULT', 'BINARY']],
    'KVM_EXIT_* is an explicit numbered family: a multi-word member reusing KVM_EXIT_IO\'s value is caught');
  t.deepEqual(verdicts(after((s) => { s.constants.KVM_EXIT_IO_IN = 0; })), [['constant-added', 'KVM_EXIT_IO_IN', '']],
    'a name extending a member (KVM_EXIT_IO_IN: kvm_run.io.direction) is a sub-value, no family member');
  const devTypes = after((s) => Object.assign(s.constants, { KVM_DEV_TYPE_XICS: 3, KVM_DEV_TYPE_VFIO: 4, KVM_DEV_TYPE_MAX: 5 }));
  const riscvAia = clone(devTypes);
  Object.assign(riscvAia.constants, { KVM_DEV_TYPE_FLIC: 5, KVM_DEV_TYPE_MAX: 6 });
  t.deepEqual(diffSpecs(devTypes, riscvAia).map((c) => `${c.rule} ${c.item}`), ['enum-value-added KVM_DEV_TYPE_FLIC', 'limit-grown KVM_DEV_TYPE_MAX'],
    'a limit is no family member, so a new member taking the old sentinel value is no reuse (as KVM_DEV_TYPE_RISCV_AIA took 11 from KVM_DEV_TYPE_MAX, 6.1 -> 6.12)');
  t.deepEqual(verdicts(after((s) => { s.constants.KVM_EXIT_TDX = 5; })), [['enum-value-reused', 'KVM_EXIT_TDX', 'BINARY']]);
  t.deepEqual(verdicts(after((s) => { delete s.constants.KVM_X86_DISABLE_VALID_EXITS; })), [['constant-removed', 'KVM_X86_DISABLE_VALID_EXITS', 'SOURCE']]);
  t.deepEqual(verdicts(after((s) => { s.constants.KVM_CAP_HLT = 2; })), [['constant-value-changed', 'KVM_CAP_HLT', 'BINARY']]);
  t.deepEqual(verdicts(after((s) => { s.constants.KVM_MAX_CPUID_ENTRIES = 256; })), [['limit-grown', 'KVM_MAX_CPUID_ENTRIES', '']]);
  t.deepEqual(verdicts(after((s) => { s.constants.KVM_MAX_CPUID_ENTRIES = 40; })), [['constant-value-changed', 'KVM_MAX_CPUID_ENTRIES', 'BINARY']], 'a shrinking limit breaks');
  t.deepEqual(verdicts(after((s) => { s.constants.KVM_CAP_NR_VCPUS = 10; })), [['constant-value-changed', 'KVM_CAP_NR_VCPUS', 'BINARY']], 'a capability number is no limit');
  t.deepEqual(verdicts(after((s) => { s.constants.KVM_BIG = '18446744073709551614'; })), [['constant-value-changed', 'KVM_BIG', 'BINARY']], 'decimal-string values compare exactly');
});

test('struct added, removed, renamed', (t) => {
  t.deepEqual(rules(base, after((s) => { s.structs.kvm_new = { size: 8, align: 8, kind: 'struct', layout: [{ path: 'x', offset: 0, size: 8, type: '__u64' }] }; })), ['struct-added kvm_new']);
  t.deepEqual(rules(base, after((s) => { delete s.structs.kvm_xen_flags; })), ['struct-removed kvm_xen_flags']);
  t.deepEqual(rules(base, after((s) => { s.structs.kvm_xen_flags2 = s.structs.kvm_xen_flags; delete s.structs.kvm_xen_flags; })), ['struct-renamed kvm_xen_flags']);
});

test('a member carved out of a reserved array, size unchanged, is compatible (KVM_CAP_* args style)', (t) => {
  const neu = after((s) => {
    const layout = s.structs.kvm_enable_cap.layout;
    layout.splice(3, 1, { path: 'kvmts_flags', offset: 40, size: 4, type: '__u32' }, { path: 'pad', offset: 44, size: 1, type: '__u8', count: 60 });
  });
  const changes = diffSpecs(base, neu);
  t.deepEqual(changes.map((c) => [c.rule, c.item, c.breaks]), [
    ['member-from-padding', 'kvm_enable_cap.kvmts_flags', []],
    ['reserved-resized', 'kvm_enable_cap.pad', []],
  ]);
  t.is(exitBits(changes), 0);
});

test('a member carved out of a hole between members is compatible (system_event.ndata, 5.10 -> 6.1)', (t) => {
  const old = after((s) => { s.structs.kvm_cpuid2.layout.splice(1, 1); });
  t.deepEqual(rules(old, base), ['member-from-padding kvm_cpuid2.padding']);
});

test('a union alternative inside the kvm_run exit union is compatible; one that grows the union is not', (t) => {
  const within = after((s) => { s.structs.kvm_run.layout.push({ path: 'memory_fault.flags', offset: 32, size: 8, type: '__u64' }, { path: 'memory_fault.gpa', offset: 40, size: 8, type: '__u64' }); });
  t.deepEqual(rules(base, within), ['union-member-added kvm_run.memory_fault.flags', 'union-member-added kvm_run.memory_fault.gpa']);
  t.is(exitBits(diffSpecs(base, within)), 0);
  const grows = after((s) => {
    const run = s.structs.kvm_run;
    run.layout.push({ path: 'big.data', offset: 32, size: 1, type: '__u8', count: 264 });
    run.layout.find((l) => l.path === 'kvm_valid_regs')!.offset = 296;
    run.size = 304;
  });
  t.deepEqual(rules(base, grows), ['mmap-struct-grown kvm_run', 'union-member-added kvm_run.big.data', 'member-moved kvm_run.kvm_valid_regs']);
  t.is(exitBits(diffSpecs(base, grows)), 8);
});

test('a member appended to a struct whose size an ioctl encodes breaks BINARY; to an mmap\'d or unencoded one too', (t) => {
  const encoded = after((s) => {
    s.structs.kvm_userspace_memory_region.layout.push({ path: 'guest_memfd', offset: 32, size: 4, type: '__u32' });
    s.structs.kvm_userspace_memory_region.size = 40;
  });
  t.deepEqual(diffSpecs(base, encoded).map((c) => [c.rule, c.breaks.join('+')]), [['struct-size-changed', 'BINARY'], ['member-appended', '']]);
  const free = after((s) => {
    s.structs.kvm_run.layout.push({ path: 'kvm_dirty_regs', offset: 296, size: 8, type: '__u64' });
    s.structs.kvm_run.size = 304;
  });
  t.deepEqual(diffSpecs(base, free).map((c) => [c.rule, c.breaks.join('+')]), [['mmap-struct-grown', 'BINARY'], ['member-appended', '']]);
  const unencoded = after((s) => {
    s.structs.kvm_xen_flags.layout.push({ path: 'extra', offset: 4, size: 4, type: '__u32' });
    s.structs.kvm_xen_flags.size = 8;
  });
  t.deepEqual(diffSpecs(base, unencoded).map((c) => [c.rule, c.breaks.join('+')]), [['struct-grown', 'BINARY'], ['member-appended', '']],
    'no ioctl encodes its size, but the kernel may copy sizeof it: breaking until reviewed');
  const element = after((s) => {
    s.structs.kvm_cpuid_entry2.layout.push({ path: 'extra', offset: 40, size: 4, type: '__u32' });
    s.structs.kvm_cpuid_entry2.size = 44;
    s.structs.kvm_cpuid2.layout[2].size = 44;
  });
  t.deepEqual(rules(base, element), ['struct-size-changed kvm_cpuid_entry2', 'flex-array-element-changed kvm_cpuid2.entries', 'member-appended kvm_cpuid_entry2.extra'],
    'an array element of another struct (kvm_cpuid2.entries[]) has its size encoded there');
});

test('member removed, renamed, retyped, moved, resized, shrunk, bitfield moved', (t) => {
  const regs = (mutate: (l: Spec['structs'][string]['layout']) => void) => after((s) => mutate(s.structs.kvm_regs.layout));
  const v = (neu: Spec) => diffSpecs(base, neu).map((c) => `${c.rule} ${c.item} ${c.breaks.join('+')}`);
  t.deepEqual(v(regs((l) => { l.splice(0, 1); })), ['member-removed kvm_regs.rax BINARY+SOURCE']);
  t.deepEqual(v(regs((l) => { l[0].path = 'eax'; })), ['member-renamed kvm_regs.rax SOURCE']);
  t.deepEqual(v(regs((l) => { l[0].type = '__s64'; })), ['member-retyped kvm_regs.rax BINARY']);
  t.deepEqual(v(regs((l) => { l[0].type = '__le64'; })), ['member-retyped kvm_regs.rax BINARY'], 'an unknown typedef is a different type');
  t.deepEqual(v(after((s) => { s.structs.kvm_cpuid_entry2.layout[0].type = '__le32'; })), ['member-type-spelling-changed kvm_cpuid_entry2.function '],
    'a typedef resolving to the same C type is only spelled differently');
  t.deepEqual(v(regs((l) => { [l[0].offset, l[1].offset] = [8, 0]; })), ['member-moved kvm_regs.rax BINARY', 'member-moved kvm_regs.rbx BINARY']);
  t.deepEqual(v(after((s) => { s.structs.kvm_userspace_memory_region.layout[1].size = 2; s.structs.kvm_userspace_memory_region.layout[1].type = '__u16'; })),
    ['member-resized kvm_userspace_memory_region.flags BINARY', 'member-retyped kvm_userspace_memory_region.flags BINARY']);
  t.deepEqual(v(after((s) => { s.structs.kvm_enable_cap.layout[2].count = 3; })), ['member-array-shrunk kvm_enable_cap.args BINARY']);
  t.deepEqual(v(after((s) => { s.structs.kvm_enable_cap.layout[2].dims = [2, 2]; })), ['member-retyped kvm_enable_cap.args BINARY'],
    'an array reshaped to the same element count (__u64[4] -> __u64[2][2]) moves compiled element offsets');
  t.deepEqual(v(after((s) => { s.structs.kvm_xen_flags.layout[1].bitOffset = 2; })), ['member-bitfield-changed kvm_xen_flags.shared BINARY']);
});

test('a new bitfield in unused bits of a storage unit is carved from padding', (t) => {
  const neu = after((s) => { s.structs.kvm_xen_flags.layout.push({ path: 'runstate', offset: 0, size: 4, type: '__u32', bitOffset: 2, bitWidth: 1 }); });
  t.deepEqual(rules(base, neu), ['member-from-padding kvm_xen_flags.runstate']);
});

test('a member written over bytes an old member used breaks BINARY', (t) => {
  const neu = after((s) => {
    const l = s.structs.kvm_regs.layout;
    l.splice(0, 1, { path: 'eax', offset: 0, size: 4, type: '__u32' }, { path: 'hi', offset: 4, size: 4, type: '__u32' });
  });
  t.deepEqual(rules(base, neu), ['member-added-in-place kvm_regs.eax', 'member-added-in-place kvm_regs.hi', 'member-removed kvm_regs.rax']);
});

test('flexible arrays: added at the end, made fixed, element changed', (t) => {
  const add = after((s) => { s.structs.kvm_enable_cap.layout.push({ path: 'data', offset: 104, size: 1, type: '__u8', count: 0 }); });
  t.deepEqual(diffSpecs(base, add).map((c) => [c.rule, c.breaks.length]), [['flex-array-added', 0]]);
  const fixed = after((s) => { const e = s.structs.kvm_cpuid2.layout[2]; e.count = 1; e.size = 40; s.structs.kvm_cpuid2.size = 48; });
  t.true(rules(base, fixed).includes('flex-array-changed kvm_cpuid2.entries'));
  const elem = after((s) => { s.structs.kvm_cpuid2.layout[2].type = 'struct kvm_cpuid_entry'; s.structs.kvm_cpuid_entry = { ...s.structs.kvm_cpuid_entry2, size: 24 }; });
  t.true(rules(base, elem).includes('flex-array-element-changed kvm_cpuid2.entries'));
});

test('typedefs, alignment and kind', (t) => {
  t.deepEqual(rules(base, after((s) => { s.typedefs.__u32 = 'unsigned long'; })), ['typedef-changed __u32']);
  t.deepEqual(rules(base, after((s) => { delete s.typedefs.__s32; })), ['typedef-removed __s32']);
  t.deepEqual(rules(base, after((s) => { s.structs.kvm_regs.align = 16; })), ['struct-alignment-only kvm_regs'], 'nothing moved: compatible');
  t.deepEqual(rules(base, after((s) => { s.structs.kvm_regs.align = 32; s.structs.kvm_regs.size = 160; })), ['struct-alignment-changed kvm_regs', 'struct-size-changed kvm_regs']);
  t.deepEqual(rules(base, after((s) => { s.structs.kvm_xen_flags.kind = 'union'; })), ['struct-kind-changed kvm_xen_flags']);
});

test('exit bits combine: 4 source, 8 binary, 12 both', (t) => {
  t.is(exitBits(diffSpecs(base, after((s) => { delete s.constants.KVM_MEM_READONLY; }))), 4);
  t.is(exitBits(diffSpecs(base, after((s) => { s.constants.KVM_MEM_READONLY = 4; }))), 8);
  t.is(exitBits(diffSpecs(base, after((s) => { s.constants.KVM_MEM_READONLY = 4; delete s.constants.KVM_CAP_HLT; }))), 12);
});

test('spec ids: the diff sees every spec the runtime lists, in the same order', (t) => {
  const listed = listSpecs();
  t.true(listed.length > 0);
  for (const { id, arch } of listed) t.deepEqual(isSpecPath(`${id}/${arch}.json`), { id, arch });
  t.deepEqual(isSpecPath('7.2+exp/arm64.json'), { id: '7.2+exp', arch: 'arm64' });
  t.is(isSpecPath('7.2+/arm64.json'), undefined);
  t.is(isSpecPath('latest/x86_64.json'), undefined);
  t.is(isSpecPath('7.2/mips.json'), undefined);
  t.deepEqual(['7.2+local', '6.12', '7.2', '5.10', '6.1', '7.2+exp'].sort(compareSpecIds), ['5.10', '6.1', '6.12', '7.2', '7.2+exp', '7.2+local']);
});
