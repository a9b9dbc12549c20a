/**
 * Struct codecs: each struct's shape is compiled once into closures over fixed offsets, so
 * decoding kvm_run on every exit is a straight run of DataView calls. Little-endian throughout
 * (every supported arch is).
 */
import type { z } from 'zod';
import type { Spec } from '../spec/types.js';
import type { DecodeOptions, DeepPartial, FieldAccessor, StructCodec, StructValue } from './api.js';
import { describeChoices } from './choices.js';
import type { ScalarInfo } from './scalars.js';
import { buildShape, type FieldNode, type GroupNode, type ShapeNode, type StructShape } from './shape.js';
import { buildStructSchema } from './zod.js';

type Decoder = (view: DataView, base: number, flex: number) => unknown;
type ArrayField = Extract<FieldNode, { flexible: boolean }>;
type Encoder = (value: unknown, view: DataView, base: number) => void;

interface CompiledNode {
  readonly node: ShapeNode;
  readonly decode: Decoder;
  readonly encode: Encoder;
}

/** Builds, caches and cross-links the codecs, shapes and schemas of one spec. */
export class CodecRegistry {
  private readonly shapes = new Map<string, StructShape>();
  private readonly codecs = new Map<string, Codec>();
  private readonly schemas = new Map<string, z.ZodType>();

  /** `label` names the spec in errors, e.g. "KVM ABI 6.12/x86_64". */
  constructor(
    readonly spec: Pick<Spec, 'structs' | 'typedefs' | 'arch'>,
    readonly label: string,
  ) {}

  has(name: string): boolean {
    return Object.hasOwn(this.spec.structs, name);
  }

  shape(name: string): StructShape {
    let shape = this.shapes.get(name);
    if (!shape) {
      if (!this.has(name)) {
        throw new Error(`unknown struct '${name}' in ${this.label} (${describeChoices(name, Object.keys(this.spec.structs))})`);
      }
      shape = buildShape(name, this.spec.structs[name], this.spec);
      this.shapes.set(name, shape);
    }
    return shape;
  }

  codec(name: string): Codec {
    let codec = this.codecs.get(name);
    if (!codec) {
      codec = new Codec(this.shape(name), this);
      this.codecs.set(name, codec);
    }
    return codec;
  }

  schema(name: string): z.ZodType {
    let schema = this.schemas.get(name);
    if (!schema) {
      schema = buildStructSchema(this.shape(name), (element) => this.schema(element));
      this.schemas.set(name, schema);
    }
    return schema;
  }
}

export class Codec<T extends StructValue = StructValue> implements StructCodec<T> {
  readonly name: string;
  readonly spec: StructShape['spec'];
  readonly size: number;
  readonly hasOverlaps: boolean;
  readonly shape: StructShape;
  private readonly root: CompiledNode;
  private readonly byPath = new Map<string, CompiledNode>();
  private readonly flexFields: readonly ArrayField[];
  private readonly accessors = new Map<string, FieldAccessor>();

  constructor(
    shape: StructShape,
    private readonly registry: CodecRegistry,
  ) {
    this.shape = shape;
    this.name = shape.name;
    this.spec = shape.spec;
    this.size = shape.spec.size;
    this.hasOverlaps = shape.hasOverlaps;
    this.flexFields = shape.fields.filter((f): f is ArrayField => 'flexible' in f && f.flexible);
    this.root = this.compile(shape.root);
  }

  get schema(): z.ZodType<T> {
    return this.registry.schema(this.name) as z.ZodType<T>;
  }

  decode(view: DataView, offset = 0, options?: DecodeOptions): T {
    const flex = options?.flexCount ?? 0;
    this.checkRange(view, offset, this.extent(flex), 'decode');
    return this.root.decode(view, offset, flex) as T;
  }

  encode(value: DeepPartial<T>, view: DataView, offset = 0): void {
    this.checkRange(view, offset, this.byteLength(value), 'encode');
    this.root.encode(value, view, offset);
  }

  toBytes(value: DeepPartial<T>): Uint8Array {
    const bytes = new Uint8Array(this.byteLength(value));
    this.root.encode(value, new DataView(bytes.buffer), 0);
    return bytes;
  }

