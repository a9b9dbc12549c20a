import test from 'ava';
import { I8042 } from '../src/devices/legacy/i8042.js';
import { FakeHost } from './helpers/fake-host.js';

function kbc() {
  const host = new FakeHost();
  return { host, k: new I8042(host) };
}

test('claims ports 0x60 and 0x64', (t) => {
  t.deepEqual(kbc().k.ports, [
    [0x60, 1],
    [0x64, 1],
  ]);
});

test('command 0xFE pulses reset: the VM exits with "reboot"', (t) => {
  const { host, k } = kbc();
  t.is(k.read(0x64, 1) & 0x02, 0, 'input buffer empty, so Linux will send the command');
  k.write(0x64, 1, 0xfe);
  t.deepEqual(host.exits, [{ status: 0, reason: 'reboot' }]);
});

test('writing the output port with the reset bit low also resets', (t) => {
  const { host, k } = kbc();
  k.write(0x64, 1, 0xd1);
  k.write(0x60, 1, 0x03);
  t.is(host.exits.length, 0);
  k.write(0x64, 1, 0xd1);
  k.write(0x60, 1, 0x02);
  t.deepEqual(host.exits, [{ status: 0, reason: 'reboot' }]);
});

test('self test answers 0x55 through the data port, with OBF set meanwhile', (t) => {
  const { k } = kbc();
  t.is(k.read(0x64, 1) & 0x01, 0);
  k.write(0x64, 1, 0xaa);
  t.is(k.read(0x64, 1) & 0x01, 0x01);
  t.is(k.read(0x60, 1), 0x55);
  t.is(k.read(0x64, 1) & 0x01, 0);
});

test('command byte reads back what was written', (t) => {
  const { k } = kbc();
  k.write(0x64, 1, 0x20);
  const ctr = k.read(0x60, 1);
  t.is(ctr & 0x04, 0x04, 'system flag set');
  k.write(0x64, 1, 0x60);
  k.write(0x60, 1, 0x65);
  k.write(0x64, 1, 0x20);
  t.is(k.read(0x60, 1), 0x65);
});

test('interface tests pass and the aux loopback echoes with the aux status bit', (t) => {
  const { host, k } = kbc();
  k.write(0x64, 1, 0xab);
  t.is(k.read(0x60, 1), 0x00);
  k.write(0x64, 1, 0xa9);
  t.is(k.read(0x60, 1), 0x00);
  k.write(0x64, 1, 0x60);
  k.write(0x60, 1, 0x03); // both port interrupts on
  k.write(0x64, 1, 0xd3);
  k.write(0x60, 1, 0x5a);
  t.is(k.read(0x64, 1) & 0x21, 0x21);
  t.true(host.irqLevel.get(12));
  t.is(k.read(0x60, 1), 0x5a);
  t.false(host.irqLevel.get(12));
});

test('a byte for the keyboard is acknowledged; reset answers ACK then 0xAA on IRQ 1', (t) => {
  const { host, k } = kbc();
  k.write(0x60, 1, 0xff);
  t.true(host.irqLevel.get(1));
  t.is(k.read(0x60, 1), 0xfa);
  t.is(k.read(0x60, 1), 0xaa);
  t.false(host.irqLevel.get(1));
  t.is(host.exits.length, 0);
});
