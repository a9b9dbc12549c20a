/**
 * Boot MSRs, as kvmtool and Firecracker set them. MSR indices and bits are architectural
 * (Intel SDM vol. 4), not KVM ABI; the kvm_msrs container comes from the spec.
 */
import type { LoadedAbi } from '../../kvm/abi.js';
import { KvmError } from '../../kvm/errors.js';

export const MSR = {
  IA32_TSC: 0x10,
  IA32_SYSENTER_CS: 0x174,
  IA32_SYSENTER_ESP: 0x175,
  IA32_SYSENTER_EIP: 0x176,
  IA32_MISC_ENABLE: 0x1a0,
  MTRR_DEF_TYPE: 0x2ff,
  STAR: 0xc000_0081,
  LSTAR: 0xc000_0082,
  CSTAR: 0xc000_0083,
  SYSCALL_MASK: 0xc000_0084,
  KERNEL_GS_BASE: 0xc000_0102,
} as const;

const MISC_ENABLE_FAST_STRINGS = 1n;
const MTRR_ENABLE = 1n << 11n;
const MTRR_TYPE_WRITEBACK = 6n;

export interface MsrValue {
  index: number;
  data: bigint;
}

export function bootMsrs(): MsrValue[] {
  return [
    { index: MSR.IA32_SYSENTER_CS, data: 0n },
    { index: MSR.IA32_SYSENTER_ESP, data: 0n },
    { index: MSR.IA32_SYSENTER_EIP, data: 0n },
    { index: MSR.STAR, data: 0n },
    { index: MSR.CSTAR, data: 0n },
    { index: MSR.KERNEL_GS_BASE, data: 0n },
    { index: MSR.SYSCALL_MASK, data: 0n },
    { index: MSR.LSTAR, data: 0n },
    { index: MSR.IA32_TSC, data: 0n },
    { index: MSR.IA32_MISC_ENABLE, data: MISC_ENABLE_FAST_STRINGS },
    { index: MSR.MTRR_DEF_TYPE, data: MTRR_ENABLE | MTRR_TYPE_WRITEBACK },
  ];
}

/** kvm_msrs with its flexible entries array. */
export function encodeMsrs(abi: LoadedAbi, msrs: readonly MsrValue[]): Uint8Array {
  const header = abi.codec('kvm_msrs');
  const entry = abi.codec('kvm_msr_entry');
  const entriesAt = abi.field('kvm_msrs', 'entries').offset;
  const bytes = new Uint8Array(entriesAt + msrs.length * entry.size);
  const view = new DataView(bytes.buffer);
  header.encode({ nmsrs: msrs.length }, view);
  msrs.forEach((m, i) => entry.encode({ index: m.index, data: m.data }, view, entriesAt + i * entry.size));
  return bytes;
}

/** KVM_SET_MSRS returns how many entries it took; anything short names the first one refused. */
export function checkMsrsSet(msrs: readonly MsrValue[], accepted: number): void {
  if (accepted < msrs.length) {
    throw new KvmError(`KVM_SET_MSRS refused MSR 0x${msrs[accepted].index.toString(16)} (${accepted} of ${msrs.length} set)`);
  }
}
