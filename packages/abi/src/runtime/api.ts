/**
 * The TypeScript API the hypervisor consumes. Implemented in runtime/ (codecs, zod, loader).
 * Values: scalars up to 4 bytes are numbers, 8-byte scalars bigint; u8/s8/char arrays Uint8Array;
 * other scalar arrays number[] / bigint[]; nested structs objects keyed by member name; unions objects
 * with every member decoded; struct arrays arrays of objects; bitfields numbers.
 */
import type { z } from 'zod';
import type { Arch, IoctlSpec, LayoutLeaf, Spec, StructSpec } from '../spec/types.js';

export type StructValue = { [member: string]: unknown };
export type DeepPartial<T> = T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

export interface StructCodec<T extends StructValue = StructValue> {
  readonly name: string;
  readonly spec: StructSpec;
  readonly size: number;
  decode(view: DataView, offset?: number): T;
  /** Writes every member given; members not given are left as they are in the buffer. */
  encode(value: DeepPartial<T>, view: DataView, offset?: number): void;
  /** A fresh buffer of `size` bytes holding `value` (missing members zero). */
  toBytes(value: DeepPartial<T>): Uint8Array;
  /** The all-zero value. */
  zero(): T;
  readonly schema: z.ZodType<T>;
}

export interface LoadedAbi {
  readonly spec: Spec;
  /** Pinned series id (e.g. "6.12") or "6.12+local". */
  readonly version: string;
  readonly arch: Arch;
  /** The request number; throws naming the ioctl if this spec lacks it. */
  ioctl(name: string): number;
  ioctlSpec(name: string): IoctlSpec | undefined;
  /** The value as a number; throws if absent or not exactly representable. */
  constant(name: string): number;
  bigConstant(name: string): bigint;
  hasConstant(name: string): boolean;
  codec<T extends StructValue = StructValue>(struct: string): StructCodec<T>;
  /** The leaf at offsetof(struct, path), for hot paths that read a DataView directly. */
  field(struct: string, path: string): LayoutLeaf;
}

export type LoadAbi = (version?: string, arch?: Arch) => LoadedAbi;
