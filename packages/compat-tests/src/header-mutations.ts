import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT } from '@kvm-ts/abi/diff';
import type { HeaderEdit } from '@kvm-ts/abi/headers';

/**
 * Single realistic edits of real pinned x86_64 header sets, the way a kernel developer could make
 * them by mistake (issue #22), with their compatible counterparts. A mutation either states its
 * class from first principles (`expected`: numbers, names, macros) or, where layout matters,
 * names a struct and the members a compiled tool uses: its class then follows from gcc's layout of
 * both sides (layoutVerdict), never from the diff engine.
 */
export interface HeaderMutation {
  id: string;
  what: string;
  edits: HeaderEdit[];
  expected?: number;
  /** The generator must refuse the edited headers (a HeaderError whose message matches). */
  refused?: RegExp;
  layout?: { struct: string; members: string[]; /** Bits a removed name adds: SOURCE. */ sourceBits?: number };
}

const B = EXIT.BINARY;
const S = EXIT.SOURCE;
const K = 'linux/kvm.h';
const A = 'asm/kvm.h';
const before = (file: string, anchor: string, added: string): HeaderEdit => ({ file, from: anchor, to: `${added}\n${anchor}` });
const replace = (file: string, from: string, to: string): HeaderEdit => ({ file, from, to });

const CREATE_VCPU = '#define KVM_CREATE_VCPU           _IO(KVMIO,   0x41)';
const SET_ONE_REG = '#define KVM_SET_ONE_REG\t\t  _IOW(KVMIO,  0xac, struct kvm_one_reg)';
const IRQFD_TAIL = '\t__u32 resamplefd;\n\t__u8  pad[16];';
const RUN_PADDING = '\t\tchar padding[256];';
const MSR_RANGE_OPEN = 'struct kvm_msr_filter_range {';
const MSR_RANGE_CLOSE = '\t__u8 *bitmap; /* a 1 bit allows the operations in flags, 0 denies */\n};';
/** kvm_msr_filter_range inside a #pragma pack(push, N) region. */
const packedMsrRange = (n: number): HeaderEdit[] => [before(A, MSR_RANGE_OPEN, `#pragma pack(push, ${n})`), replace(A, MSR_RANGE_CLOSE, `${MSR_RANGE_CLOSE}\n#pragma pack(pop)`)];

