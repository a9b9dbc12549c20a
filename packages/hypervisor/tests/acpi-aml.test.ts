import test from 'ava';
import fc from 'fast-check';
import { AmlError, buffer, decodePkgLength, device, eisaId, eisaIdValue, encodePkgLength, integer, name, nameString, pkg, PKG_LENGTH_MAX, scope, string, withPkgLength } from '../src/arch/x86/acpi/aml.js';
import { dwordMemory, extendedInterrupt, io, irqNoFlags, memory32Fixed, qwordMemory, RESOURCE_BUS, RESOURCE_IO, resourceTemplate, wordAddress } from '../src/arch/x86/acpi/resources.js';

const bytes = (...b: number[]) => Uint8Array.from(b);
const ascii = (s: string) => Array.from(s, (c) => c.charCodeAt(0));

// ACPI 6.5 §20.2.4: PkgLength. One byte for 0-63; otherwise bits 7-6 count the following bytes
// (1-3), bits 3-0 are the low nibble and each following byte the next 8 bits.
test('PkgLength: the byte strings of §20.2.4 at each width', (t) => {
  t.deepEqual(encodePkgLength(0), bytes(0x00));
  t.deepEqual(encodePkgLength(63), bytes(0x3f));
  t.deepEqual(encodePkgLength(64), bytes(0x40, 0x04));
  t.deepEqual(encodePkgLength(4095), bytes(0x4f, 0xff));
  t.deepEqual(encodePkgLength(4096), bytes(0x80, 0x00, 0x01));
  t.deepEqual(encodePkgLength(2 ** 20 - 1), bytes(0x8f, 0xff, 0xff));
  t.deepEqual(encodePkgLength(2 ** 20), bytes(0xc0, 0x00, 0x00, 0x01));
  t.deepEqual(encodePkgLength(PKG_LENGTH_MAX), bytes(0xcf, 0xff, 0xff, 0xff));
  t.throws(() => encodePkgLength(PKG_LENGTH_MAX + 1), { instanceOf: AmlError });
  t.throws(() => encodePkgLength(-1), { instanceOf: AmlError });
});

const expectedWidth = (v: number) => (v < 64 ? 1 : v < 4096 ? 2 : v < 2 ** 20 ? 3 : 4);
const boundary = fc.constantFrom(0, 62, 63, 64, 65, 4094, 4095, 4096, 4097, 2 ** 20 - 2, 2 ** 20 - 1, 2 ** 20, 2 ** 20 + 1, PKG_LENGTH_MAX);

test('PkgLength: decode(encode(v)) = v in the fewest bytes, at every boundary and anywhere (property)', (t) => {
  fc.assert(
    fc.property(fc.oneof(boundary, fc.integer({ min: 0, max: PKG_LENGTH_MAX })), (v) => {
      const enc = encodePkgLength(v);
      const dec = decodePkgLength(enc);
      return dec.value === v && dec.size === enc.length && enc.length === expectedWidth(v);
    }),
    { numRuns: 20_000 },
  );
  t.pass();
});

test('withPkgLength: the length counts its own bytes, and grows a byte exactly at the boundaries (property)', (t) => {
  // Bodies around the points where the length field must widen: 62/63 (1→2), 4093/4094 (2→3), 2^20-4/2^20-3 (3→4).
  const sizes = fc.oneof(fc.constantFrom(0, 61, 62, 63, 64, 4092, 4093, 4094, 4095, 2 ** 20 - 5, 2 ** 20 - 4, 2 ** 20 - 3, 2 ** 20 - 2), fc.integer({ min: 0, max: 70_000 }));
  fc.assert(
    fc.property(sizes, (n) => {
      const out = withPkgLength(new Uint8Array(n));
      const { value, size } = decodePkgLength(out);
      return value === out.length && size === expectedWidth(value) && (size === 1 || expectedWidth(value - 1) >= size - 1);
    }),
    { numRuns: 2_000 },
  );
  t.is(withPkgLength(new Uint8Array(62)).length, 63);
  t.is(withPkgLength(new Uint8Array(63)).length, 65, '63 body bytes + 1 would be 64: two length bytes');
  t.is(decodePkgLength(withPkgLength(new Uint8Array(4093))).size, 2);
  t.is(decodePkgLength(withPkgLength(new Uint8Array(4094))).size, 3);
  t.is(decodePkgLength(withPkgLength(new Uint8Array(2 ** 20 - 4))).size, 3);
  t.is(decodePkgLength(withPkgLength(new Uint8Array(2 ** 20 - 3))).size, 4);
});

