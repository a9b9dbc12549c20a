/**
 * A hostile guest on the PCI bus: random sequences of config-space accesses (ECAM and conf1, every
 * width, any offset, absent functions), BAR reprogramming and sizing, accesses anywhere in the MMIO
 * hole, MSI-X table/PBA/control writes and common-configuration writes, interleaved with
 * interrupts. Whatever the sequence: nothing throws, the device reads no byte outside guest RAM,
 * and the log stays a few lines however long the sequence is.
 */
import test from 'ava';
import fc from 'fast-check';
import { CONF1_ADDRESS, PCI_ECAM_BASE, PCI_MMIO_BASE, PCI_MMIO_SIZE } from '../src/devices/pci/bus.js';
import { CFG } from '../src/devices/pci/function.js';
import type { QueueMemory } from '../src/devices/virtio/queue.js';
import { COMMON, LAYOUT } from '../src/devices/virtio/pci.js';
import { Echo } from './helpers/echo-device.js';
import { PciTestDriver } from './helpers/virtio-pci-driver.js';

const RUNS = 10_000;
const MEM = 1 << 20;
/** Distinct causes of a log line: a stray hole access, a bad BAR 0 access, a bad MSI-X access, MSI-X off, a needed reset. */
const MAX_LOG_LINES = 5;

const value = fc.oneof(fc.constant(0xffff_ffff), fc.constant(0), fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: 0, max: 0x20 }));
const size = fc.constantFrom(1, 2, 4, 8);

const op = fc.oneof(
  fc.record({ kind: fc.constant('ecam' as const), dev: fc.integer({ min: 0, max: 3 }), fn: fc.integer({ min: 0, max: 1 }), off: fc.oneof(fc.integer({ min: 0, max: 0xff }), fc.integer({ min: 0, max: 0xfff })), size, write: fc.boolean(), value }),
  fc.record({ kind: fc.constant('conf1' as const), address: fc.oneof(fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: 0, max: 0x7ff }).map((a) => (0x8000_0000 | (a << 2)) >>> 0)), port: fc.integer({ min: 0, max: 7 }), size: fc.constantFrom(1, 2, 4), write: fc.boolean(), value }),
  fc.record({ kind: fc.constant('bar' as const), bar: fc.integer({ min: 0, max: 5 }), value: fc.oneof(value, fc.integer({ min: 0, max: 0xfff }).map((p) => (PCI_MMIO_BASE + p * 0x1000) >>> 0)) }),
  fc.record({ kind: fc.constant('command' as const), value: fc.integer({ min: 0, max: 0xffff }) }),
  fc.record({ kind: fc.constant('msix-control' as const), value: fc.integer({ min: 0, max: 0xffff }) }),
  fc.record({ kind: fc.constant('mmio' as const), bar: fc.integer({ min: 0, max: 2 }), off: fc.oneof(fc.integer({ min: 0, max: 0x40 }), fc.integer({ min: 0, max: 0x3fff })), size, write: fc.boolean(), value }),
  fc.record({ kind: fc.constant('common' as const), field: fc.constantFrom(...Object.values(COMMON)), value }),
  fc.record({ kind: fc.constant('hole' as const), off: fc.integer({ min: 0, max: PCI_MMIO_SIZE - 8 }), size, write: fc.boolean(), value }),
  fc.record({ kind: fc.constant('irq' as const), vector: fc.integer({ min: -1, max: 4 }) }),
);

/** Guest RAM that records every range the device asked for, and whether it lay inside RAM. */
function watched(mem: QueueMemory, outside: Array<[number, number]>): QueueMemory {
  const check = (gpa: number, len: number) => {
    if (!(gpa >= 0 && len >= 0 && gpa + len <= MEM)) outside.push([gpa, len]);
  };
  return {
    slice(gpa, len) {
      const v = mem.slice(gpa, len);
      check(gpa, len);
      return v;
    },
    views(gpa, len) {
      const v = mem.views(gpa, len);
      check(gpa, len);
      return v;
    },
  };
}

function bytes(v: number, n: number): Uint8Array {
  const d = new Uint8Array(n);
  for (let i = 0; i < n; i++) d[i] = Math.floor(v / 2 ** (8 * Math.min(i, 3))) & 0xff;
  return d;
}

test(`property: ${RUNS} random config-space/BAR/MSI-X access sequences never throw, never leave guest RAM, log at most ${MAX_LOG_LINES} lines`, (t) => {
  let runs = 0;
  let accesses = 0;
  fc.assert(
    fc.property(fc.boolean(), fc.array(op, { minLength: 4, maxLength: 40, size: "medium" }), (started, ops) => {
      runs++;
      const outside: Array<[number, number]> = [];
      const d = new PciTestDriver(new Echo(), MEM, (mem) => watched(mem, outside));
      if (started) d.start(2, 8);
      const msixAt = d.capabilities().find((c) => c.id === 0x11)!.at + 2;
      for (const o of ops) {
        accesses++;
        switch (o.kind) {
          case 'ecam': {
            const addr = BigInt(PCI_ECAM_BASE + (o.dev << 15) + (o.fn << 12) + o.off);
            if (o.write) d.bus.ecam.write(addr, bytes(o.value, o.size));
            else d.bus.ecam.read(addr, new Uint8Array(o.size));
            break;
          }
          case 'conf1':
            d.bus.conf1.write(CONF1_ADDRESS, 4, o.address);
            if (o.write) d.bus.conf1.write(CONF1_ADDRESS + o.port, o.size, o.value % 2 ** (8 * o.size));
            else d.bus.conf1.read(CONF1_ADDRESS + o.port, o.size);
            break;
          case 'bar':
            d.cfgWrite(CFG.Bar0 + 4 * o.bar, o.value);
            break;
          case 'command':
            d.cfgWrite(CFG.Command, o.value, 2);
            break;
          case 'msix-control':
            d.cfgWrite(msixAt, o.value, 2);
            break;
          case 'mmio': {
            const addr = BigInt(d.bar(o.bar) + o.off);
            if (o.write) d.bus.window.write(addr, bytes(o.value, o.size));
            else d.bus.window.read(addr, new Uint8Array(o.size));
            break;
          }
          case 'common': {
            const addr = BigInt(d.bar(0) + LAYOUT.common + o.field);
            d.bus.window.write(addr, bytes(o.value, o.field >= COMMON.QueueDesc && o.field < COMMON.QueueNotifyData ? 4 : [COMMON.DeviceStatus, COMMON.ConfigGeneration].includes(o.field as 0x14) ? 1 : o.field < COMMON.ConfigMsixVector ? 4 : 2));
            break;
          }
          case 'hole': {
            const addr = BigInt(PCI_MMIO_BASE + o.off);
            if (o.write) d.bus.window.write(addr, bytes(o.value, o.size));
            else d.bus.window.read(addr, new Uint8Array(o.size));
            break;
          }
          case 'irq':
            if (o.vector < 0) d.transport.configChanged();
            else d.transport.msix.fire(o.vector);
            // A doorbell too: with queues live the device walks whatever rings the sequence left.
            d.transport.notify(Math.max(0, o.vector) % 3, 'mmio');
            break;
        }
      }
      if (outside.length > 0) throw new Error(`device touched ${JSON.stringify(outside[0])} outside guest RAM`);
      if (d.logs.length > MAX_LOG_LINES) throw new Error(`${d.logs.length} log lines:\n${d.logs.join('\n')}`);
    }),
    { numRuns: RUNS },
  );
  t.is(runs, RUNS);
  t.log(`${runs} sequences, ${accesses} accesses`);
});
