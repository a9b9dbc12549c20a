import test from 'ava';
import { abiFromSpec, type Spec } from '../src/index.js';
import { featuresAbi, featuresSpec, hex, view } from './helpers/fixtures.js';

const abi = featuresAbi();

function filled(size: number, byte: number): Uint8Array {
  return new Uint8Array(size).fill(byte);
}

test('scalars decode their signed and unsigned extremes', (t) => {
  const codec = abi.codec('fx_scalars');
  const bytes = new Uint8Array(codec.size);
  const v = view(bytes);
  v.setUint8(0, 0xff);
  v.setUint8(1, 0x80);
  v.setUint8(2, 0xff);
  v.setUint16(4, 0xffff, true);
  v.setUint16(6, 0x8000, true);
  v.setUint32(8, 0xffffffff, true);
  v.setUint32(12, 0x80000000, true);
  v.setBigUint64(16, 2n ** 64n - 1n, true);
  v.setBigUint64(24, 2n ** 63n, true);
  v.setFloat32(32, 1.5, true);
  v.setFloat64(40, -0.1, true);
  v.setBigUint64(48, 0xdead_beef_0000n, true);
  v.setBigUint64(56, 2n ** 64n - 2n, true);
  v.setBigUint64(64, 2n ** 64n - 1n, true);
  v.setBigUint64(72, 2n ** 64n - 1n, true);
  t.deepEqual(codec.decode(v), {
    u8: 255,
    s8: -128,
    ch: -1,
    u16: 65535,
    s16: -32768,
    u32: 4294967295,
    s32: -2147483648,
    u64: 2n ** 64n - 1n,
    s64: -(2n ** 63n),
    f32: 1.5,
    f64: -0.1,
    ptr: 0xdead_beef_0000n,
    ul: 2n ** 64n - 2n,
    u128: 2n ** 128n - 1n,
  });
});

test('scalars encode little-endian and round-trip, leaving padding bytes alone', (t) => {
  const codec = abi.codec('fx_scalars');
  const value = {
    u8: 1,
    s8: -2,
    ch: 65,
    u16: 0x1234,
    s16: -3,
    u32: 0xa1b2c3d4,
    s32: -4,
    u64: 0x0102030405060708n,
    s64: -5n,
    f32: -2.25,
    f64: Math.PI,
    ptr: 0x7fff_0000_1000n,
    ul: 6n,
    u128: (1n << 127n) | 0x0fn,
  };
  const bytes = filled(codec.size, 0xaa);
  codec.encode(value, view(bytes));
  t.is(bytes[3], 0xaa, 'the padding byte after ch is untouched');
  t.is(hex(bytes.subarray(4, 6)), '3412');
  t.is(hex(bytes.subarray(8, 12)), 'd4c3b2a1');
  t.is(hex(bytes.subarray(16, 24)), '0807060504030201');
  t.is(hex(bytes.subarray(64, 80)), '0f000000000000000000000000000080');
  t.deepEqual(codec.decode(view(bytes)), value);
});

test('plain char is signed on x86_64 and unsigned on arm64 and riscv64', (t) => {
  const bytes = new Uint8Array(80);
  bytes[2] = 0xff;
  bytes[1] = 0xff;
  for (const [arch, ch] of [['x86_64', -1], ['arm64', 255], ['riscv64', 255]] as const) {
    const decoded = featuresAbi(arch).codec('fx_scalars').decode(view(bytes));
    t.is(decoded.ch, ch, arch);
    t.is(decoded.s8, -1, `${arch}: signed char stays signed`);
  }
  t.true(featuresAbi('arm64').codec('fx_scalars').schema.safeParse({ ...featuresAbi('arm64').codec('fx_scalars').zero(), ch: 200 }).success);
  t.false(abi.codec('fx_scalars').schema.safeParse({ ...abi.codec('fx_scalars').zero(), ch: 200 }).success);
});

