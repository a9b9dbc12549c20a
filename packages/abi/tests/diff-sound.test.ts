/**
 * Issue #22 (and #17.4): single realistic edits of the real pinned 6.1 x86_64 headers, each
 * judged from what it does to a compiled tool or its source.
 */
import type { ExecutionContext } from 'ava';
import { diffSpecs, exitBits } from '../src/diff/index.js';
import { type HeaderEdit, headersMissing, specOfEditedHeaders } from './helpers/edited-headers.js';
import { testNeeding } from './helpers/prerequisite.js';

const missing = headersMissing('6.1', 'x86_64');
const base = missing ? undefined : specOfEditedHeaders('6.1', 'x86_64', []);
const K = 'linux/kvm.h';
const A = 'asm/kvm.h';

/** The changes an edit makes, as "rule item" plus the exit bits. */
function judge(edits: HeaderEdit[]): { rules: string[]; exit: number } {
  const changes = diffSpecs(base!, specOfEditedHeaders('6.1', 'x86_64', edits));
  return { rules: changes.map((c) => `${c.rule} ${c.item}`), exit: exitBits(changes) };
}

function expect(t: ExecutionContext, edits: HeaderEdit[], rules: string[], exit: number): void {
  const r = judge(edits);
  t.deepEqual(r.rules, rules);
  t.is(r.exit, exit);
}

const after = (file: string, anchor: string, added: string): HeaderEdit => ({ file, from: anchor, to: `${anchor}\n${added}` });

testNeeding(missing, 'a new name reusing a numbered family\'s value is BINARY (KVM_EXIT_*, KVM_CAP_*, KVM_IRQ_ROUTING_*)', (t) => {
  expect(t, [after(K, '#define KVM_EXIT_NOTIFY           37', '#define KVM_EXIT_MEMORY_FAULT 37')], ['family-value-reused KVM_EXIT_MEMORY_FAULT'], 8);
  expect(t, [after(K, '#define KVM_CAP_DIRTY_LOG_RING_ACQ_REL 223', '#define KVM_CAP_X86_NEW_FEATURE 223')], ['family-value-reused KVM_CAP_X86_NEW_FEATURE'], 8);
  expect(t, [after(K, '#define KVM_IRQ_ROUTING_XEN_EVTCHN 5', '#define KVM_IRQ_ROUTING_VFIO 5')], ['family-value-reused KVM_IRQ_ROUTING_VFIO'], 8);
});

testNeeding(missing, 'a retired capability\'s number given to a new name is BINARY, not only SOURCE', (t) => {
  expect(t, [{ file: K, from: '#define KVM_CAP_MANUAL_DIRTY_LOG_PROTECT 166', to: '#define KVM_CAP_VM_FOO_BAR 166' }],
    ['constant-removed KVM_CAP_MANUAL_DIRTY_LOG_PROTECT', 'family-value-reused KVM_CAP_VM_FOO_BAR'], 12);
});

testNeeding(missing, 'an alias (#define A B) is no number collision', (t) => {
  expect(t, [after(K, '#define KVM_CAP_DIRTY_LOG_RING_ACQ_REL 223', '#define KVM_CAP_DIRTY_LOG_RING_ACQ_REL_ALIAS KVM_CAP_DIRTY_LOG_RING_ACQ_REL')],
    ['constant-added KVM_CAP_DIRTY_LOG_RING_ACQ_REL_ALIAS'], 0);
  expect(t, [after(K, '#define KVM_CREATE_VCPU           _IO(KVMIO,   0x41)', '#define KVM_SET_USER_MEMORY_REGION1 KVM_SET_USER_MEMORY_REGION')],
    ['ioctl-added KVM_SET_USER_MEMORY_REGION1'], 0);
});

