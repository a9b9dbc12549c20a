import test from 'ava';
import fc from 'fast-check';
import type { LayoutLeaf, Spec, StructSpec } from '@kvm-ts/abi';
import { PairModel, type StructPair } from '../src/index.js';

/** The byte-level oracle must fail on real breaks, or (a)/(b) above prove nothing. */
const typedefs = { __u8: 'unsigned char', __u32: 'unsigned int', __u64: 'unsigned long long' };
const spec = (): Spec => ({ kernel: '6.1.1', arch: 'x86_64', ioctls: {}, structs: {}, constants: {}, typedefs });
const leaf = (path: string, offset: number, size: number, type = `__u${size * 8}`, count?: number): LayoutLeaf => ({ path, offset, size, type, ...(count !== undefined ? { count } : {}) });
const struct = (size: number, layout: LayoutLeaf[]): StructSpec => ({ size, align: 8, kind: 'struct', layout });
const pair = (o: StructSpec, n: StructSpec): StructPair => ({ name: 'kvm_x', old: o, new: n, oldSpec: spec(), newSpec: spec() });
const base = struct(24, [leaf('cap', 0, 4), leaf('flags', 4, 4), leaf('pad', 8, 1, '__u8', 16)]);
const ones = new Uint8Array(32).fill(0xff);
const anyViolation = (m: PairModel) => fc.check(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (b) => m.oldToolOnNewKernel(b).length + m.newToolOnOldKernel(b).length === 0), { numRuns: 50 }).failed;

test('a member carved from reserved bytes passes both ways', (t) => {
  const m = new PairModel(pair(base, struct(24, [leaf('cap', 0, 4), leaf('flags', 4, 4), leaf('kvmts_cookie', 8, 8), leaf('pad', 16, 1, '__u8', 8)])));
  t.deepEqual(m.oldToolOnNewKernel(ones), []);
  t.deepEqual(m.newToolOnOldKernel(ones), []);
  t.false(anyViolation(m));
});

test('moved, retyped, resized and removed members fail', (t) => {
  const moved = new PairModel(pair(base, struct(24, [leaf('flags', 0, 4), leaf('cap', 4, 4), leaf('pad', 8, 1, '__u8', 16)])));
  t.regex(moved.oldToolOnNewKernel(new Uint8Array([1, 0, 0, 0, 2])).join(), /cap: old tool wrote unsigned int\[\]:01000000, new kernel reads cap = unsigned int\[\]:02000000/);
  const retyped = new PairModel(pair(base, struct(24, [leaf('cap', 0, 4, 'int'), leaf('flags', 4, 4), leaf('pad', 8, 1, '__u8', 16)])));
  t.true(retyped.oldToolOnNewKernel(ones).length > 0);
  const grownIntoPad = new PairModel(pair(base, struct(24, [leaf('cap', 0, 4), leaf('flags', 4, 8, '__u64'), leaf('pad', 12, 1, '__u8', 12)])));
  t.true(anyViolation(grownIntoPad), 'a member that grows must not pass as compatible just because it grew into reserved bytes');
  const removed = new PairModel(pair(base, struct(24, [leaf('cap', 0, 4), leaf('pad', 4, 1, '__u8', 20)])));
  t.regex(removed.oldToolOnNewKernel(ones).join(), /pad: reserved in the new layout, but 32 bit\(s\) set by an old member/);
});

test('a new member over bytes an old member used fails (a)', (t) => {
  const m = new PairModel(pair(base, struct(24, [leaf('cap', 0, 2, '__u16'), leaf('extra', 2, 2, '__u16'), leaf('flags', 4, 4), leaf('pad', 8, 1, '__u8', 16)])));
  t.true(m.oldToolOnNewKernel(ones).length > 0);
});
