import test from 'ava';
import { featuresAbi } from './helpers/fixtures.js';

const abi = featuresAbi();

function accepts(struct: string, patch: Record<string, unknown>): boolean {
  const codec = abi.codec(struct);
  return codec.schema.safeParse({ ...codec.zero(), ...patch }).success;
}

test('the zero value of every fixture struct is valid', (t) => {
  for (const name of Object.keys(abi.spec.structs)) {
    const codec = abi.codec(name);
    t.true(codec.schema.safeParse(codec.zero()).success, name);
  }
});

const extremes: Array<[string, unknown, unknown, unknown]> = [
  // member, lowest valid, highest valid, one past (either end)
  ['u8', 0, 255, 256],
  ['s8', -128, 127, -129],
  ['ch', -128, 127, 128],
  ['u16', 0, 65535, -1],
  ['s16', -32768, 32767, 32768],
  ['u32', 0, 4294967295, 4294967296],
  ['s32', -2147483648, 2147483647, -2147483649],
  ['u64', 0n, 2n ** 64n - 1n, 2n ** 64n],
  ['s64', -(2n ** 63n), 2n ** 63n - 1n, -(2n ** 63n) - 1n],
  ['ptr', 0n, 2n ** 64n - 1n, -1n],
  ['u128', 0n, 2n ** 128n - 1n, 2n ** 128n],
];

for (const [member, low, high, outside] of extremes) {
  test(`fx_scalars.${member}: the C type's range, no further`, (t) => {
    t.true(accepts('fx_scalars', { [member]: low }));
    t.true(accepts('fx_scalars', { [member]: high }));
    t.false(accepts('fx_scalars', { [member]: outside }));
  });
}

test('integers must be integers of the right JS type', (t) => {
  t.false(accepts('fx_scalars', { u32: 1.5 }), 'fraction');
  t.false(accepts('fx_scalars', { u32: 1n }), 'bigint where number expected');
  t.false(accepts('fx_scalars', { u64: 1 }), 'number where bigint expected');
  t.false(accepts('fx_scalars', { u8: '1' }), 'string');
});

test('floats: a double takes any number, a float only values a float can hold', (t) => {
  t.true(accepts('fx_scalars', { f64: 0.1 }));
  t.true(accepts('fx_scalars', { f64: Number.NaN }));
  t.true(accepts('fx_scalars', { f64: -Infinity }));
  t.true(accepts('fx_scalars', { f32: 1.5 }));
  t.true(accepts('fx_scalars', { f32: Math.fround(0.1) }));
  t.false(accepts('fx_scalars', { f32: 0.1 }));
  t.false(accepts('fx_scalars', { f32: 1e300 }));
  t.false(accepts('fx_scalars', { f64: 1n }));
});

test('plain char takes 0..255 on arm64, -128..127 on x86_64', (t) => {
  const arm = featuresAbi('arm64').codec('fx_scalars');
  t.true(arm.schema.safeParse({ ...arm.zero(), ch: 255 }).success);
  t.false(arm.schema.safeParse({ ...arm.zero(), ch: -1 }).success);
  t.false(accepts('fx_scalars', { ch: 255 }));
  t.true(accepts('fx_scalars', { ch: -1 }));
});

test('bitfields take the range of their width and signedness', (t) => {
  t.true(accepts('fx_bits', { a: 7 }));
  t.false(accepts('fx_bits', { a: 8 }));
  t.false(accepts('fx_bits', { a: -1 }));
  t.true(accepts('fx_bits', { s: -8 }));
  t.true(accepts('fx_bits', { s: 7 }));
  t.false(accepts('fx_bits', { s: 8 }));
  t.false(accepts('fx_bits', { s: -9 }));
  t.true(accepts('fx_bits', { full: 0xffffffff }));
  t.true(accepts('fx_bits', { wide: 2n ** 40n - 1n }), 'wider than 32 bits: bigint');
  t.false(accepts('fx_bits', { wide: 2n ** 40n }));
  t.false(accepts('fx_bits', { wide: 1 }));
  t.true(accepts('fx_bits', { narrow: -16 }), 'a 5-bit field of a signed 64-bit unit is a number');
  t.false(accepts('fx_bits', { narrow: 16 }));
});

test('arrays must have exactly their length; flexible arrays any length', (t) => {
  t.true(accepts('fx_run', { padding: new Uint8Array(32) }));
  t.false(accepts('fx_run', { padding: new Uint8Array(31) }));
  t.false(accepts('fx_run', { padding: new Array(32).fill(0) }), 'byte arrays are Uint8Array');
  t.true(accepts('fx_table', { regs: [0n, 1n, 2n ** 64n - 1n] }));
  t.false(accepts('fx_table', { regs: [0n, 1n] }));
  t.false(accepts('fx_table', { regs: [0n, 1n, 2n ** 64n] }), 'elements are range-checked');
  t.true(accepts('fx_table', { entries: [] }));
  t.true(accepts('fx_table', { entries: [{ function: 1, index: 2, flags: 3, eax: 4 }] }));
  t.false(accepts('fx_table', { entries: [{ function: 1, index: 2, flags: 3 }] }), 'element members are required');
  t.false(accepts('fx_table', { fixed: [{ function: 1, index: 2, flags: 3, eax: 4 }] }));
  t.true(accepts('fx_flexbytes', { data: new Uint8Array(100) }));
});

test('objects are strict at every level, so misspelt members are caught', (t) => {
  const codec = abi.codec('fx_run');
  const zero = codec.zero() as Record<string, Record<string, unknown>>;
  const typo = codec.schema.safeParse({ ...zero, io: { ...zero.io, prot: 1 } });
  t.false(typo.success);
  t.deepEqual(typo.error?.issues.map((i) => [i.code, i.path]), [['unrecognized_keys', ['io']]]);
  t.false(codec.schema.safeParse({ ...zero, hdr: { inner: { x: 1 } } }).success, 'missing nested member');
  t.false(codec.schema.safeParse({ ...zero, extra: 1 }).success);
});

test('array elements that are unions validate every member', (t) => {
  const words = abi.codec('fx_words');
  const value = words.zero() as { count: number; words: Array<Record<string, unknown>> };
  t.true(words.schema.safeParse(value).success);
  const bad = { ...value, words: [value.words[0], { ...value.words[1], parts: [{ lo: 0, hi: 0 }, { lo: 0, hi: 200 }] }] };
  t.false(words.schema.safeParse(bad).success, 'hi is a signed char');
});

test('schemas are built once per struct', (t) => {
  t.is(abi.codec('fx_run').schema, abi.codec('fx_run').schema);
});