test('8-byte members accept numbers on encode but always decode as bigint', (t) => {
  const codec = abi.codec('fx_scalars');
  const bytes = codec.toBytes({ u64: 4096, s64: -1 });
  const decoded = codec.decode(view(bytes));
  t.is(decoded.u64, 4096n);
  t.is(decoded.s64, -1n);
});

test('bitfields decode from their storage unit, sign-extending signed ones', (t) => {
  const codec = abi.codec('fx_bits');
  const bytes = new Uint8Array(codec.size);
  const v = view(bytes);
  // a=5 (bits 0-2), b=17 (3-7), c=1 (8), s=-8 (9-12, 0b1000), top=0xab (24-31)
  v.setUint32(0, 5 | (17 << 3) | (1 << 8) | (0b1000 << 9) | (0xab << 24), true);
  v.setUint8(4, 9);
  v.setBigUint64(8, (0xfedcba9876n << 2n) | (0b10001n << 42n), true);
  v.setUint32(16, 0xffffffff, true);
  v.setUint8(20, 0x80);
  t.deepEqual(codec.decode(v), {
    a: 5,
    b: 17,
    c: 1,
    s: -8,
    top: 0xab,
    tail: 9,
    wide: 0xfedcba9876n,
    narrow: -15,
    full: 0xffffffff,
    flag: 1,
  });
});

test('encoding a bitfield leaves every neighbouring bit as it was', (t) => {
  const codec = abi.codec('fx_bits');
  const ones = filled(codec.size, 0xff);
  codec.encode({ b: 0 }, view(ones));
  t.is(hex(ones.subarray(0, 4)), '07ffffff', 'only bits 3-7 cleared');
  codec.encode({ wide: 0n }, view(ones));
  t.is(ones.subarray(8, 16).reduce((n, b) => n + b.toString(2).replaceAll('0', '').length, 0), 64 - 40);
  t.is(view(ones).getBigUint64(8, true), ~(((1n << 40n) - 1n) << 2n) & (2n ** 64n - 1n));

  const zeros = new Uint8Array(codec.size);
  codec.encode({ s: -1, flag: 1, narrow: -1 }, view(zeros));
  t.is(view(zeros).getUint32(0, true), 0b1111 << 9);
  t.is(zeros[20], 0x80);
  t.is(view(zeros).getBigUint64(8, true), 0b11111n << 42n);
  t.deepEqual(codec.decode(view(zeros)), { a: 0, b: 0, c: 0, s: -1, top: 0, tail: 0, wide: 0n, narrow: -1, full: 0, flag: 1 });
});

test('bitfield values wrap to their width on encode, like a C store', (t) => {
  const codec = abi.codec('fx_bits');
  const bytes = codec.toBytes({ a: 9, top: 0x1ff });
  t.is(codec.decode(view(bytes)).a, 1);
  t.is(codec.decode(view(bytes)).top, 0xff);
  t.is(bytes[0] & 0b1111_1000, 0, 'a did not spill into b');
});

test('nested members decode into objects following the dotted paths, union members as overlapping views', (t) => {
  const codec = abi.codec('fx_run');
  t.true(codec.hasOverlaps);
  const bytes = new Uint8Array(codec.size);
  const v = view(bytes);
  v.setUint32(0, 2, true);
  v.setUint8(8, 1);
  v.setUint8(9, 4);
  v.setUint16(10, 0x3f8, true);
  v.setUint32(12, 1, true);
  v.setBigUint64(16, 0x1000n, true);
  v.setUint32(40, 7, true);
  v.setInt32(44, -7, true);
  const decoded = codec.decode(v);
  t.is(decoded.exit_reason, 2);
  t.deepEqual(decoded.io, { direction: 1, size: 4, port: 0x3f8, count: 1, data_offset: 0x1000n });
  t.is((decoded.mmio as { phys_addr: bigint }).phys_addr, 0x1_03f8_0401n);
  t.deepEqual((decoded.mmio as { data: Uint8Array }).data, Uint8Array.of(0, 0x10, 0, 0, 0, 0, 0, 0));
  t.deepEqual((decoded.padding as Uint8Array).subarray(0, 4), Uint8Array.of(1, 4, 0xf8, 3));
  t.deepEqual(decoded.hdr, { inner: { x: 7, y: -7 } });
});

