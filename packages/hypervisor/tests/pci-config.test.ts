import test from 'ava';
import { CONF1_ADDRESS, CONF1_DATA, HOST_BRIDGE_IDS, PCI_ECAM_BASE, PCI_ECAM_SIZE, PCI_MMIO_BASE, PCI_MMIO_SIZE, PciBus, pciReserved } from '../src/devices/pci/bus.js';
import { CFG, COMMAND_MEMORY, CONFIG_SIZE, PciConfigError, PciFunction } from '../src/devices/pci/function.js';
import { buildE820, E820_RESERVED } from '../src/loader/e820.js';
import { GuestMemory } from '../src/memory.js';

/** A function with BAR 0 of 16 KiB and BAR 2 of 4 KiB that records what reaches each BAR. */
function sample(bus: PciBus) {
  const fn = new PciFunction('sample', { vendor: 0x1234, device: 0x5678, classCode: 0xff_00_00, revision: 3, subsystemVendor: 0xabcd, subsystem: 0x4242 });
  const seen: Array<[number, number, number, boolean]> = [];
  fn.addBar(0, 0x4000, { read: (o, d) => (d.fill(0xaa), seen.push([0, o, d.length, false])), write: (o, d) => void seen.push([0, o, d.length, true]) });
  fn.addBar(2, 0x1000, { read: (o, d) => (d.fill(0xbb), seen.push([2, o, d.length, false])), write: (o, d) => void seen.push([2, o, d.length, true]) });
  fn.addCapability(0x09, Uint8Array.from([4, 0xee]), Uint8Array.from([0, 0xff]));
  const slot = bus.add(fn);
  return { fn, slot, seen };
}

const ecamAddr = (dev: number, fn: number, off: number) => BigInt(PCI_ECAM_BASE + (dev << 15) + (fn << 12) + off);
const le = (d: Uint8Array) => d.reduce((v, b, i) => v + b * 2 ** (8 * i), 0);

function ecamRead(bus: PciBus, dev: number, fn: number, off: number, size: number): Uint8Array {
  const d = new Uint8Array(size);
  bus.ecam.read(ecamAddr(dev, fn, off), d);
  return d;
}

function conf1Read(bus: PciBus, dev: number, fn: number, off: number, size: number): number {
  bus.conf1.write(CONF1_ADDRESS, 4, (0x8000_0000 | (dev << 11) | (fn << 8) | (off & 0xfc)) >>> 0);
  return bus.conf1.read(CONF1_DATA + (off & 3), size);
}

function conf1Write(bus: PciBus, dev: number, fn: number, off: number, size: number, value: number): void {
  bus.conf1.write(CONF1_ADDRESS, 4, (0x8000_0000 | (dev << 11) | (fn << 8) | (off & 0xfc)) >>> 0);
  bus.conf1.write(CONF1_DATA + (off & 3), size, value);
}

test('the host bridge at 00:00.0: its ids and class through conf1 and ECAM', (t) => {
  const bus = new PciBus(() => {});
  t.is(conf1Read(bus, 0, 0, CFG.VendorId, 2), HOST_BRIDGE_IDS.vendor);
  t.is(conf1Read(bus, 0, 0, CFG.DeviceId, 2), HOST_BRIDGE_IDS.device);
  t.is(conf1Read(bus, 0, 0, 0x08, 4) >>> 8, 0x06_00_00, 'class: host bridge');
  t.is(le(ecamRead(bus, 0, 0, CFG.VendorId, 4)), (HOST_BRIDGE_IDS.device << 16) | HOST_BRIDGE_IDS.vendor);
  t.is(conf1Read(bus, 0, 0, 0x0a, 2), 0x0600, 'the class word Linux checks (PCI_CLASS_DEVICE)');
});

test('every width at every offset of a function\'s 256 bytes reads what config space holds, through ECAM and conf1', (t) => {
  const bus = new PciBus(() => {});
  const { fn, slot } = sample(bus);
  const image = fn.config.slice();
  for (const size of [1, 2, 4, 8]) {
    for (let off = 0; off < CONFIG_SIZE; off++) {
      const got = ecamRead(bus, slot, 0, off, size);
      const want = new Uint8Array(size).fill(0xff);
      want.set(image.subarray(off, Math.min(off + size, CONFIG_SIZE)));
      t.deepEqual([...got], [...want], `ECAM ${size}-byte read at ${off}`);
      if (size === 8) continue;
      // conf1: only the bytes inside the 4-byte data window belong to the register.
      const lane = off & 3;
      const c = conf1Read(bus, slot, 0, off, size);
      const wantC = [...want].map((b, i) => (lane + i < 4 ? b : 0xff));
      t.is(c, le(Uint8Array.from(wantC)), `conf1 ${size}-byte read at ${off}`);
    }
  }
  t.deepEqual([...fn.config], [...image], 'reads change nothing');
});

