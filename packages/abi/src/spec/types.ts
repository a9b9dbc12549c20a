/**
 * The shape of one generated spec file (packages/abi/spec/<series>/<arch>.json).
 * Tools outside this repo read these files: the required keys below are a public contract.
 */
export type Arch = 'x86_64' | 'arm64' | 'riscv64';
export const ARCHES: readonly Arch[] = ['x86_64', 'arm64', 'riscv64'];

export type IoctlDir = 'none' | 'read' | 'write' | 'readwrite';
/** Which file descriptor an ioctl is issued on, per Documentation/virt/kvm/api.rst. */
export type IoctlFd = 'system' | 'vm' | 'vcpu' | 'device';

export interface IoctlSpec {
  /** The full 32-bit request number, as an unsigned integer. */
  number: number;
  dir: IoctlDir;
  /** _IOC_SIZE: sizeof the argument type, 0 for _IO. */
  size: number;
  /** The C argument type as written in the macro (e.g. "struct kvm_regs", "__u64"), null for _IO. */
  type: string | null;
  fd: IoctlFd;
}

/**
 * One leaf member. `path` is a designator accepted by offsetof(struct NAME, path).
 * Nested non-array structs/unions are expanded into their leaves; an array (of scalars or of
 * structs/unions) is one leaf with `count` (0 for a flexible array member).
 * For an array whose element is a struct/union, `type` is "struct X" / "union X" and X is a key of
 * `structs`; an anonymous element type is registered there under "<outer>.<path>".
 * Bitfields: `offset`/`size` give the naturally aligned storage unit of the declared type,
 * `bitOffset` the LSB position inside that unit (little-endian), `bitWidth` the width.
 */
export interface LayoutLeaf {
  path: string;
  offset: number;
  size: number;
  type: string;
  count?: number;
  /**
   * Only for multi-dimensional arrays: the extent of each dimension, outermost first
   * (`__u8 x[2][3]` → dims [2, 3], count 6). `size` is then, as for every array leaf, one element's size.
   */
  dims?: number[];
  bitOffset?: number;
  bitWidth?: number;
}

export interface StructSpec {
  size: number;
  align: number;
  kind: 'struct' | 'union';
  layout: LayoutLeaf[];
}

export interface Spec {
  /** Full upstream kernel version the headers came from, e.g. "6.12.107"; "+local" suffix for patched sets. */
  kernel: string;
  arch: Arch;
  ioctls: Record<string, IoctlSpec>;
  structs: Record<string, StructSpec>;
  /** Integer value, or a decimal string when it does not fit a double exactly. */
  constants: Record<string, number | string>;
  /** Every typedef reachable from the headers, resolved to its base C type (e.g. "__u64": "unsigned long long"). */
  typedefs: Record<string, string>;
}