test('encode writes only the members given; overlapping ones in layout order (later wins)', (t) => {
  const codec = abi.codec('fx_run');
  const bytes = filled(codec.size, 0x55);
  codec.encode({ io: { port: 0x3f8 } }, view(bytes));
  t.is(hex(bytes.subarray(8, 14)), '5555f8035555');
  codec.encode({ io: { port: 0x1234 }, padding: filled(4, 0xee) }, view(bytes));
  t.is(hex(bytes.subarray(8, 14)), 'eeeeeeee5555', 'padding comes after io in the layout, so it wins');
  codec.encode({ hdr: { inner: { y: -1 } } }, view(bytes));
  t.is(hex(bytes.subarray(40, 48)), '55555555ffffffff');
});

test('the decoded Uint8Array is a copy, not a view of the buffer', (t) => {
  const codec = abi.codec('fx_run');
  const bytes = new Uint8Array(codec.size);
  const decoded = codec.decode(view(bytes));
  (decoded.padding as Uint8Array)[0] = 9;
  t.is(bytes[8], 0);
});

test('arrays of structs decode to arrays of objects; scalar arrays to number/bigint arrays', (t) => {
  const codec = abi.codec('fx_table');
  const bytes = new Uint8Array(codec.size);
  const v = view(bytes);
  v.setUint32(0, 2, true);
  v.setBigUint64(16, 2n ** 63n, true);
  for (let i = 0; i < 8; i++) v.setUint32(32 + i * 4, i + 1, true);
  t.deepEqual(codec.decode(v), {
    nent: 2,
    padding: 0,
    regs: [0n, 2n ** 63n, 0n],
    fixed: [
      { function: 1, index: 2, flags: 3, eax: 4 },
      { function: 5, index: 6, flags: 7, eax: 8 },
    ],
    entries: [],
  });
});

test('flexible arrays decode empty unless a count is given, and encode past the struct size', (t) => {
  const codec = abi.codec('fx_table');
  const entries = [1, 2, 3].map((n) => ({ function: n, index: 0, flags: n * 2, eax: 0xffffffff }));
  const value = { nent: 3, entries };
  t.is(codec.byteLength(value), 64 + 3 * 16);
  const bytes = codec.toBytes(value);
  t.is(bytes.length, 112);
  t.is(view(bytes).getUint32(64 + 16 + 8, true), 4);
  t.deepEqual(codec.decode(view(bytes)).entries, []);
  t.deepEqual(codec.decode(view(bytes), 0, { flexCount: 3 }).entries, entries);
  const error = t.throws(() => codec.decode(view(bytes), 0, { flexCount: 4 }), { instanceOf: RangeError });
  t.is(error?.message, 'struct fx_table: decode needs 128 bytes at offset 0 but the view holds 112');

  const flex = abi.codec('fx_flexbytes');
  const data = flex.toBytes({ len: 3, data: Uint8Array.of(7, 8, 9) });
  t.is(hex(data), '03000000070809');
  t.deepEqual(flex.decode(view(data), 0, { flexCount: 3 }), { len: 3, data: Uint8Array.of(7, 8, 9) });
});

