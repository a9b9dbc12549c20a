import test from 'ava';
import { CFG } from '../src/devices/pci/function.js';
import { CAP_ID_MSIX, MSIX_ENABLE, MSIX_FUNCTION_MASK } from '../src/devices/pci/msix.js';
import { INT_CONFIG_CHANGE, INT_USED_BUFFER, STATUS_DEVICE_NEEDS_RESET, TRANSPORT_FEATURES, VIRTIO_F_EVENT_IDX } from '../src/devices/virtio/device.js';
import { BAR0_SIZE, BAR1_SIZE, CAP, CAP_ID_VENDOR, COMMON, LAYOUT, MSIX_PBA, MSIX_TABLE, NO_VECTOR, NOTIFY_MULTIPLIER, VIRTIO_PCI_VENDOR } from '../src/devices/virtio/pci.js';
import { Echo } from './helpers/echo-device.js';
import { PciTestDriver } from './helpers/virtio-pci-driver.js';

/** One echo request on queue 0: returns what came back. */
async function echoOnce(d: PciTestDriver, text: string): Promise<string> {
  const q = d.queues[0];
  const out = d.buffer(new TextEncoder().encode(text));
  const back = d.buffer(text.length, true);
  d.add(q, [out, back]);
  d.kick(q);
  const used = await d.waitUsed(q, 1);
  return used.length === 1 ? new TextDecoder().decode(d.mem.read(back.addr, used[0].len)) : '';
}

test('ids: vendor 0x1af4, device 0x1040 + the virtio id, revision 1, subsystem 0x40 and up; class and header', (t) => {
  const d = new PciTestDriver(new Echo());
  t.is(d.cfgRead(CFG.VendorId, 2), VIRTIO_PCI_VENDOR);
  t.is(d.cfgRead(CFG.DeviceId, 2), 0x1040 + 0x2a);
  t.true(d.cfgRead(CFG.Revision, 1) >= 1);
  t.is(d.cfgRead(CFG.SubsystemVendorId, 2), VIRTIO_PCI_VENDOR);
  t.true(d.cfgRead(CFG.SubsystemId, 2) >= 0x40);
  t.is(d.cfgRead(CFG.HeaderType, 1), 0);
  t.is(d.cfgRead(CFG.Status, 2) & 0x10, 0x10, 'capability list present');
  t.is(d.slot, 1, 'after the host bridge');
});

test('the capability chain: common, notify, ISR, device config, PCI config access and MSI-X, each inside its BAR', (t) => {
  const d = new PciTestDriver(new Echo());
  const caps = d.capabilities();
  t.deepEqual(
    caps.map((c) => (c.id === CAP_ID_VENDOR ? c.type : `id ${c.id}`)),
    [`id ${CAP_ID_MSIX}`, CAP.Common, CAP.Notify, CAP.Isr, CAP.Device, CAP.PciCfg],
  );
  for (const c of caps) {
    t.true(c.at >= 0x40 && c.at % 4 === 0, `capability at ${c.at} is dword aligned past the header`);
    if (c.id !== CAP_ID_VENDOR || c.type === CAP.PciCfg) continue;
    t.is(c.bar, 0);
    t.true(c.offset! + c.length! <= BAR0_SIZE);
    t.is(d.cfgRead(c.at + 2, 1), c.type === CAP.Notify ? 20 : 16, 'cap_len');
  }
  const notify = caps.find((c) => c.type === CAP.Notify)!;
  t.is(d.cfgRead(notify.at + 16), NOTIFY_MULTIPLIER);
  t.is(notify.length, 2 * NOTIFY_MULTIPLIER, 'a doorbell per queue');
  t.is(caps.find((c) => c.type === CAP.Device)!.length, 8, "the device's config size");
  const msix = caps.find((c) => c.id === CAP_ID_MSIX)!;
  t.is((d.cfgRead(msix.at + 2, 2) & 0x7ff) + 1, 3, 'a vector per queue and one for config changes');
  t.is(d.cfgRead(msix.at + 4), MSIX_TABLE | 1, 'table in BAR 1');
  t.is(d.cfgRead(msix.at + 8), MSIX_PBA | 1, 'PBA in BAR 1');
  d.cfgWrite(CFG.Bar0 + 4, 0xffff_ffff);
  t.is(d.cfgRead(CFG.Bar0 + 4), (0x1_0000_0000 - BAR1_SIZE) >>> 0, 'BAR 1 sizes as 4 KiB');
});