test('writes of every width at every offset change only writable bits, never read-only ones', (t) => {
  const bus = new PciBus(() => {});
  const { fn, slot } = sample(bus);
  const readOnly = [CFG.VendorId, CFG.VendorId + 1, CFG.DeviceId, CFG.DeviceId + 1, CFG.Revision, 0x09, 0x0a, 0x0b, CFG.HeaderType, CFG.SubsystemVendorId, CFG.SubsystemId, CFG.CapabilityList, 0x40, 0x41, 0x42];
  const before = fn.config.slice();
  for (const size of [1, 2, 4]) {
    for (let off = 0; off < CONFIG_SIZE; off++) {
      conf1Write(bus, slot, 0, off, size, 0xffff_ffff);
      bus.ecam.write(ecamAddr(slot, 0, off), new Uint8Array(size).fill(0xff));
    }
  }
  for (const at of readOnly) t.is(fn.config[at], before[at], `byte ${at} is read-only`);
  t.is(fn.config[0x43], 0xff, 'a writable capability byte took the write');
  t.is(fn.config[CFG.InterruptLine], 0xff, 'interrupt line is writable');
  t.is(fn.config[CFG.InterruptPin], 0, 'no INTx pin');
  // Beyond the 256 bytes through ECAM: all-ones, writes go nowhere.
  bus.ecam.write(ecamAddr(slot, 0, 0x100), Uint8Array.of(1, 2, 3, 4));
  t.deepEqual([...ecamRead(bus, slot, 0, 0xffc, 4)], [0xff, 0xff, 0xff, 0xff]);
  t.deepEqual([...ecamRead(bus, slot, 0, 0xfe, 4)], [fn.config[0xfe], fn.config[0xff], 0xff, 0xff], 'a read across the end is clipped');
});

test('absent functions read as all-ones at every width; writes to them go nowhere', (t) => {
  const logs: string[] = [];
  const bus = new PciBus((l) => logs.push(l));
  sample(bus);
  for (const [dev, fn] of [[2, 0], [31, 0], [1, 1], [0, 7], [17, 3]]) {
    for (const size of [1, 2, 4]) {
      for (const off of [0, 1, 2, 3, 0x10, 0x3e, 0xfc, 0xff]) {
        t.is(le(ecamRead(bus, dev, fn, off, size)), 2 ** (8 * size) - 1, `${dev}.${fn} +${off}/${size} ECAM`);
        t.is(conf1Read(bus, dev, fn, off, size), 2 ** (8 * size) - 1, `${dev}.${fn} +${off}/${size} conf1`);
        conf1Write(bus, dev, fn, off, size, 0);
      }
    }
  }
  t.is(le(ecamRead(bus, 2, 0, 0, 4)), 0xffff_ffff);
  t.deepEqual(logs, [], 'an enumeration is not an error');
});

test('conf1: the address register takes dword writes only; disabled or other-bus cycles read all-ones', (t) => {
  const bus = new PciBus(() => {});
  bus.conf1.write(CONF1_ADDRESS, 4, 0x8000_0000);
  t.is(bus.conf1.read(CONF1_ADDRESS, 4), 0x8000_0000, 'Linux\'s type-1 probe reads the address back');
  bus.conf1.write(CONF1_ADDRESS, 4, 0xffff_ffff);
  t.is(bus.conf1.read(CONF1_ADDRESS, 4), 0x80ff_fffc, 'reserved and type bits read as zero');
  bus.conf1.write(CONF1_ADDRESS + 3, 1, 0x01);
  t.is(bus.conf1.read(CONF1_ADDRESS, 4), 0x80ff_fffc, 'a byte write is not the address register');
  t.is(bus.conf1.read(CONF1_ADDRESS + 1, 2), 0xffff);
  bus.conf1.write(CONF1_ADDRESS, 4, 0x0000_0000);
  t.is(bus.conf1.read(CONF1_DATA, 4), 0xffff_ffff, 'enable bit clear');
  bus.conf1.write(CONF1_ADDRESS, 4, 0x8001_0000);
  t.is(bus.conf1.read(CONF1_DATA, 4), 0xffff_ffff, 'bus 1 does not exist');
  bus.conf1.write(CONF1_ADDRESS, 4, 0x8000_0000);
  t.is(bus.conf1.read(CONF1_DATA + 2, 2), HOST_BRIDGE_IDS.device);
});