test('arrays of unions with an anonymous element struct decode every member of each element', (t) => {
  const codec = abi.codec('fx_words');
  t.false(codec.hasOverlaps, 'the overlap lives inside the element union');
  t.true(abi.codec('fx_word').hasOverlaps);
  const bytes = Uint8Array.of(2, 0, 0, 0, 0x01, 0x02, 0x03, 0xff, 0, 0, 0, 0x80);
  const decoded = codec.decode(view(bytes));
  t.deepEqual(decoded.words, [
    {
      word: 0xff030201,
      halves: [0x0201, 0xff03],
      bytes: Uint8Array.of(1, 2, 3, 0xff),
      parts: [{ lo: 1, hi: 2 }, { lo: 3, hi: -1 }],
    },
    { word: 0x80000000, halves: [0, 0x8000], bytes: Uint8Array.of(0, 0, 0, 0x80), parts: [{ lo: 0, hi: 0 }, { lo: 0, hi: -128 }] },
  ]);
  const out = new Uint8Array(codec.size);
  codec.encode({ words: [undefined as never, { parts: [undefined as never, { hi: -2 }] }] }, view(out));
  t.is(hex(out), '000000000000000000000000'.slice(0, 22) + 'fe');
});

test('multi-dimensional arrays are flattened row-major', (t) => {
  const codec = abi.codec('fx_matrix');
  const m = [1, -2, 3, -4, 5, -32768];
  const bytes = codec.toBytes({ m });
  t.is(bytes.length, 12);
  t.deepEqual(codec.decode(view(bytes)).m, m);
  t.false(codec.schema.safeParse({ m: [1, 2, 3] }).success);
});

test('enums decode as unsigned integers of the leaf size; char arrays as bytes', (t) => {
  const codec = abi.codec('fx_enum');
  const bytes = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x68, 0x69, 0, 0);
  t.deepEqual(codec.decode(view(bytes)), { mode: 0xffffffff, chars: Uint8Array.of(0x68, 0x69, 0, 0) });
});

test('zero() is the all-zero value, structurally complete', (t) => {
  t.deepEqual(abi.codec('fx_table').zero(), {
    nent: 0,
    padding: 0,
    regs: [0n, 0n, 0n],
    fixed: [
      { function: 0, index: 0, flags: 0, eax: 0 },
      { function: 0, index: 0, flags: 0, eax: 0 },
    ],
    entries: [],
  });
  t.deepEqual(abi.codec('fx_empty').zero(), {});
  t.is(abi.codec('fx_empty').toBytes({}).length, 0);
});

test('decode and encode honour the struct offset inside a larger view', (t) => {
  const codec = abi.codec('fx_entry');
  const bytes = new Uint8Array(40);
  codec.encode({ function: 0x40000000, eax: 3 }, view(bytes), 20);
  t.is(view(bytes).getUint32(20, true), 0x40000000);
  t.deepEqual(codec.decode(view(bytes), 20), { function: 0x40000000, index: 0, flags: 0, eax: 3 });
  const sub = new DataView(bytes.buffer, 16, 24);
  t.is(codec.decode(sub, 4).function, 0x40000000);
  t.throws(() => codec.decode(sub, 9), { message: 'struct fx_entry: decode needs 16 bytes at offset 9 but the view holds 24' });
});