export const HEADER_MUTATIONS: readonly HeaderMutation[] = [
  // numbered families
  { id: 'exit-reason-reused', what: 'a new KVM_EXIT_* on KVM_EXIT_HLT\'s 5', edits: [before(K, '#define KVM_EXIT_HLT              5', '#define KVM_EXIT_KVMTS_NEW 5')], expected: B },
  { id: 'cap-reused', what: 'a new KVM_CAP_* on KVM_CAP_NR_VCPUS\'s 9', edits: [before(K, '#define KVM_CAP_NR_VCPUS 9', '#define KVM_CAP_KVMTS_NEW 9')], expected: B },
  { id: 'irq-routing-reused', what: 'a new KVM_IRQ_ROUTING_* on KVM_IRQ_ROUTING_MSI\'s 2', edits: [before(K, '#define KVM_IRQ_ROUTING_MSI 2', '#define KVM_IRQ_ROUTING_KVMTS 2')], expected: B },
  { id: 'cap-retired-renamed', what: 'KVM_CAP_NR_VCPUS 9 replaced by a new name on 9', edits: [replace(K, '#define KVM_CAP_NR_VCPUS 9', '#define KVM_CAP_KVMTS_RENAMED 9')], expected: B | S },
  { id: 'dev-type-reused', what: 'a C enum kvm_device_type member reusing 1', edits: [replace(K, '\tKVM_DEV_TYPE_VFIO,', '\tKVM_DEV_TYPE_VFIO,\n\tKVM_DEV_TYPE_KVMTS = 1,')], expected: B },
  { id: 'cap-free-number', what: 'a new KVM_CAP_* on a free number', edits: [before(K, '#define KVM_CAP_NR_VCPUS 9', '#define KVM_CAP_KVMTS_FREE 999')], expected: 0 },
  { id: 'exit-free-number', what: 'a new KVM_EXIT_* on a free number', edits: [before(K, '#define KVM_EXIT_HLT              5', '#define KVM_EXIT_KVMTS_FREE 999')], expected: 0 },
  { id: 'cap-alias', what: '#define KVM_CAP_KVMTS_ALIAS KVM_CAP_NR_VCPUS', edits: [before(K, '#define KVM_CAP_NR_VCPUS 9', '#define KVM_CAP_KVMTS_ALIAS KVM_CAP_NR_VCPUS')], expected: 0 },
  // ioctls
  { id: 'ioctl-alias', what: '#define KVM_CREATE_VCPU_ALIAS KVM_CREATE_VCPU', edits: [before(K, CREATE_VCPU, '#define KVM_CREATE_VCPU_ALIAS KVM_CREATE_VCPU')], expected: 0 },
  { id: 'vm-ioctl-on-check-extension', what: 'a VM ioctl _IO(KVMIO, 0x03), KVM_CHECK_EXTENSION\'s number (valid on VM fds)', edits: [before(K, CREATE_VCPU, '#define KVM_KVMTS_VM_FROB _IO(KVMIO, 0x03)')], expected: B },
  { id: 'vcpu-ioctl-on-has-device-attr', what: 'a vcpu ioctl with KVM_HAS_DEVICE_ATTR\'s number (valid on vcpu fds)', edits: [before(K, SET_ONE_REG, '#define KVM_KVMTS_VCPU_FROB _IOW(KVMIO, 0xe3, struct kvm_device_attr)')], expected: B },
  { id: 'vm-ioctl-free-nr', what: 'a VM ioctl on a free nr', edits: [before(K, CREATE_VCPU, '#define KVM_KVMTS_VM_FREE _IO(KVMIO, 0xfe)')], expected: 0 },
  { id: 'ioctl-arg-swapped', what: 'KVM_SET_ONE_REG taking struct kvm_enc_region (same 16 bytes)', edits: [replace(K, SET_ONE_REG, SET_ONE_REG.replace('kvm_one_reg', 'kvm_enc_region'))], expected: B },
  // function-like macros
  { id: 'macro-formula', what: 'KVM_S390_INT_IO shifting ssid by 17', edits: [replace(K, '((ssid) << 16)', '((ssid) << 17)')], expected: B },
  // layout: the class follows from gcc
  { id: 'reserve-bitfield-trimmed', what: 'reserve:7 -> reserve:6 in kvm_ioapic_state', edits: [replace(A, '__u8 reserve:7;', '__u8 reserve:6;')],
    layout: { struct: 'kvm_ioapic_state', members: ['base_address', 'ioregsel', 'id', 'irr', 'redirtbl'] } },
  { id: 'union-alias-removed', what: 'kvm_irq_level loses its union alternative status', edits: [replace(K, '\t\t__s32 status;\n', '')],
    layout: { struct: 'kvm_irq_level', members: ['irq', 'level'], sourceBits: S } },
  { id: 'alignment-only-carve', what: '__u64 cookie carved out of kvm_irqfd.pad (alignment 4 -> 8)', edits: [replace(K, IRQFD_TAIL, '\t__u32 resamplefd;\n\t__u64 cookie;\n\t__u8  pad[8];')],
    layout: { struct: 'kvm_irqfd', members: ['fd', 'gsi', 'flags', 'resamplefd'] } },
  { id: 'carve-that-grows', what: 'kvm_irqfd gains a __u8 and a misaligned __u64 past its pad', edits: [replace(K, IRQFD_TAIL, '\t__u32 resamplefd;\n\t__u8 x;\n\t__u64 cookie;\n\t__u8  pad[8];')],
    layout: { struct: 'kvm_irqfd', members: ['fd', 'gsi', 'flags', 'resamplefd'] } },
  { id: 'run-new-exit-struct', what: 'a new exit struct inside kvm_run\'s padded union', edits: [replace(K, RUN_PADDING, '\t\tstruct {\n\t\t\t__u64 a;\n\t\t\t__u64 b;\n\t\t} kvmts_exit;\n' + RUN_PADDING)],
    layout: { struct: 'kvm_run', members: ['exit_reason', 'io', 'mmio', 'kvm_valid_regs', 'kvm_dirty_regs', 's'] } },
  { id: 'run-union-overflow', what: 'a 300-byte exit struct overflowing kvm_run\'s union', edits: [replace(K, RUN_PADDING, '\t\tstruct {\n\t\t\t__u8 a[300];\n\t\t} kvmts_exit;\n' + RUN_PADDING)],
    layout: { struct: 'kvm_run', members: ['exit_reason', 'io', 'mmio', 'kvm_valid_regs', 'kvm_dirty_regs', 's'] } },
  { id: 'dirty-gfn-grown', what: 'a __u64 appended to the dirty ring\'s kvm_dirty_gfn', edits: [replace(K, 'struct kvm_dirty_gfn {\n\t__u32 flags;\n\t__u32 slot;\n\t__u64 offset;\n', 'struct kvm_dirty_gfn {\n\t__u32 flags;\n\t__u32 slot;\n\t__u64 offset;\n\t__u64 kvmts_extra;\n')],
    layout: { struct: 'kvm_dirty_gfn', members: ['flags', 'slot', 'offset'] } },
  { id: 'coalesced-mmio-grown', what: 'a __u64 appended to the coalesced MMIO ring entry', edits: [replace(K, 'struct kvm_coalesced_mmio {\n\t__u64 phys_addr;\n\t__u32 len;\n', 'struct kvm_coalesced_mmio {\n\t__u64 phys_addr;\n\t__u32 len;\n\t__u32 kvmts_extra;\n')],
    layout: { struct: 'kvm_coalesced_mmio', members: ['phys_addr', 'len'] } },
  { id: 'sev-cmd-grown', what: 'a __u64 appended to kvm_sev_cmd (KVM_MEMORY_ENCRYPT_OP encodes unsigned long)', edits: [replace(K, '\t__u32 error;\n\t__u32 sev_fd;\n};', '\t__u32 error;\n\t__u32 sev_fd;\n\t__u64 kvmts_extra;\n};')],
    layout: { struct: 'kvm_sev_cmd', members: ['id', 'data', 'error', 'sev_fd'] } },
  { id: 'pragma-pack-1', what: 'kvm_msr_filter_range inside #pragma pack(push, 1)', edits: packedMsrRange(1),
    layout: { struct: 'kvm_msr_filter', members: ['flags', 'ranges'] } },
  { id: 'pragma-pack-8', what: 'kvm_msr_filter_range inside #pragma pack(push, 8), no tighter than its own alignment', edits: packedMsrRange(8),
    layout: { struct: 'kvm_msr_filter', members: ['flags', 'ranges'] } },
  // kernel-only members: the userspace view cannot show the break, so the generator refuses it
  { id: 'kernel-only-member', what: 'a member under #ifdef __KERNEL__ in the middle of kvm_irqfd', edits: [replace(K, IRQFD_TAIL, '\t__u32 resamplefd;\n#ifdef __KERNEL__\n\t__u32 kvmts_kernel_only;\n#endif\n\t__u8  pad[16];')],
    refused: /struct kvm_irqfd: a __KERNEL__ conditional inside the body/ },
  { id: 'msrs-flex-removed', what: 'kvm_msrs loses its trailing flexible array', edits: [replace(A, '\t__DECLARE_FLEX_ARRAY(struct kvm_msr_entry, entries);\n', '')],
    layout: { struct: 'kvm_msrs', members: ['nmsrs', 'pad'], sourceBits: S } },
];