// §20.2.2 NameString.
test('names: segments padded with _, root and parent prefixes, dual and multi name paths', (t) => {
  t.deepEqual(nameString('_SB'), bytes(...ascii('_SB_')));
  t.deepEqual(nameString('\\_SB'), bytes(0x5c, ...ascii('_SB_')));
  t.deepEqual(nameString('^^PCI0'), bytes(0x5e, 0x5e, ...ascii('PCI0')));
  t.deepEqual(nameString('\\_SB.PCI0'), bytes(0x5c, 0x2e, ...ascii('_SB_PCI0')));
  t.deepEqual(nameString('\\_SB.PCI0.S08'), bytes(0x5c, 0x2f, 3, ...ascii('_SB_PCI0S08_')));
  t.deepEqual(nameString('\\'), bytes(0x5c, 0x00));
  for (const bad of ['1ABC', 'ABCDE', 'a', '_SB.', 'AB-C']) t.throws(() => nameString(bad), { instanceOf: AmlError }, bad);
});

// §20.2.3 integers: ZeroOp, OneOp, BytePrefix 0x0A, WordPrefix 0x0B, DWordPrefix 0x0C, QWordPrefix 0x0E.
test('integers: Zero, One and the shortest constant prefix', (t) => {
  t.deepEqual(integer(0), bytes(0x00));
  t.deepEqual(integer(1), bytes(0x01));
  t.deepEqual(integer(2), bytes(0x0a, 0x02));
  t.deepEqual(integer(0xff), bytes(0x0a, 0xff));
  t.deepEqual(integer(0x100), bytes(0x0b, 0x00, 0x01));
  t.deepEqual(integer(0xffff), bytes(0x0b, 0xff, 0xff));
  t.deepEqual(integer(0x10000), bytes(0x0c, 0x00, 0x00, 0x01, 0x00));
  t.deepEqual(integer(0xffff_ffff), bytes(0x0c, 0xff, 0xff, 0xff, 0xff));
  t.deepEqual(integer(0x1_0000_0000), bytes(0x0e, 0, 0, 0, 0, 1, 0, 0, 0));
  t.deepEqual(integer(0xffff_ffff_ffff_ffffn), bytes(0x0e, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff));
  t.throws(() => integer(-1), { instanceOf: AmlError });
  t.throws(() => integer(1n << 64n), { instanceOf: AmlError });
});

test('strings, buffers and packages (§20.2.3, §20.2.5.4)', (t) => {
  t.deepEqual(string('LNRO0005'), bytes(0x0d, ...ascii('LNRO0005'), 0x00));
  t.throws(() => string('é'), { instanceOf: AmlError });
  // BufferOp PkgLength(5) BufferSize(ByteConst 2) 0xAA 0xBB
  t.deepEqual(buffer(bytes(0xaa, 0xbb)), bytes(0x11, 0x05, 0x0a, 0x02, 0xaa, 0xbb));
  // PackageOp PkgLength(6) NumElements(4) Byte 5, Byte 5, Zero, Zero: an _S5_ package.
  t.deepEqual(pkg([integer(5), integer(5), integer(0), integer(0)]), bytes(0x12, 0x08, 0x04, 0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00));
  t.deepEqual(pkg([]), bytes(0x12, 0x02, 0x00));
  t.throws(() => pkg(Array.from({ length: 256 }, () => integer(0))), { instanceOf: AmlError });
});

test('Name, Scope and Device (§20.2.5.1, §20.2.5.2)', (t) => {
  t.deepEqual(name('_UID', integer(0)), bytes(0x08, ...ascii('_UID'), 0x00));
  // ScopeOp PkgLength NameString('\_SB_') and nothing in it.
  t.deepEqual(scope('\\_SB', []), bytes(0x10, 0x06, 0x5c, ...ascii('_SB_')));
  // ExtOpPrefix DeviceOp PkgLength(11) 'COM1' Name(_UID, One).
  t.deepEqual(device('COM1', [name('_UID', integer(1))]), bytes(0x5b, 0x82, 0x0b, ...ascii('COM1'), 0x08, ...ascii('_UID'), 0x01));
});

