/**
 * Ioctl arguments that end in a flexible array the kernel sizes by a count in the header
 * (kvm_cpuid2.nent, kvm_msrs.nmsrs, …). The shim refuses a buffer shorter than that count says;
 * which member counts is named here, and every offset and size comes from the spec.
 */
import type { LoadedAbi } from './abi.js';

/** The member that counts a struct's trailing array (include/uapi/linux/kvm.h and asm/kvm.h). */
const COUNTED_BY: Readonly<Record<string, string>> = {
  kvm_cpuid: 'nent',
  kvm_cpuid2: 'nent',
  kvm_msrs: 'nmsrs',
  kvm_msr_list: 'nmsrs',
  kvm_reg_list: 'n',
  kvm_irq_routing: 'nr',
  kvm_pmu_event_filter: 'nevents',
  kvm_signal_mask: 'len',
};

/** [countOffset, countSize, entriesOffset, entrySize], the shim's bound for one ioctl's buffer. */
export type CountedBound = [number, number, number, number];

const cache = new WeakMap<LoadedAbi, Map<string, CountedBound | undefined>>();

/** The bound for `ioctl`'s argument, or undefined when its struct has no counted array. */
export function countedBound(abi: LoadedAbi, ioctl: string): CountedBound | undefined {
  let perAbi = cache.get(abi);
  if (!perAbi) cache.set(abi, (perAbi = new Map()));
  if (perAbi.has(ioctl)) return perAbi.get(ioctl);
  const struct = /^struct (\w+)$/.exec(abi.spec.ioctls[ioctl]?.type ?? '')?.[1];
  let bound: CountedBound | undefined;
  const countedBy = struct && COUNTED_BY[struct];
  if (countedBy) {
    const entries = abi.spec.structs[struct]?.layout?.find((m) => m.count === 0);
    if (entries) {
      const count = abi.field(struct, countedBy);
      bound = [count.offset, count.size, entries.offset, entries.size];
    }
  }
  perAbi.set(ioctl, bound);
  return bound;
}