testNeeding(missing, 'a new ioctl colliding on any fd class an existing ioctl is valid on is caught', (t) => {
  expect(t, [after(K, '#define KVM_SET_ONE_REG\t\t  _IOW(KVMIO,  0xac, struct kvm_one_reg)', '#define KVM_VCPU_FROB _IOW(KVMIO, 0xe3, struct kvm_device_attr)')],
    ['ioctl-added KVM_VCPU_FROB', 'ioctl-number-collision KVM_VCPU_FROB'], 8);
  expect(t, [after(K, '#define KVM_CREATE_VCPU           _IO(KVMIO,   0x41)', '#define KVM_VM_FROB _IO(KVMIO, 0x03)')],
    ['ioctl-added KVM_VM_FROB', 'ioctl-number-collision KVM_VM_FROB'], 8);
});

testNeeding(missing, 'an ioctl argument swapped for another struct of the same size is BINARY', (t) => {
  expect(t, [{ file: K, from: '_IOW(KVMIO,  0xac, struct kvm_one_reg)', to: '_IOW(KVMIO,  0xac, struct kvm_enc_region)' }],
    ['ioctl-arg-type-swapped KVM_SET_ONE_REG'], 8);
});

testNeeding(missing, 'a function-like macro whose formula changed is BINARY', (t) => {
  expect(t, [{ file: K, from: '((ssid) << 16)', to: '((ssid) << 17)' }], ['macro-body-changed KVM_S390_INT_IO'], 8);
  expect(t, [{ file: K, from: 'KVM_S390_INT_IO(ai,cssid,ssid,schid)', to: 'KVM_S390_INT_IO(a,c,s,schid)' }, { file: K, from: '((ssid) << 16)', to: '((s) << 16)' },
    { file: K, from: '((cssid) << 18)', to: '((c) << 18)' }, { file: K, from: '((ai) << 26)', to: '((a) << 26)' }], [], 0);
});

testNeeding(missing, 'a struct growing whose size no ioctl encodes: mmap\'d or passed by address, BINARY until reviewed', (t) => {
  expect(t, [{ file: K, from: 'struct kvm_dirty_gfn {\n\t__u32 flags;\n\t__u32 slot;\n\t__u64 offset;\n', to: 'struct kvm_dirty_gfn {\n\t__u32 flags;\n\t__u32 slot;\n\t__u64 offset;\n\t__u64 extra;\n' }],
    ['mmap-struct-grown kvm_dirty_gfn', 'member-appended kvm_dirty_gfn.extra'], 8);
  expect(t, [{ file: K, from: '\t__u32 error;\n\t__u32 sev_fd;\n};', to: '\t__u32 error;\n\t__u32 sev_fd;\n\t__u64 extra;\n};' }],
    ['struct-grown kvm_sev_cmd', 'member-appended kvm_sev_cmd.extra'], 8);
});

testNeeding(missing, 'harmless changes: a trimmed reserve bitfield, a removed union alias or trailing flexible array', (t) => {
  expect(t, [{ file: A, from: '__u8 reserve:7;', to: '__u8 reserve:6;' }], ['reserved-resized kvm_ioapic_state.redirtbl.fields.reserve', 'reserved-resized kvm_irqchip.chip.ioapic.redirtbl.fields.reserve'], 0);
  expect(t, [{ file: K, from: '\t\t__u32 irq;\n\t\t__s32 status;\n', to: '\t\t__u32 irq;\n' }], ['union-member-removed kvm_irq_level.status'], 4);
  expect(t, [{ file: A, from: '\t__u32 pad;\n\n\t__DECLARE_FLEX_ARRAY(struct kvm_msr_entry, entries);\n', to: '\t__u32 pad;\n' }],
    ['struct-alignment-only kvm_msrs', 'flex-array-removed kvm_msrs.entries'], 4);
});

testNeeding(missing, 'an alignment-only change that moves nothing is compatible (#17.4)', (t) => {
  expect(t, [{ file: K, from: '\t__u32 resamplefd;\n\t__u8  pad[16];', to: '\t__u32 resamplefd;\n\t__u64 cookie;\n\t__u8  pad[8];' }],
    ['struct-alignment-only kvm_irqfd', 'member-from-padding kvm_irqfd.cookie', 'reserved-resized kvm_irqfd.pad'], 0);
});
