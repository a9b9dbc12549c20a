import test from 'ava';
import { MAGIC, REG, VENDOR_ID } from '../src/devices/virtio/mmio.js';
import {
  STATUS_ACKNOWLEDGE,
  STATUS_DEVICE_NEEDS_RESET,
  STATUS_DRIVER,
  STATUS_DRIVER_OK,
  STATUS_FEATURES_OK,
  VIRTIO_F_VERSION_1,
} from '../src/devices/virtio/device.js';
import { VIRTIO_GSIS, VirtioConfigError, virtioCmdline, virtioReserved, virtioSlot } from '../src/devices/virtio/platform.js';
import { BASE, TestDriver } from './helpers/virtio-driver.js';
import { Echo } from './helpers/echo-device.js';

test('identity registers: magic, version 2, device and vendor id; 64-bit features with VERSION_1', (t) => {
  const d = new TestDriver(new Echo());
  t.is(d.r(REG.MagicValue), MAGIC);
  t.is(d.r(REG.Version), 2);
  t.is(d.r(REG.DeviceID), 0x2a);
  t.is(d.r(REG.VendorID), VENDOR_ID);
  d.w(REG.DeviceFeaturesSel, 0);
  t.is(d.r(REG.DeviceFeatures) & 0xff, 1 << 3);
  t.true((d.r(REG.DeviceFeatures) & (3 << 28)) === 3 << 28, 'EVENT_IDX and INDIRECT_DESC');
  d.w(REG.DeviceFeaturesSel, 1);
  t.is(d.r(REG.DeviceFeatures), 1, 'VERSION_1 is bit 32');
  d.w(REG.DeviceFeaturesSel, 2);
  t.is(d.r(REG.DeviceFeatures), 0);
  d.w(REG.QueueSel, 1);
  t.is(d.r(REG.QueueNumMax), 8);
  d.w(REG.QueueSel, 2);
  t.is(d.r(REG.QueueNumMax), 0, 'no third queue');
  t.is(d.r(REG.SHMLenLow), 0xffff_ffff, 'no shared memory regions');
});

test('FEATURES_OK is refused without VERSION_1 or with a feature not offered', (t) => {
  const d = new TestDriver(new Echo());
  t.false(d.negotiate(1n << 3n), 'legacy (no VERSION_1)');
  t.false(d.negotiate((1n << VIRTIO_F_VERSION_1) | (1n << 5n)), 'bit 5 not offered');
  t.true(d.negotiate((1n << VIRTIO_F_VERSION_1) | (1n << 3n)));
});

test('a chain goes to the device on notify; InterruptStatus says used buffer until acknowledged', (t) => {
  const echo = new Echo();
  const d = new TestDriver(echo);
  d.start(2, 8);
  const q = d.queues[0];
  const out = d.buffer(Uint8Array.from([5, 6, 7]));
  const into = d.buffer(8, true);
  const head = d.add(q, [out, into]);
  d.kick(q);
  t.deepEqual(d.takeUsed(q), [{ id: head, len: 3 }]);
  t.deepEqual([...d.mem.read(into.addr, 3)], [5, 6, 7]);
  t.is(d.interrupts, 1);
  t.is(d.r(REG.InterruptStatus), 1);
  d.w(REG.InterruptACK, 1);
  t.is(d.r(REG.InterruptStatus), 0);
  t.like(d.transport.stats, { notifications: { mmio: 1, ioeventfd: 0 }, interrupts: 1 });
  t.like(d.transport.stats.queues[0], { notifications: 1, requests: 1, bytes: 3 });
  d.transport.notify(0, 'ioeventfd');
  t.is(d.transport.stats.notifications.ioeventfd, 1);
});

test('config space reads and writes at 0x100 with any width; beyond it reads zero', (t) => {
  const echo = new Echo();
  const d = new TestDriver(echo);
  const two = new Uint8Array(2);
  d.transport.read(BASE + 0x102n, two);
  t.deepEqual([...two], [3, 4]);
  d.transport.write(BASE + 0x100n, Uint8Array.from([9]));
  t.is(echo.config[0], 9);
  const four = new Uint8Array(4).fill(0xee);
  d.transport.read(BASE + 0x106n, four);
  t.deepEqual([...four], [0, 0, 0, 0], 'crosses the end of the config space');
  t.is(d.transport.stats.badAccesses, 1);
});

test('registers need 32-bit aligned accesses; others are ignored, counted and logged once', (t) => {
  const d = new TestDriver(new Echo());
  const b = new Uint8Array(2);
  d.transport.read(BASE, b);
  t.deepEqual([...b], [0, 0]);
  d.transport.write(BASE + BigInt(REG.Status), Uint8Array.from([1]));
  t.is(d.r(REG.Status), 0);
  d.transport.read(BASE + 2n, new Uint8Array(4));
  t.is(d.transport.stats.badAccesses, 3);
  t.is(d.logs.length, 1);
  t.regex(d.logs[0], /echo: 2-byte read at offset 0x000: not a 32-bit aligned register access/);
});

