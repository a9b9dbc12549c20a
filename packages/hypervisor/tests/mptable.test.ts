import test from 'ava';
import { GuestMemory } from '../src/memory.js';
import { MP_IRQ_EXTINT, MP_IRQ_INT, MP_IRQ_NMI, mptableSize, parseMpTable, writeMpTable } from '../src/loader/mptable.js';

const mem = () => GuestMemory.allocate(2 * 1024 * 1024);

for (const cpus of [1, 2, 4, 64, 254]) {
  test(`MP table for ${cpus} cpu(s) parses with correct checksums`, (t) => {
    const m = mem();
    writeMpTable(m, cpus);
    const mp = parseMpTable(m, 0x9fc00);
    t.is(mp.cpus.length, cpus);
    t.deepEqual(
      mp.cpus.map((c) => c.apicId),
      Array.from({ length: cpus }, (_, i) => i),
    );
    t.true(mp.cpus.every((c) => c.enabled));
    t.deepEqual(
      mp.cpus.map((c) => c.bsp),
      Array.from({ length: cpus }, (_, i) => i === 0),
    );
    t.deepEqual(mp.buses, [{ id: 0, type: 'ISA' }]);
    t.deepEqual(mp.ioapics, [{ id: cpus, address: 0xfec00000 }]);
    t.is(mp.lapicAddress, 0xfee00000);
    t.is(mp.intsrc.length, 24, 'every IOAPIC pin, the virtio-mmio GSIs 16-23 included');
    mp.intsrc.forEach((s, irq) => t.deepEqual(s, { irqType: MP_IRQ_INT, bus: 0, irq, apic: cpus, pin: irq }));
    t.deepEqual(mp.lintsrc, [
      { irqType: MP_IRQ_EXTINT, apic: 0, lint: 0 },
      { irqType: MP_IRQ_NMI, apic: 0xff, lint: 1 },
    ]);
    t.true(0x9fc00 + mptableSize(cpus) <= 0x100000);
  });
}

test('the floating pointer sits in the last KiB of base memory and points right after itself', (t) => {
  const m = mem();
  writeMpTable(m, 2);
  t.is(String.fromCharCode(...m.read(0x9fc00, 4)), '_MP_');
  t.is(m.readU32(0x9fc04), 0x9fc10);
  t.is(m.readU8(0x9fc08), 1);
  t.is(m.readU8(0x9fc09), 4);
  t.is(String.fromCharCode(...m.read(0x9fc10, 4)), 'PCMP');
});

test('a flipped byte breaks the checksum (the check is real)', (t) => {
  const m = mem();
  writeMpTable(m, 2);
  m.writeU8(0x9fc10 + 44 + 1, 7); // first CPU's APIC id
  t.throws(() => parseMpTable(m, 0x9fc00), { message: /checksum/ });
});

test('cpu counts outside 1..254 are refused', (t) => {
  for (const bad of [0, -1, 255, 1.5]) t.throws(() => writeMpTable(mem(), bad), { instanceOf: RangeError });
});