/** sizeof and each member's offsetof, as the host gcc lays the struct out from `includeDir`. */
export function gccLayout(includeDir: string, struct: string, members: readonly string[]): { size: number; offsets: number[] } {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-gcc-layout-'));
  try {
    const src = join(dir, 'p.c');
    const exe = join(dir, 'p');
    writeFileSync(src, [
      '#include <stdio.h>', '#include <stddef.h>', '#include <linux/kvm.h>',
      `int main(void) { printf("%zu${' %zu'.repeat(members.length)}\\n", sizeof(struct ${struct})${members.map((m) => `, offsetof(struct ${struct}, ${m})`).join('')}); return 0; }`,
    ].join('\n'));
    // -I dirs come before the system's own kernel headers, so linux/ and asm/ are the edited ones.
    const cc = spawnSync('gcc', ['-std=gnu11', '-w', '-I', includeDir, src, '-o', exe], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`gcc failed on struct ${struct}:\n${cc.stderr}`);
    const run = spawnSync(exe, { encoding: 'utf8' });
    const [size, ...offsets] = run.stdout.trim().split(' ').map(Number);
    return { size, offsets };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The class a layout mutation has for a compiled tool: BINARY when gcc puts the struct's size or
 * any member the tool uses elsewhere, compatible otherwise (an alignment change that moves nothing
 * included); plus SOURCE for a name it removed.
 */
export function layoutVerdict(old: { size: number; offsets: number[] }, neu: { size: number; offsets: number[] }, sourceBits = 0): number {
  const moved = old.size !== neu.size || old.offsets.some((o, i) => o !== neu.offsets[i]);
  return (moved ? B : 0) | sourceBits;
}