test('encode rejects unknown members, wrong value types and too-long arrays, naming the member', (t) => {
  const regs = abi.codec('fx_run');
  const buffer = view(new Uint8Array(regs.size));
  t.throws(() => regs.encode({ exit_reasn: 1 } as never, buffer), {
    instanceOf: TypeError,
    message: /^fx_run: unknown member 'exit_reasn' \(available: .*exit_reason/,
  });
  t.throws(() => regs.encode({ io: { prot: 1 } } as never, buffer), { message: /^fx_run\.io: unknown member 'prot'/ });
  t.throws(() => regs.encode({ io: 5 } as never, buffer), { message: 'fx_run.io: expected an object, got 5' });
  t.throws(() => regs.encode({ exit_reason: '2' } as never, buffer), { message: 'fx_run.exit_reason: expected a number, got "2"' });
  t.throws(() => abi.codec('fx_scalars').toBytes({ u64: 1.5 }), { message: 'fx_scalars.u64: expected a bigint, got 1.5' });
  t.throws(() => regs.encode({ padding: new Uint8Array(33) }, buffer), {
    instanceOf: RangeError,
    message: 'fx_run.padding: 33 elements given for a 32-element array',
  });
});

test('accessors read and write one member in place, for hot paths', (t) => {
  const codec = abi.codec('fx_run');
  const bytes = new Uint8Array(codec.size + 8);
  const port = codec.accessor<number>('io.port');
  t.deepEqual(port.leaf, { path: 'io.port', offset: 10, size: 2, type: '__u16' });
  port.set(view(bytes), 0x60, 8);
  t.is(view(bytes).getUint16(18, true), 0x60);
  t.is(port.get(view(bytes), 8), 0x60);
  const io = codec.accessor('io');
  t.is(io.leaf, undefined);
  t.deepEqual(io.get(view(bytes), 8), { direction: 0, size: 0, port: 0x60, count: 0, data_offset: 0n });
  t.is(codec.accessor('io.port'), port, 'accessors are cached');
  t.throws(() => codec.accessor('io.prt'), { message: /^struct fx_run has no member 'io\.prt' \(available: .*io\.port/ });
  t.throws(() => port.get(view(bytes), 9), { instanceOf: RangeError });
});

test('codecs are built once per struct and cached', (t) => {
  t.is(abi.codec('fx_run'), abi.codec('fx_run'));
  t.is(abi.codec('fx_run').size, 48);
  t.is(abi.codec('fx_run').name, 'fx_run');
});

test('layouts the runtime cannot honour fail with the struct and leaf named', (t) => {
  const broken = (struct: Spec['structs'][string]) => {
    const spec = featuresSpec();
    return abiFromSpec({ ...spec, structs: { ...spec.structs, bad: struct } }, '6.12');
  };
  const leaf = { path: 'x', offset: 0, size: 4, type: '__u32' };
  const cases: Array<[Spec['structs'][string], string]> = [
    [{ size: 4, align: 4, kind: 'struct', layout: [{ ...leaf, type: 'mystery_t' }] }, "struct bad: leaf 'x': unknown type 'mystery_t'"],
    [{ size: 4, align: 4, kind: 'struct', layout: [{ ...leaf, size: 2 }] }, "struct bad: leaf 'x': size 2 differs from sizeof(__u32) = 4"],
    [{ size: 4, align: 4, kind: 'struct', layout: [{ ...leaf, offset: 2 }] }, "struct bad: leaf 'x': bytes 2..6 overrun the 4-byte struct"],
    [
      { size: 8, align: 4, kind: 'struct', layout: [{ ...leaf, size: 8, count: 1 }] },
      "struct bad: leaf 'x': element size 8 differs from sizeof(__u32) = 4",
    ],
    [
      { size: 8, align: 4, kind: 'struct', layout: [{ ...leaf, count: 3 }] },
      "struct bad: leaf 'x': bytes 0..12 overrun the 8-byte struct",
    ],
    [
      { size: 4, align: 4, kind: 'struct', layout: [{ ...leaf, bitOffset: 30, bitWidth: 3 }] },
      "struct bad: leaf 'x': bits 30+3 do not fit its 4-byte storage unit",
    ],
    [
      { size: 8, align: 4, kind: 'struct', layout: [leaf, { ...leaf, path: 'x.y', offset: 4 }] },
      "struct bad: leaf 'x.y': 'x' is both a leaf and an aggregate",
    ],
    [{ size: 4, align: 4, kind: 'struct', layout: [leaf, { ...leaf }] }, "struct bad: leaf 'x': duplicate path"],
    [
      { size: 4, align: 4, kind: 'struct', layout: [{ ...leaf, count: 2, dims: [2, 2] }] },
      "struct bad: leaf 'x': count 2 disagrees with dims [2, 2]",
    ],
  ];
  for (const [struct, message] of cases) t.throws(() => broken(struct).codec('bad'), { message }, message);
});
