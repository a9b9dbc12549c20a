/**
 * How large a decompressed kernel may be (docs/limits.md). A bzImage says how much memory its
 * kernel needs from its load address (init_size: the vmlinux image, BSS included, and the room to
 * decompress it in place); the decompressed vmlinux plus its relocations is smaller than that in
 * every real kernel. The slack covers layouts that differ, and the absolute limit bounds what any
 * header can claim, whatever the guest's RAM.
 */
const MiB = 2 ** 20;

/** Above any x86-64 vmlinux: allyesconfig builds stay well below it. */
export const MAX_KERNEL_BYTES = 512 * MiB;
export const MIN_KERNEL_SLACK = 16 * MiB;

/** The most a bzImage with this init_size may decompress to. */
export function kernelSizeBudget(initSize: number): { bytes: number; why: string } {
  const bytes = Math.min(initSize + Math.max(MIN_KERNEL_SLACK, Math.floor(initSize / 4)), MAX_KERNEL_BYTES);
  return { bytes, why: `its init_size (${initSize}) plus slack` };
}