test('a request over virtio-pci: queue setup through the common config, a doorbell, an MSI-X message on the queue\'s vector', async (t) => {
  const d = new PciTestDriver(new Echo());
  d.start(2);
  t.is(d.common(COMMON.NumQueues, 2), 2);
  t.is(await echoOnce(d, 'hello pci'), 'hello pci');
  t.deepEqual(d.sent, [{ vector: 0, msg: { addressLo: 0xfee0_0000, addressHi: 0, data: 0x40 } }]);
  t.is(d.transport.stats.notifications.mmio, 1);
  t.is(d.mmioRead(d.structure(CAP.Isr), 1), 0, 'with MSI-X on, queue interrupts leave the ISR alone');
  t.deepEqual(d.logs, []);
});

test('queue fields: the size starts at the maximum, 64-bit ring addresses whole or by halves, vectors beyond the table read NO_VECTOR', (t) => {
  const d = new PciTestDriver(new Echo());
  d.enable();
  d.setCommon(COMMON.QueueSelect, 1, 2);
  t.is(d.common(COMMON.QueueSize, 2), 8);
  t.is(d.common(COMMON.QueueNotifyOff, 2), 1);
  const base = d.structure(CAP.Common);
  const eight = new Uint8Array(8);
  new DataView(eight.buffer).setBigUint64(0, 0x1_2345_6000n, true);
  d.bus.window.write(BigInt(base + COMMON.QueueDesc), eight);
  t.is(d.common(COMMON.QueueDesc, 4), 0x2345_6000);
  t.is(d.common(COMMON.QueueDesc + 4, 4), 1);
  d.setCommon(COMMON.QueueMsixVector, 7, 2);
  t.is(d.common(COMMON.QueueMsixVector, 2), NO_VECTOR);
  d.setCommon(COMMON.ConfigMsixVector, 2, 2);
  t.is(d.common(COMMON.ConfigMsixVector, 2), 2);
  d.setCommon(COMMON.QueueSelect, 5, 2);
  t.is(d.common(COMMON.QueueSize, 2), 0, 'no queue 5');
  t.is(d.common(COMMON.QueueMsixVector, 2), NO_VECTOR);
  d.setCommon(COMMON.DeviceStatus, 0, 1);
  d.setCommon(COMMON.QueueSelect, 1, 2);
  t.is(d.common(COMMON.ConfigMsixVector, 2), NO_VECTOR, 'reset clears the vectors');
  t.is(d.common(COMMON.QueueDesc, 4), 0);
});

test('wrong widths and stray offsets in BAR 0 are counted and logged once; nothing throws', (t) => {
  const d = new PciTestDriver(new Echo());
  d.enable();
  const base = d.bar(0);
  for (let off = 0; off < BAR0_SIZE; off += 0x1fd) for (const size of [1, 2, 4, 8]) {
    const data = new Uint8Array(size).fill(0x5a);
    d.bus.window.write(BigInt(base + off), data);
    d.bus.window.read(BigInt(base + off), data);
  }
  t.true(d.transport.stats.badAccesses > 0);
  t.is(d.logs.length, 1, d.logs.join('\n'));
  t.is(d.transport.deviceStatus & STATUS_DEVICE_NEEDS_RESET, 0);
});

test('MSI-X: a masked vector pends in the PBA and is sent on unmask; the function mask too; off means no message and the ISR', async (t) => {
  const d = new PciTestDriver(new Echo());
  // Without EVENT_IDX every used buffer interrupts (this driver never moves used_event).
  d.start(2, 8, TRANSPORT_FEATURES & ~(1n << VIRTIO_F_EVENT_IDX));
  const table = d.bar(1) + MSIX_TABLE;
  const pba = d.bar(1) + MSIX_PBA;
  const msix = d.capabilities().find((c) => c.id === CAP_ID_MSIX)!;
  d.mmioWrite(table + 12, 1, 4); // mask vector 0
  t.is(await echoOnce(d, 'a'), 'a');
  t.deepEqual(d.sent, []);
  t.is(d.mmioRead(pba, 4) & 1, 1, 'pending');
  d.mmioWrite(table + 12, 0, 4);
  t.is(d.sent.length, 1, 'sent on unmask');
  t.is(d.mmioRead(pba, 4) & 1, 0);
  d.cfgWrite(msix.at + 2, MSIX_ENABLE | MSIX_FUNCTION_MASK, 2);
  t.is(await echoOnce(d, 'b'), 'b');
  t.is(d.sent.length, 1);
  d.cfgWrite(msix.at + 2, MSIX_ENABLE, 2);
  t.is(d.sent.length, 2, 'sent when the function mask clears');
  // A changed entry is what the next message carries.
  d.mmioWrite(table + 8, 0x77, 4);
  t.is(await echoOnce(d, 'c'), 'c');
  t.is(d.sent.at(-1)!.msg.data, 0x77);
  d.cfgWrite(msix.at + 2, 0, 2);
  t.is(await echoOnce(d, 'd'), 'd');
  t.is(d.sent.length, 3);
  t.is(d.mmioRead(d.structure(CAP.Isr), 1), INT_USED_BUFFER, 'MSI-X off: the ISR says why');
  t.is(d.mmioRead(d.structure(CAP.Isr), 1), 0, 'reading the ISR cleared it');
  t.is(d.logs.length, 1, 'one line: MSI-X off, INTx not wired');
});

