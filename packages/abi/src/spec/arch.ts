/**
 * Facts of the three LP64 psABIs (x86_64 SysV, AAPCS64, RISC-V LP64D) that both the generator and
 * the runtime need. The runtime must not import the generator, so they live here.
 */
import type { Arch } from './types.js';

/** Plain `char` is signed in the x86_64 SysV psABI, unsigned in AAPCS64 and the RISC-V psABI. */
export function plainCharSigned(arch: Arch): boolean {
  return arch === 'x86_64';
}

/** The GNU target triplet: Debian's multiarch directory name and the cross toolchains' prefix. */
export const GNU_TRIPLET: Readonly<Record<Arch, string>> = {
  x86_64: 'x86_64-linux-gnu',
  arm64: 'aarch64-linux-gnu',
  riscv64: 'riscv64-linux-gnu',
};