  byteLength(value: DeepPartial<T>): number {
    let end = this.size;
    for (const field of this.flexFields) {
      const given = valueAt(value, field.path);
      if (given !== undefined && given !== null && typeof (given as ArrayLike<unknown>).length === 'number') {
        end = Math.max(end, field.leaf.offset + (given as ArrayLike<unknown>).length * field.stride);
      }
    }
    return end;
  }

  zero(): T {
    return this.root.decode(new DataView(new ArrayBuffer(this.size)), 0, 0) as T;
  }

  accessor<V = unknown>(path: string): FieldAccessor<V> {
    let accessor = this.accessors.get(path);
    if (!accessor) {
      const compiled = this.byPath.get(path);
      if (!compiled) {
        throw new Error(`struct ${this.name} has no member '${path}' (${describeChoices(path, this.byPath.keys())})`);
      }
      const { node, decode, encode } = compiled;
      const leaf = node.kind === 'group' ? undefined : node.leaf;
      const stride = 'flexible' in node && node.flexible ? node.stride : 0;
      const getting = `get ${path}`;
      const setting = `set ${path}`;
      accessor = {
        path,
        leaf,
        get: (view, offset = 0, options) => {
          const flex = options?.flexCount ?? 0;
          this.checkRange(view, offset, this.extent(flex), getting);
          return decode(view, offset, flex);
        },
        set: (view, value, offset = 0) => {
          const flexEnd = stride && leaf ? leaf.offset + ((value as ArrayLike<unknown>)?.length ?? 0) * stride : 0;
          this.checkRange(view, offset, Math.max(this.size, flexEnd), setting);
          encode(value, view, offset);
        },
      };
      this.accessors.set(path, accessor);
    }
    return accessor as FieldAccessor<V>;
  }

  /** Internal: decode at `base` without the range check (element of a struct array). */
  decodeAt(view: DataView, base: number): unknown {
    return this.root.decode(view, base, 0);
  }

  encodeAt(value: unknown, view: DataView, base: number): void {
    this.root.encode(value, view, base);
  }

  /** Bytes a decode reads when flexible arrays hold `flex` elements. */
  private extent(flex: number): number {
    let end = this.size;
    if (flex === 0) return end; // flexible arrays start within the struct (checked by buildShape)
    for (const field of this.flexFields) end = Math.max(end, field.leaf.offset + flex * field.stride);
    return end;
  }

  private checkRange(view: DataView, offset: number, bytes: number, what: string): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + bytes > view.byteLength) {
      throw new RangeError(
        `struct ${this.name}: ${what} needs ${bytes} bytes at offset ${offset} but the view holds ${view.byteLength}`,
      );
    }
  }

  private compile(node: ShapeNode): CompiledNode {
    const compiled =
      node.kind === 'group' ? this.compileGroup(node) : { node, ...compileField(node, this.name, this.registry) };
    if (node.path) this.byPath.set(node.path, compiled);
    return compiled;
  }

  private compileGroup(node: GroupNode): CompiledNode {
    const children = node.children.map((child) => this.compile(child));
    const names = children.map((c) => c.node.name);
    const decoders = children.map((c) => c.decode);
    const encoders = children.map((c) => c.encode);
    const known = new Set(names);
    const where = node.path ? `${this.name}.${node.path}` : this.name;
    const count = children.length;
    return {
      node,
      decode(view, base, flex) {
        const out: Record<string, unknown> = {};
        for (let i = 0; i < count; i++) out[names[i]] = decoders[i](view, base, flex);
        return out;
      },
      encode(value, view, base) {
        if (typeof value !== 'object' || value === null || Array.isArray(value) || ArrayBuffer.isView(value)) {
          throw new TypeError(`${where}: expected an object, got ${describeValue(value)}`);
        }
        const record = value as Record<string, unknown>;
        for (const key of Object.keys(record)) {
          if (!known.has(key)) {
            throw new TypeError(`${where}: unknown member '${key}' (${describeChoices(key, names)})`);
          }
        }
        for (let i = 0; i < count; i++) {
          const member = record[names[i]];
          if (member !== undefined) encoders[i](member, view, base);
        }
      },
    };
  }
}