test('MSI-X table and PBA: only aligned 32/64-bit accesses, only the mask bit of vector control, the PBA read-only', (t) => {
  const d = new PciTestDriver(new Echo());
  d.enable();
  const table = d.bar(1) + MSIX_TABLE;
  t.is(d.mmioRead(table + 12, 4), 1, 'vectors start masked');
  d.mmioWrite(table + 12, 0xffff_fffe, 4);
  t.is(d.mmioRead(table + 12, 4), 0, 'reserved vector-control bits read as zero');
  const eight = new Uint8Array(8);
  new DataView(eight.buffer).setBigUint64(0, 0x0000_0001_fee0_1000n, true);
  d.bus.window.write(BigInt(table + 16), eight);
  t.is(d.mmioRead(table + 16, 4), 0xfee0_1000);
  t.is(d.mmioRead(table + 20, 4), 1);
  d.mmioWrite(table + 2, 0xffff, 2);
  d.mmioWrite(table + 4, 0xffff_ffff, 8);
  d.mmioWrite(d.bar(1) + MSIX_PBA, 0xffff_ffff, 4);
  d.mmioWrite(table + 3 * 16, 1, 4); // past the table's 3 entries
  t.is(d.mmioRead(table, 4), 0, 'the misaligned writes changed nothing');
  t.is(d.mmioRead(d.bar(1) + MSIX_PBA, 4), 0);
  t.is(d.transport.msix.stats.badAccesses, 4);
  t.is(d.logs.length, 1);
});

test('a config change interrupts on the config vector and sets the ISR bit; a failure is a config change', async (t) => {
  const d = new PciTestDriver(new Echo());
  d.start(2);
  d.transport.configChanged();
  t.deepEqual(d.sent.map((s) => s.vector), [2]);
  t.is(d.common(COMMON.ConfigGeneration, 1), 1);
  t.is(d.mmioRead(d.structure(CAP.Isr), 1), INT_CONFIG_CHANGE);
  (d.transport.device as Echo).throwOnNotify = true;
  d.kick(d.queues[0]);
  t.is(d.common(COMMON.DeviceStatus, 1) & STATUS_DEVICE_NEEDS_RESET, STATUS_DEVICE_NEEDS_RESET);
  t.deepEqual(d.sent.map((s) => s.vector), [2, 2]);
});

test('device config through its capability, and BAR 0 through the PCI configuration access capability', (t) => {
  const d = new PciTestDriver(new Echo());
  d.enable();
  t.is(d.mmioRead(d.structure(CAP.Device) + 2, 2), 0x0403);
  d.mmioWrite(d.structure(CAP.Device) + 8, 1, 1);
  t.is(d.transport.stats.badAccesses, 1, 'beyond the 8 bytes');
  const cfg = d.capabilities().find((c) => c.type === CAP.PciCfg)!;
  d.cfgWrite(cfg.at + 4, 0, 1); // BAR 0
  d.cfgWrite(cfg.at + 8, LAYOUT.common + COMMON.NumQueues); // offset
  d.cfgWrite(cfg.at + 12, 2); // length
  t.is(d.cfgRead(cfg.at + 16, 2), 2, 'num_queues through config space');
  d.cfgWrite(cfg.at + 8, LAYOUT.common + COMMON.QueueSelect);
  d.cfgWrite(cfg.at + 16, 1, 2);
  t.is(d.common(COMMON.QueueSelect, 2), 1, 'a write through the window');
});