test('BAR sizing: all-ones reads back the size mask, unimplemented BARs and the ROM read 0, the base comes back', (t) => {
  const bus = new PciBus(() => {});
  const { slot } = sample(bus);
  const bar = (i: number) => CFG.Bar0 + 4 * i;
  const bases = [0, 1, 2, 3, 4, 5].map((i) => conf1Read(bus, slot, 0, bar(i), 4));
  for (const [i, mask] of [[0, 0xffff_c000], [1, 0], [2, 0xffff_f000], [3, 0], [4, 0], [5, 0]] as const) {
    conf1Write(bus, slot, 0, bar(i), 4, 0xffff_ffff);
    t.is(conf1Read(bus, slot, 0, bar(i), 4), mask, `BAR ${i}`);
    conf1Write(bus, slot, 0, bar(i), 4, bases[i]);
    t.is(conf1Read(bus, slot, 0, bar(i), 4), bases[i]);
  }
  conf1Write(bus, slot, 0, CFG.RomAddress, 4, 0xffff_ffff);
  t.is(conf1Read(bus, slot, 0, CFG.RomAddress, 4), 0, 'no expansion ROM');
  // Sizing by halves (16-bit accesses) gives the same answer.
  bus.ecam.write(ecamAddr(slot, 0, bar(0) + 2), Uint8Array.of(0xff, 0xff));
  bus.ecam.write(ecamAddr(slot, 0, bar(0)), Uint8Array.of(0xff, 0xff));
  t.is(le(ecamRead(bus, slot, 0, bar(0), 4)), 0xffff_c000);
});

test('BARs are placed by the VMM in the MMIO hole, naturally aligned and apart; the hole and ECAM are e820-reserved', (t) => {
  const bus = new PciBus(() => {});
  const a = sample(bus);
  const b = sample(bus);
  t.deepEqual([a.slot, b.slot], [1, 2]);
  const ranges = [a, b].flatMap(({ fn }) => [0, 2].map((i) => [fn.barBase(i), fn.barSize(i)!] as const));
  for (const [base, size] of ranges) {
    t.true(base >= PCI_MMIO_BASE && base + size <= PCI_MMIO_BASE + PCI_MMIO_SIZE);
    t.is(base % size, 0);
  }
  for (let i = 0; i < ranges.length; i++) for (let j = i + 1; j < ranges.length; j++) t.true(ranges[i][0] + ranges[i][1] <= ranges[j][0] || ranges[j][0] + ranges[j][1] <= ranges[i][0]);
  const e820 = buildE820(GuestMemory.allocate(64 << 20), pciReserved());
  for (const [addr, size] of [[PCI_MMIO_BASE, PCI_MMIO_SIZE], [PCI_ECAM_BASE, PCI_ECAM_SIZE]]) t.truthy(e820.find((e) => e.type === E820_RESERVED && e.addr === addr && e.size === size));
});

test('the MMIO hole routes to a BAR only while memory decoding is on, follows a moved BAR, and logs one line for strays', (t) => {
  const logs: string[] = [];
  const bus = new PciBus((l) => logs.push(l));
  const { fn, slot, seen } = sample(bus);
  const base = fn.barBase(0);
  const d = new Uint8Array(4);
  bus.window.read(BigInt(base + 8), d);
  t.deepEqual([...d], [0xff, 0xff, 0xff, 0xff], 'decoding off: nothing answers');
  t.is(seen.length, 0);
  let changes = 0;
  fn.onDecodeChange = () => changes++;
  conf1Write(bus, slot, 0, CFG.Command, 2, COMMAND_MEMORY);
  t.is(changes, 1);
  bus.window.read(BigInt(base + 8), d);
  t.deepEqual(seen.at(-1), [0, 8, 4, false]);
  t.deepEqual([...d], [0xaa, 0xaa, 0xaa, 0xaa]);
  bus.window.write(BigInt(fn.barBase(2) + 0xffc), Uint8Array.of(1, 2, 3, 4));
  t.deepEqual(seen.at(-1), [2, 0xffc, 4, true]);
  // Moved to the top of the hole: the old address is nobody's, the new one is BAR 0.
  const moved = PCI_MMIO_BASE + PCI_MMIO_SIZE - 0x4000;
  conf1Write(bus, slot, 0, CFG.Bar0, 4, moved);
  t.is(changes, 2);
  bus.window.read(BigInt(moved), d);
  t.deepEqual(seen.at(-1), [0, 0, 4, false]);
  const n = seen.length;
  for (let i = 0; i < 100; i++) bus.window.read(BigInt(base + 8), d);
  t.is(seen.length, n);
  t.is(logs.length, 1, 'one line for every stray access');
  t.is(bus.stats.unclaimed, 101);
});

test('a function refuses BARs that are not a power of two and capabilities that overflow config space', (t) => {
  const fn = new PciFunction('x', { vendor: 1, device: 2, classCode: 0 });
  t.throws(() => fn.addBar(0, 0x3000, { read() {}, write() {} }), { instanceOf: PciConfigError });
  t.throws(() => fn.addBar(6, 0x1000, { read() {}, write() {} }), { instanceOf: PciConfigError });
  t.throws(() => fn.addCapability(9, new Uint8Array(250)), { instanceOf: PciConfigError });
  const bus = new PciBus(() => {});
  for (let i = 1; i < 32; i++) bus.add(new PciFunction(`f${i}`, { vendor: 1, device: 2, classCode: 0 }));
  t.throws(() => bus.add(new PciFunction('one too many', { vendor: 1, device: 2, classCode: 0 })), { instanceOf: PciConfigError });
});
