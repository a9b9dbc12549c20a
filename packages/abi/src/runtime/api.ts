/**
 * The TypeScript API the hypervisor consumes. Implemented in runtime/ (codecs, zod, loader).
 * Values: scalars up to 4 bytes are numbers, 8-byte scalars bigint; u8/s8/char arrays Uint8Array;
 * other scalar arrays number[] / bigint[]; nested structs objects keyed by member name; unions objects
 * with every member decoded; struct arrays arrays of objects; bitfields numbers (bigint when wider
 * than 32 bits); 16-byte scalars (__int128) bigint; pointers 8-byte bigint; multi-dimensional arrays
 * flattened row-major; flexible arrays empty unless a count is given (DecodeOptions.flexCount).
 */
import type { z } from 'zod';
import type { Arch, IoctlSpec, LayoutLeaf, Spec, StructSpec } from '../spec/types.js';

export type StructValue = { [member: string]: unknown };
export type DeepPartial<T> = T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

export interface DecodeOptions {
  /** Element count of flexible array members (count 0 in the spec); default 0, i.e. empty. */
  flexCount?: number;
}

/** Precompiled read/write of one member (a leaf, or a nested aggregate by its dotted path). */
export interface FieldAccessor<V = unknown> {
  readonly path: string;
  /** The layout leaf, or undefined when `path` names a nested aggregate. */
  readonly leaf: LayoutLeaf | undefined;
  /** `offset` is where the struct starts in the view. */
  get(view: DataView, offset?: number, options?: DecodeOptions): V;
  set(view: DataView, value: DeepPartial<V>, offset?: number): void;
}

export interface StructCodec<T extends StructValue = StructValue> {
  readonly name: string;
  readonly spec: StructSpec;
  readonly size: number;
  /** Unions (overlapping members) decode every member: overlapping views of the same bytes. */
  decode(view: DataView, offset?: number, options?: DecodeOptions): T;
  /**
   * Writes every member given, in layout order (members ordered by their first leaf in the
   * layout, so of overlapping union members given together the later one wins); members not
   * given are left as they are in the buffer.
   * Does not range-check (integers wrap like C stores): validate with `schema` first if needed.
   * Unknown member names throw. Flexible array elements given are written past `size`.
   */
  encode(value: DeepPartial<T>, view: DataView, offset?: number): void;
  /** A fresh buffer of `byteLength(value)` bytes holding `value` (missing members zero). */
  toBytes(value: DeepPartial<T>): Uint8Array;
  /** `size` plus the bytes of the flexible array elements `value` carries. */
  byteLength(value: DeepPartial<T>): number;
  /** The all-zero value. */
  zero(): T;
  /** Validates a value: integer ranges per C type, exact array lengths, strict objects. */
  readonly schema: z.ZodType<T>;
  /** Whether members overlap (a union somewhere inside, not counting array element structs). */
  readonly hasOverlaps: boolean;
  /** Precompiled access to one member by dotted path; throws naming the path if absent. */
  accessor<V = unknown>(path: string): FieldAccessor<V>;
}

export interface LoadedAbi {
  readonly spec: Spec;
  /** Pinned series id (e.g. "6.12") or "6.12+local". */
  readonly version: string;
  readonly arch: Arch;
  /** The request number; throws naming the ioctl if this spec lacks it. */
  ioctl(name: string): number;
  ioctlSpec(name: string): IoctlSpec | undefined;
  /** The value as a number; throws if absent or beyond 2^53 (use bigConstant for those). */
  constant(name: string): number;
  bigConstant(name: string): bigint;
  hasConstant(name: string): boolean;
  codec<T extends StructValue = StructValue>(struct: string): StructCodec<T>;
  /** The leaf at offsetof(struct, path), for hot paths that read a DataView directly. */
  field(struct: string, path: string): LayoutLeaf;
  hasStruct(struct: string): boolean;
  hasIoctl(name: string): boolean;
}

export type LoadAbi = (version?: string, arch?: Arch) => LoadedAbi;
