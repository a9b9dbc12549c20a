import test from 'ava';
import { GuestMemory, GuestMemoryError, ramLayout } from '../src/memory.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

test('ramLayout: small guests get one region from 0', (t) => {
  t.deepEqual(ramLayout(512 * MiB), [{ gpa: 0, size: 512 * MiB }]);
  t.deepEqual(ramLayout(3 * GiB), [{ gpa: 0, size: 3 * GiB }]);
});

test('ramLayout: RAM beyond 3 GiB continues at 4 GiB in pieces of at most 4 GiB', (t) => {
  t.deepEqual(ramLayout(4 * GiB), [
    { gpa: 0, size: 3 * GiB },
    { gpa: 4 * GiB, size: 1 * GiB },
  ]);
  t.deepEqual(ramLayout(12 * GiB), [
    { gpa: 0, size: 3 * GiB },
    { gpa: 4 * GiB, size: 4 * GiB },
    { gpa: 8 * GiB, size: 4 * GiB },
    { gpa: 12 * GiB, size: 1 * GiB },
  ]);
  const total = ramLayout(12 * GiB).reduce((s, r) => s + r.size, 0);
  t.is(total, 12 * GiB);
});

test('ramLayout rejects nonsense sizes', (t) => {
  for (const bad of [0, -4096, 1.5, NaN, Infinity, 4097]) {
    t.throws(() => ramLayout(bad), { instanceOf: GuestMemoryError });
  }
});

function twoRegions() {
  return new GuestMemory([
    { gpa: 0, size: 0x2000, bytes: new Uint8Array(0x2000) },
    { gpa: 0x10000, size: 0x1000, bytes: new Uint8Array(0x1000) },
  ]);
}

test('reads and writes land in the right region, little-endian', (t) => {
  const m = twoRegions();
  t.is(m.size, 0x3000);
  m.writeU8(0x10, 0xab);
  m.writeU16(0x20, 0x1234);
  m.writeU32(0x30, 0xdeadbeef);
  m.writeU64(0x10ff8, 0x0102030405060708n);
  t.is(m.readU8(0x10), 0xab);
  t.is(m.readU16(0x20), 0x1234);
  t.is(m.readU32(0x30), 0xdeadbeef);
  t.is(m.readU64(0x10ff8), 0x0102030405060708n);
  t.is(m.regions[1].bytes[0xff8], 0x08);
  t.is(m.readU8(0x21), 0x12);
  m.writeU64(0x40, -1n);
  t.is(m.readU64(0x40), 0xffffffffffffffffn);
});

test('slice is a live view, read is a copy', (t) => {
  const m = twoRegions();
  m.write(0x100, Uint8Array.of(1, 2, 3));
  const view = m.slice(0x100, 3);
  const copy = m.read(0x100, 3);
  view[0] = 9;
  t.is(m.readU8(0x100), 9);
  copy[1] = 7;
  t.is(m.readU8(0x101), 2);
  t.deepEqual([...copy], [1, 7, 3]);
});

test('bigint addresses are accepted', (t) => {
  const m = twoRegions();
  m.writeU32(0x10004n, 77);
  t.is(m.readU32(0x10004n), 77);
});

test('accesses not wholly inside one region throw GuestMemoryError', (t) => {
  const m = twoRegions();
  const bad: Array<() => unknown> = [
    () => m.readU8(0x2000), // the gap
    () => m.readU32(0x1ffe), // straddles the end of region 0
    () => m.read(0x1f00, 0x200),
    () => m.readU64(0x10ffc), // straddles the end of region 1
    () => m.readU8(0x11000),
    () => m.readU8(-1),
    () => m.readU8(NaN),
    () => m.readU8(1.5),
    () => m.readU8(2 ** 60),
    () => m.readU8(-1n),
    () => m.readU8(2n ** 64n),
    () => m.read(0, -1),
    () => m.read(0, Infinity),
    () => m.write(0x1fff, Uint8Array.of(1, 2)),
    () => m.slice(0x10000, 0x1001),
  ];
  for (const f of bad) t.throws(f, { instanceOf: GuestMemoryError });
  t.notThrows(() => m.read(0x2000, 0)); // an empty access at a region's end is fine
  t.is(m.contains(0x1ffe, 2), true);
  t.is(m.contains(0x1ffe, 4), false);
});

test('error messages name the address', (t) => {
  const m = twoRegions();
  const e = t.throws(() => m.readU32(0x5000), { instanceOf: GuestMemoryError });
  t.regex(e!.message, /0x5000/);
  t.false(e!.message.includes('\n'));
});

test('constructor validates regions', (t) => {
  t.throws(() => new GuestMemory([{ gpa: 0, size: 16, bytes: new Uint8Array(8) }]), { instanceOf: GuestMemoryError });
  t.throws(
    () =>
      new GuestMemory([
        { gpa: 0, size: 0x2000, bytes: new Uint8Array(0x2000) },
        { gpa: 0x1000, size: 0x1000, bytes: new Uint8Array(0x1000) },
      ]),
    { instanceOf: GuestMemoryError, message: /overlaps/ },
  );
  t.throws(() => new GuestMemory([{ gpa: -1, size: 1, bytes: new Uint8Array(1) }]), { instanceOf: GuestMemoryError });
});

test('allocate follows ramLayout', (t) => {
  const m = GuestMemory.allocate(4 * MiB);
  t.is(m.size, 4 * MiB);
  t.is(m.regions.length, 1);
  t.is(m.readU8(4 * MiB - 1), 0);
  t.throws(() => m.readU8(4 * MiB), { instanceOf: GuestMemoryError });
});