function compileField(
  node: FieldNode,
  structName: string,
  registry: CodecRegistry,
): { decode: Decoder; encode: Encoder } {
  const where = `${structName}.${node.path}`;
  const offset = node.leaf.offset;
  switch (node.kind) {
    case 'scalar': {
      const read = scalarReader(node.scalar);
      const write = scalarWriter(node.scalar, where);
      return {
        decode: (view, base) => read(view, base + offset),
        encode: (value, view, base) => write(view, base + offset, value),
      };
    }
    case 'bitfield':
      return compileBitfield(node, where);
    case 'bytes': {
      const { count, flexible } = node;
      return {
        decode(view, base, flex) {
          const length = flexible ? flex : count;
          return new Uint8Array(view.buffer, view.byteOffset + base + offset, length).slice();
        },
        encode(value, view, base) {
          const bytes = arrayLike(value, where);
          if (!flexible && bytes.length > count) {
            throw new RangeError(`${where}: ${bytes.length} elements given for a ${count}-element array`);
          }
          new Uint8Array(view.buffer, view.byteOffset + base + offset, bytes.length).set(bytes);
        },
      };
    }
    case 'scalarArray': {
      const { count, flexible, stride } = node;
      const read = scalarReader(node.scalar);
      const write = scalarWriter(node.scalar, where);
      return {
        decode(view, base, flex) {
          const length = flexible ? flex : count;
          const out = new Array<unknown>(length);
          for (let i = 0, at = base + offset; i < length; i++, at += stride) out[i] = read(view, at);
          return out;
        },
        encode(value, view, base) {
          const items = arrayLike(value, where);
          if (!flexible && items.length > count) {
            throw new RangeError(`${where}: ${items.length} elements given for a ${count}-element array`);
          }
          for (let i = 0, at = base + offset; i < items.length; i++, at += stride) {
            if (items[i] !== undefined) write(view, at, items[i]);
          }
        },
      };
    }
    case 'structArray': {
      const { count, flexible, stride, struct } = node;
      // Element codecs are resolved on first use so that building one codec never builds them all.
      let element: Codec | undefined;
      const codec = () => (element ??= registry.codec(struct));
      return {
        decode(view, base, flex) {
          const length = flexible ? flex : count;
          const elementCodec = codec();
          const out = new Array<unknown>(length);
          for (let i = 0, at = base + offset; i < length; i++, at += stride) out[i] = elementCodec.decodeAt(view, at);
          return out;
        },
        encode(value, view, base) {
          const items = arrayLike(value, where);
          if (!flexible && items.length > count) {
            throw new RangeError(`${where}: ${items.length} elements given for a ${count}-element array`);
          }
          const elementCodec = codec();
          for (let i = 0, at = base + offset; i < items.length; i++, at += stride) {
            if (items[i] !== undefined) elementCodec.encodeAt(items[i], view, at);
          }
        },
      };
    }
    case 'struct': {
      let element: Codec | undefined;
      const codec = () => (element ??= registry.codec(node.struct));
      return {
        decode: (view, base) => codec().decodeAt(view, base + offset),
        encode: (value, view, base) => codec().encodeAt(value, view, base + offset),
      };
    }
  }
}

type Reader = (view: DataView, at: number) => number | bigint;
type Writer = (view: DataView, at: number, value: unknown) => void;

export function scalarReader(s: ScalarInfo): Reader {
  if (s.float) return s.size === 4 ? (v, at) => v.getFloat32(at, true) : (v, at) => v.getFloat64(at, true);
  switch (s.size) {
    case 1:
      return s.signed ? (v, at) => v.getInt8(at) : (v, at) => v.getUint8(at);
    case 2:
      return s.signed ? (v, at) => v.getInt16(at, true) : (v, at) => v.getUint16(at, true);
    case 4:
      return s.signed ? (v, at) => v.getInt32(at, true) : (v, at) => v.getUint32(at, true);
    case 8:
      return s.signed ? (v, at) => v.getBigInt64(at, true) : (v, at) => v.getBigUint64(at, true);
    case 16:
      return s.signed
        ? (v, at) => (v.getBigInt64(at + 8, true) << 64n) | v.getBigUint64(at, true)
        : (v, at) => (v.getBigUint64(at + 8, true) << 64n) | v.getBigUint64(at, true);
  }
}