// §19.6.35 EISAID: PNP0A03 is 0x030AD041, as ASL compilers emit it (DWordPrefix 41 D0 0A 03).
test('EISAID: the compressed id of PNP0A03, PNP0A08 and PNP0501', (t) => {
  t.is(eisaIdValue('PNP0A03'), 0x030ad041);
  t.is(eisaIdValue('PNP0A08'), 0x080ad041);
  t.is(eisaIdValue('PNP0501'), 0x0105d041);
  t.deepEqual(eisaId('PNP0A03'), bytes(0x0c, 0x41, 0xd0, 0x0a, 0x03));
  for (const bad of ['PNP0A0', 'pnp0a03', 'PN10A03', 'PNP0A0G']) t.throws(() => eisaIdValue(bad), { instanceOf: AmlError }, bad);
});

// §6.4 resource descriptors.
test('small descriptors: IO (§6.4.2.5), IRQNoFlags (§6.4.2.1)', (t) => {
  t.deepEqual(io(0x3f8, 0x3f8, 0, 8), bytes(0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08));
  t.deepEqual(irqNoFlags(4), bytes(0x22, 0x10, 0x00));
  t.deepEqual(irqNoFlags(9), bytes(0x22, 0x00, 0x02));
  t.throws(() => irqNoFlags(16), { instanceOf: RangeError });
});

test('large descriptors: Memory32Fixed (§6.4.3.4), Extended Interrupt (§6.4.3.6)', (t) => {
  t.deepEqual(memory32Fixed(0xd000_0000, 0x1000), bytes(0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x10, 0x00, 0x00));
  // Consumer | edge, active high, exclusive; one interrupt, GSI 16.
  t.deepEqual(extendedInterrupt(16, { edge: true, activeLow: false }), bytes(0x89, 0x06, 0x00, 0x03, 0x01, 0x10, 0x00, 0x00, 0x00));
  t.deepEqual(extendedInterrupt(20, { edge: false, activeLow: true }), bytes(0x89, 0x06, 0x00, 0x05, 0x01, 0x14, 0x00, 0x00, 0x00));
});

test('address space descriptors: WordBusNumber, WordIO, DWordMemory, QWordMemory (§6.4.3.5)', (t) => {
  // 0x88, length 13, bus, producer|MinFixed|MaxFixed, no type flags, granularity 0, 0-0, translation 0, length 1.
  t.deepEqual(wordAddress(RESOURCE_BUS, 0, 0), bytes(0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00));
  t.deepEqual(wordAddress(RESOURCE_IO, 0x0d00, 0xffff), bytes(0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0, 0, 0x00, 0x0d, 0xff, 0xff, 0, 0, 0x00, 0xf3));
  const dw = dwordMemory(0xc000_0000, 0xcfff_ffff);
  t.is(dw.length, 26);
  t.deepEqual(dw.subarray(0, 6), bytes(0x87, 0x17, 0x00, 0x00, 0x0c, 0x01));
  t.deepEqual(dw.subarray(10, 18), bytes(0x00, 0x00, 0x00, 0xc0, 0xff, 0xff, 0xff, 0xcf));
  t.deepEqual(dw.subarray(22), bytes(0x00, 0x00, 0x00, 0x10));
  const qw = qwordMemory(0x1_0000_0000n, 0x1_ffff_ffffn);
  t.is(qw.length, 46);
  t.deepEqual(qw.subarray(0, 3), bytes(0x8a, 0x2b, 0x00));
  t.deepEqual(qw.subarray(38), bytes(0, 0, 0, 0, 1, 0, 0, 0));
  t.throws(() => wordAddress(RESOURCE_IO, 0, 0x10000), { instanceOf: RangeError });
  t.throws(() => dwordMemory(2, 1), { instanceOf: RangeError });
});

test('ResourceTemplate: a Buffer closed by an End Tag (§6.4.2.9) whose checksum makes the descriptors sum to 0', (t) => {
  const rt = resourceTemplate([irqNoFlags(4)]);
  // BufferOp PkgLength(8: itself, ByteConst 5, 5 bytes) ByteConst 5, then 22 10 00 79 cs.
  t.deepEqual(rt.subarray(0, 4), bytes(0x11, 0x08, 0x0a, 0x05));
  t.deepEqual(rt.subarray(4, 8), bytes(0x22, 0x10, 0x00, 0x79));
  t.is(rt.subarray(4).reduce((s, b) => (s + b) & 0xff, 0), 0);
});