test('a queue outside RAM sets DEVICE_NEEDS_RESET with a config interrupt, logged once; a reset recovers', (t) => {
  const echo = new Echo();
  const d = new TestDriver(echo);
  for (let round = 0; round < 3; round++) {
    t.true(d.negotiate());
    d.w(REG.QueueSel, 0);
    d.w(REG.QueueNum, 16);
    d.w(REG.QueueDescLow, 0);
    d.w(REG.QueueDescHigh, 0x10); // 64 GiB
    d.w(REG.QueueReady, 1);
    t.is(d.r(REG.QueueReady), 0);
    t.truthy(d.r(REG.Status) & STATUS_DEVICE_NEEDS_RESET);
    t.is(d.r(REG.InterruptStatus) & 2, 2, 'configuration change');
    d.w(REG.Status, STATUS_ACKNOWLEDGE); // the driver cannot clear NEEDS_RESET but by a reset
    t.truthy(d.r(REG.Status) & STATUS_DEVICE_NEEDS_RESET);
  }
  t.is(d.logs.length, 1);
  t.regex(d.logs[0], /echo: device needs reset: queue 0: descriptor table at 0x1000000000 .* not inside one guest RAM region/);
  t.is(d.transport.stats.needsReset, 3);
  d.start(2, 8);
  t.is(d.r(REG.Status), STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
  const q = d.queues[0];
  d.add(q, [d.buffer(Uint8Array.from([1])), d.buffer(1, true)]);
  d.kick(q);
  t.is(d.takeUsed(q).length, 1, 'works again after the reset');
});

test('a misdriven ring and a throwing device become DEVICE_NEEDS_RESET, never an exception', (t) => {
  const echo = new Echo();
  const d = new TestDriver(echo);
  d.start(2, 8);
  const q = d.queues[0];
  d.writeDesc(q, 0, 0x20000, 16, 1, 0); // a loop of one
  d.publish(q, 0);
  t.notThrows(() => d.kick(q));
  t.truthy(d.r(REG.Status) & STATUS_DEVICE_NEEDS_RESET);
  t.regex(d.logs.join('\n'), /loops or is longer than its queue/);
  t.notThrows(() => d.kick(q), 'notifications after the failure are ignored');
  t.is(d.transport.stats.ignoredNotifications, 1);
  d.start(2, 8);
  echo.throwOnNotify = true;
  t.notThrows(() => d.kick(d.queues[0]));
  t.truthy(d.r(REG.Status) & STATUS_DEVICE_NEEDS_RESET);
  t.is(d.transport.stats.needsReset, 2);
});

test('queue registers are frozen while the queue is ready; a reset retires queues and contexts', (t) => {
  const echo = new Echo();
  const d = new TestDriver(echo);
  d.start(2, 8);
  d.w(REG.QueueSel, 0);
  const desc = d.r(REG.QueueDescLow);
  d.w(REG.QueueDescLow, 0x9000);
  t.is(d.r(REG.QueueDescLow), desc);
  t.is(d.r(REG.QueueNum), 8);
  const ctx = echo.ctx!;
  t.true(ctx.alive);
  d.w(REG.Status, 0);
  t.false(ctx.alive, 'a completion arriving now must be dropped');
  t.is(ctx.queue(0), undefined);
  t.is(echo.resets, 2, 'the negotiate() reset and this one');
  t.is(d.r(REG.QueueReady), 0);
  t.is(d.r(REG.InterruptStatus), 0);
});

test('DRIVER_OK without FEATURES_OK, and a queue made ready before FEATURES_OK, are driver errors', (t) => {
  const d = new TestDriver(new Echo());
  d.w(REG.Status, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK);
  t.truthy(d.r(REG.Status) & STATUS_DEVICE_NEEDS_RESET);
  d.w(REG.Status, 0);
  d.w(REG.Status, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
  d.w(REG.QueueSel, 0);
  d.w(REG.QueueNum, 16);
  d.w(REG.QueueReady, 1);
  t.truthy(d.r(REG.Status) & STATUS_DEVICE_NEEDS_RESET);
  t.regex(d.logs[0], /DRIVER_OK without FEATURES_OK/);
});

test('platform: windows from 0xd0000000, GSIs 16-23 first, Linux command-line syntax, one e820 range, at most 16 devices', (t) => {
  t.deepEqual(virtioSlot(0), { base: 0xd000_0000, gsi: 16 });
  t.deepEqual(virtioSlot(8), { base: 0xd000_8000, gsi: 5 });
  t.is(virtioCmdline(2), 'virtio_mmio.device=4K@0xd0000000:16 virtio_mmio.device=4K@0xd0001000:17');
  t.deepEqual(virtioReserved(3), [{ addr: 0xd000_0000, size: 0x3000 }]);
  t.deepEqual(virtioReserved(0), []);
  t.is(new Set(VIRTIO_GSIS).size, 16);
  t.false(VIRTIO_GSIS.some((g) => [0, 1, 2, 3, 4, 8, 12].includes(g)), 'clear of the timer, i8042, cascade, COM ports and RTC');
  t.throws(() => virtioSlot(16), { instanceOf: VirtioConfigError, message: /at most 16 virtio devices/ });
});