export function scalarWriter(s: ScalarInfo, where: string): Writer {
  if (s.float) {
    return s.size === 4
      ? (v, at, x) => v.setFloat32(at, toNumber(x, where), true)
      : (v, at, x) => v.setFloat64(at, toNumber(x, where), true);
  }
  // Stores wrap modulo 2^bits like C conversions do, so signedness does not matter when writing.
  switch (s.size) {
    case 1:
      return (v, at, x) => v.setUint8(at, toNumber(x, where));
    case 2:
      return (v, at, x) => v.setUint16(at, toNumber(x, where), true);
    case 4:
      return (v, at, x) => v.setUint32(at, toNumber(x, where), true);
    case 8:
      return (v, at, x) => v.setBigUint64(at, toBigInt(x, where), true);
    case 16:
      return (v, at, x) => {
        const big = toBigInt(x, where);
        v.setBigUint64(at, BigInt.asUintN(64, big), true);
        v.setBigUint64(at + 8, BigInt.asUintN(64, big >> 64n), true);
      };
  }
}

/**
 * Bitfields are read and written through their whole storage unit with a mask, so writing one
 * never disturbs its neighbours. Units up to 4 bytes use exact double arithmetic (faster than
 * bigint); 8- and 16-byte units use bigint.
 */
function compileBitfield(node: Extract<FieldNode, { kind: 'bitfield' }>, where: string): { decode: Decoder; encode: Encoder } {
  const { bitOffset, bitWidth, big } = node;
  const signed = node.scalar.signed;
  const offset = node.leaf.offset;
  const unit: ScalarInfo = { name: 'unit', size: node.scalar.size, signed: false, float: false };
  const readUnit = scalarReader(unit);
  const writeUnit = scalarWriter(unit, where);
  if (unit.size <= 4) {
    const scale = 2 ** bitOffset;
    const modulus = 2 ** bitWidth;
    const half = modulus / 2;
    return {
      decode(view, base) {
        const raw = Math.floor((readUnit(view, base + offset) as number) / scale) % modulus;
        return signed && raw >= half ? raw - modulus : raw;
      },
      encode(value, view, base) {
        const at = base + offset;
        const unitValue = readUnit(view, at) as number;
        const old = Math.floor(unitValue / scale) % modulus;
        const wanted = ((toNumber(value, where) % modulus) + modulus) % modulus;
        writeUnit(view, at, unitValue + (wanted - old) * scale);
      },
    };
  }
  const shift = BigInt(bitOffset);
  const width = BigInt(bitWidth);
  const mask = ((1n << width) - 1n) << shift;
  return {
    decode(view, base) {
      const raw = ((readUnit(view, base + offset) as bigint) & mask) >> shift;
      const value = signed ? BigInt.asIntN(bitWidth, raw) : raw;
      return big ? value : Number(value);
    },
    encode(value, view, base) {
      const at = base + offset;
      const unitValue = readUnit(view, at) as bigint;
      const wanted = BigInt.asUintN(bitWidth, toBigInt(value, where)) << shift;
      writeUnit(view, at, (unitValue & ~mask) | wanted);
    },
  };
}

function toNumber(value: unknown, where: string): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  throw new TypeError(`${where}: expected a number, got ${describeValue(value)}`);
}

function toBigInt(value: unknown, where: string): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  throw new TypeError(`${where}: expected a bigint, got ${describeValue(value)}`);
}

function arrayLike(value: unknown, where: string): ArrayLike<unknown> & ArrayLike<number> {
  if (Array.isArray(value) || value instanceof Uint8Array) return value;
  throw new TypeError(`${where}: expected an array, got ${describeValue(value)}`);
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (ArrayBuffer.isView(value)) return value.constructor.name;
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object') return 'an object';
  return String(value);
}

function valueAt(value: unknown, path: string): unknown {
  let current = value;
  for (const part of path.split('.')) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}
