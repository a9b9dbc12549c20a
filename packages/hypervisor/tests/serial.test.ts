import test from 'ava';
import { Serial, IIR_CTI, IIR_NO_INT, IIR_RDA, IIR_THRE, IIR_RLS, IIR_MSI } from '../src/devices/legacy/serial.js';
import { FakeHost } from './helpers/fake-host.js';

const B = 0x3f8;
const [THR, IER, IIR, LCR, MCR, LSR, MSR, SCR] = [0, 1, 2, 3, 4, 5, 6, 7].map((o) => B + o);
const FCR = IIR;

function uart() {
  const host = new FakeHost();
  return { host, s: new Serial(host) };
}

test('claims 8 ports at COM1', (t) => {
  const { s } = uart();
  t.deepEqual(s.ports, [[0x3f8, 8]]);
});

test('THR writes go to the console', (t) => {
  const { host, s } = uart();
  for (const c of 'hi\n') s.write(THR, 1, c.charCodeAt(0));
  t.is(host.consoleText(), 'hi\n');
});

test('LSR: THRE and TEMT always, DR while data waits', (t) => {
  const { s } = uart();
  t.is(s.read(LSR, 1), 0x60);
  s.feed(Uint8Array.of(0x41));
  t.is(s.read(LSR, 1), 0x61);
  t.is(s.read(THR, 1), 0x41);
  t.is(s.read(LSR, 1), 0x60);
  t.is(s.read(THR, 1), 0, 'empty RBR reads 0');
});

test('DLAB switches offsets 0/1 to the divisor latch', (t) => {
  const { host, s } = uart();
  s.write(LCR, 1, 0x83);
  s.write(THR, 1, 0x01);
  s.write(IER, 1, 0x00);
  t.is(s.read(THR, 1), 0x01);
  t.is(s.read(IER, 1), 0x00);
  t.is(host.console.length, 0, 'a divisor write is not a character');
  s.write(LCR, 1, 0x03);
  s.write(IER, 1, 0x05);
  t.is(s.read(IER, 1), 0x05);
  t.is(s.read(LCR, 1), 0x03);
  s.write(LCR, 1, 0x83);
  t.is(s.read(THR, 1), 0x01, 'divisor kept');
});

test('scratch register holds any value', (t) => {
  const { s } = uart();
  for (const v of [0x00, 0x55, 0xaa, 0xff]) {
    s.write(SCR, 1, v);
    t.is(s.read(SCR, 1), v);
  }
});

test('RX FIFO: 16 bytes with FIFO on, 1 byte without; overrun sets OE', (t) => {
  const { s } = uart();
  t.is(s.feed(Uint8Array.of(1, 2, 3)), 1);
  t.is(s.read(LSR, 1) & 0x02, 0x02, 'overrun reported');
  t.is(s.read(LSR, 1) & 0x02, 0, 'OE clears on read');
  s.write(FCR, 1, 0x07);
  t.is(s.rxSpace(), 16);
  t.is(s.feed(new Uint8Array(20).map((_, i) => i)), 16);
  const got: number[] = [];
  while (s.read(LSR, 1) & 1) got.push(s.read(THR, 1));
  t.deepEqual(got, Array.from({ length: 16 }, (_, i) => i));
  t.is(s.read(IIR, 1) & 0xc0, 0xc0, 'IIR shows FIFOs enabled');
  s.feed(Uint8Array.of(9));
  s.write(FCR, 1, 0x03);
  t.is(s.read(LSR, 1) & 1, 0, 'FCR bit 1 clears the RX FIFO');
});

test('THRE interrupt: raised when enabled, cleared by reading IIR, raised again after a write', (t) => {
  const { host, s } = uart();
  t.is(s.read(IIR, 1) & 0x0f, IIR_NO_INT);
  s.write(IER, 1, 0x02);
  t.true(host.irqLevel.get(4));
  t.is(s.read(IIR, 1) & 0x0f, IIR_THRE);
  t.false(host.irqLevel.get(4), 'reading IIR acknowledged THRE');
  t.is(s.read(IIR, 1) & 0x0f, IIR_NO_INT);
  s.write(THR, 1, 0x41);
  t.true(host.irqLevel.get(4));
  s.write(IER, 1, 0x00);
  t.false(host.irqLevel.get(4), 'disabling the source drops the line');
});

test('RDA interrupt per IER, with trigger level and character timeout', (t) => {
  const { host, s } = uart();
  s.write(IER, 1, 0x01);
  t.falsy(host.irqLevel.get(4));
  s.feed(Uint8Array.of(0x61));
  t.true(host.irqLevel.get(4));
  t.is(s.read(IIR, 1) & 0x0f, IIR_RDA);
  s.read(THR, 1);
  t.false(host.irqLevel.get(4));
  s.write(FCR, 1, 0x81); // FIFO on, trigger at 8
  s.feed(Uint8Array.of(1, 2, 3));
  t.is(s.read(IIR, 1) & 0x0f, IIR_CTI, 'below the trigger: timeout interrupt');
  s.feed(new Uint8Array(5));
  t.is(s.read(IIR, 1) & 0x0f, IIR_RDA);
});

test('priority: line status over received data over THRE', (t) => {
  const { s } = uart();
  s.write(IER, 1, 0x07);
  s.feed(Uint8Array.of(1, 2));
  t.is(s.read(IIR, 1) & 0x0f, IIR_RLS);
  s.read(LSR, 1);
  t.is(s.read(IIR, 1) & 0x0f, IIR_RDA);
  s.read(THR, 1);
  t.is(s.read(IIR, 1) & 0x0f, IIR_THRE);
});

test('loopback: THR comes back in RBR, MSR mirrors MCR, nothing reaches the console', (t) => {
  const { host, s } = uart();
  s.write(MCR, 1, 0x1a); // LOOP | OUT2 | RTS — Linux's autoconfig probe
  t.is(s.read(MSR, 1) & 0xf0, 0x90);
  s.write(MCR, 1, 0x1f);
  t.is(s.read(MSR, 1) & 0xf0, 0xf0);
  s.write(THR, 1, 0xa5);
  t.is(s.read(LSR, 1) & 1, 1);
  t.is(s.read(THR, 1), 0xa5);
  t.is(host.console.length, 0);
  t.is(s.feed(Uint8Array.of(1)), 0, 'the outside world is disconnected in loopback');
  s.write(MCR, 1, 0x0b);
  t.is(s.read(MSR, 1) & 0xf0, 0xb0, 'back to a connected peer');
});

test('modem status interrupt on delta bits; reading MSR clears them', (t) => {
  const { host, s } = uart();
  s.write(MCR, 1, 0x1f);
  s.read(MSR, 1);
  s.write(IER, 1, 0x08);
  s.write(MCR, 1, 0x1d); // drop RTS -> CTS falls
  t.true(host.irqLevel.get(4));
  t.is(s.read(IIR, 1) & 0x0f, IIR_MSI);
  t.is(s.read(MSR, 1) & 0x01, 0x01, 'DCTS');
  t.false(host.irqLevel.get(4));
  t.is(s.read(MSR, 1) & 0x0f, 0);
});

test('the line is only toggled on changes', (t) => {
  const { host, s } = uart();
  s.write(IER, 1, 0x01);
  s.feed(Uint8Array.of(1));
  s.read(LSR, 1);
  s.read(LSR, 1);
  t.deepEqual(host.irqs, [[4, true]]);
});
