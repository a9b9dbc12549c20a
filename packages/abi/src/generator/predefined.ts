import type { Arch } from '../spec/types.js';

/**
 * What GCC predefines for a userspace (no __KERNEL__) LP64 little-endian Linux target: just the
 * macros the uapi headers test. `__BITS_PER_LONG` is not here: asm/bitsperlong.h derives it.
 */
const COMMON: Record<string, string> = {
  __STDC__: '1',
  __STDC_VERSION__: '201710L',
  __STDC_HOSTED__: '1',
  __GNUC__: '12',
  __GNUC_MINOR__: '2',
  __GNUC_PATCHLEVEL__: '0',
  __CHAR_BIT__: '8',
  __SIZEOF_SHORT__: '2',
  __SIZEOF_INT__: '4',
  __SIZEOF_LONG__: '8',
  __SIZEOF_LONG_LONG__: '8',
  __SIZEOF_POINTER__: '8',
  __SIZEOF_SIZE_T__: '8',
  __SIZEOF_INT128__: '16',
  __LP64__: '1',
  _LP64: '1',
  __ORDER_LITTLE_ENDIAN__: '1234',
  __ORDER_BIG_ENDIAN__: '4321',
  __ORDER_PDP_ENDIAN__: '3412',
  __BYTE_ORDER__: '__ORDER_LITTLE_ENDIAN__',
  __linux__: '1',
  __linux: '1',
  __unix__: '1',
  __ELF__: '1',
};

const ARCH: Record<Arch, Record<string, string>> = {
  x86_64: { __x86_64__: '1', __x86_64: '1', __amd64__: '1', __amd64: '1' },
  arm64: { __aarch64__: '1', __AARCH64EL__: '1', __ARM_64BIT_STATE: '1', __CHAR_UNSIGNED__: '1' },
  riscv64: { __riscv: '1', __riscv_xlen: '64', __riscv_flen: '64', __riscv_float_abi_double: '1', __CHAR_UNSIGNED__: '1' },
};

export function predefinedMacros(arch: Arch): Record<string, string> {
  return { ...COMMON, ...ARCH[arch] };
}
