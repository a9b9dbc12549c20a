/**
 * The tool side of the co-edit example (docs/abi-co-edit.md): kernel-headers/patches/0001-kvmts-vm-tag.patch
 * adds KVM_CAP_KVMTS_VM_TAG and carves `__u64 kvmts_tag` out of kvm_enable_cap's reserved bytes.
 * A VMM built on it must keep working on every kernel that lacks the patch, which is every real one.
 */
import type { LoadedAbi } from '@kvm-ts/abi';

export const VM_TAG_CAP = 'KVM_CAP_KVMTS_VM_TAG';
const U64_LIMIT = 1n << 64n;

export type VmTagOutcome =
  /** New path: the kernel reported the capability and took the tag through KVM_ENABLE_CAP. */
  | { path: 'kernel'; cap: number }
  /** Old path: the tag stays in userspace and the kernel is asked nothing new. */
  | { path: 'userspace'; reason: 'spec-without-extension' | 'kernel-without-capability' };

/**
 * Gives the VM's tag to the kernel when it can take it. `checkExtension` is the VM fd's
 * KVM_CHECK_EXTENSION by name (through the VM's capability check, so a mask applies); `enableCap` issues KVM_ENABLE_CAP on the VM fd with the given struct kvm_enable_cap bytes.
 * The spec decides whether the names exist at all, the running kernel whether the path is taken:
 * a spec without the extension never asks, and a kernel without the capability never sees the new
 * member, so its reserved bytes stay zero exactly as an old tool would leave them.
 */
export function applyVmTag(
  abi: LoadedAbi,
  checkExtension: (cap: string) => number,
  enableCap: (arg: Uint8Array) => void,
  tag: bigint,
): VmTagOutcome {
  if (tag < 0n || tag >= U64_LIMIT) throw new RangeError(`VM tag ${tag} is not a 64-bit unsigned value`);
  if (!abi.hasConstant(VM_TAG_CAP)) return { path: 'userspace', reason: 'spec-without-extension' };
  const cap = abi.constant(VM_TAG_CAP);
  if (checkExtension(VM_TAG_CAP) <= 0) return { path: 'userspace', reason: 'kernel-without-capability' };
  enableCap(abi.codec('kvm_enable_cap').toBytes({ cap, kvmts_tag: tag }));
  return { path: 'kernel', cap };
}
