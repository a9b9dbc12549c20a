import type { LayoutLeaf, Spec } from '../src/spec/types.js';

const u = (path: string, offset: number, size: number, type = `__u${size * 8}`): LayoutLeaf => ({ path, offset, size, type });
const arr = (path: string, offset: number, elem: number, count: number, type: string): LayoutLeaf => ({ path, offset, size: elem, type, count });

/**
 * Array leaves carry one element's size, as the generator writes them.
 * A small spec shaped like real KVM items (numbers from linux/kvm.h on x86_64), so the diff tests read
 * like the history they model. Each call returns a fresh copy to mutate.
 */
export function fixtureSpec(): Spec {
  return {
    kernel: '6.1.176',
    arch: 'x86_64',
    ioctls: {
      KVM_GET_API_VERSION: { number: 0xae00, dir: 'none', size: 0, type: null, fd: 'system' },
      KVM_CREATE_VM: { number: 0xae01, dir: 'none', size: 0, type: null, fd: 'system' },
      KVM_SET_USER_MEMORY_REGION: { number: 0x4020ae46, dir: 'write', size: 32, type: 'struct kvm_userspace_memory_region', fd: 'vm' },
      KVM_ENABLE_CAP: { number: 0x4068aea3, dir: 'write', size: 104, type: 'struct kvm_enable_cap', fd: 'vm' },
      KVM_RUN: { number: 0xae80, dir: 'none', size: 0, type: null, fd: 'vcpu' },
      KVM_GET_REGS: { number: 0x8090ae81, dir: 'read', size: 144, type: 'struct kvm_regs', fd: 'vcpu' },
      KVM_SET_REGS: { number: 0x4090ae82, dir: 'write', size: 144, type: 'struct kvm_regs', fd: 'vcpu' },
      KVM_SET_CPUID2: { number: 0x4008ae90, dir: 'write', size: 8, type: 'struct kvm_cpuid2', fd: 'vcpu' },
    },
    structs: {
      kvm_userspace_memory_region: {
        size: 32, align: 8, kind: 'struct',
        layout: [u('slot', 0, 4), u('flags', 4, 4), u('guest_phys_addr', 8, 8), u('memory_size', 16, 8), u('userspace_addr', 24, 8)],
      },
      kvm_enable_cap: {
        size: 104, align: 8, kind: 'struct',
        layout: [u('cap', 0, 4), u('flags', 4, 4), arr('args', 8, 8, 4, '__u64'), arr('pad', 40, 1, 64, '__u8')],
      },
      kvm_regs: {
        size: 144, align: 8, kind: 'struct',
        layout: ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags'].map((r, i) => u(r, i * 8, 8)),
      },
      kvm_cpuid_entry2: {
        size: 40, align: 4, kind: 'struct',
        layout: [u('function', 0, 4), u('index', 4, 4), u('flags', 8, 4), u('eax', 12, 4), u('ebx', 16, 4), u('ecx', 20, 4), u('edx', 24, 4), arr('padding', 28, 4, 3, '__u32')],
      },
      kvm_cpuid2: {
        size: 8, align: 4, kind: 'struct',
        layout: [u('nent', 0, 4), u('padding', 4, 4), { path: 'entries', offset: 8, size: 40, type: 'struct kvm_cpuid_entry2', count: 0 }],
      },
      kvm_run: {
        size: 296, align: 8, kind: 'struct',
        layout: [
          u('request_interrupt_window', 0, 1), u('immediate_exit', 1, 1), arr('padding1', 2, 1, 6, '__u8'),
          u('exit_reason', 8, 4), u('ready_for_interrupt_injection', 12, 1), u('if_flag', 13, 1), u('flags', 14, 2),
          u('cr8', 16, 8), u('apic_base', 24, 8),
          u('hw.hardware_exit_reason', 32, 8),
          u('io.direction', 32, 1), u('io.size', 33, 1), u('io.port', 34, 2), u('io.count', 36, 4), u('io.data_offset', 40, 8),
          arr('padding', 32, 1, 256, 'char'),
          u('kvm_valid_regs', 288, 8),
        ],
      },
      kvm_xen_flags: {
        size: 4, align: 4, kind: 'struct',
        layout: [{ path: 'long_mode', offset: 0, size: 4, type: '__u32', bitOffset: 0, bitWidth: 1 }, { path: 'shared', offset: 0, size: 4, type: '__u32', bitOffset: 1, bitWidth: 1 }],
      },
    },
    constants: {
      KVM_API_VERSION: 12,
      KVM_CAP_IRQCHIP: 0, KVM_CAP_HLT: 1, KVM_CAP_USER_MEMORY: 3, KVM_CAP_NR_VCPUS: 9,
      KVM_EXIT_UNKNOWN: 0, KVM_EXIT_IO: 2, KVM_EXIT_HLT: 5,
      KVM_MAX_CPUID_ENTRIES: 80,
      KVM_MEM_LOG_DIRTY_PAGES: 1, KVM_MEM_READONLY: 2,
      KVM_X86_DISABLE_VALID_EXITS: 15,
      KVM_BIG: '18446744073709551615',
    },
    typedefs: { __u8: 'unsigned char', __u16: 'unsigned short', __u32: 'unsigned int', __u64: 'unsigned long long', __s32: 'int', __le32: 'unsigned int' },
  };
}

export const clone = (s: Spec): Spec => structuredClone(s);
