import test from 'ava';
import { Cmos } from '../src/devices/legacy/cmos.js';
import { FakeHost } from './helpers/fake-host.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;
// Tuesday 2024-02-27 21:07:09 UTC
const FIXED = Date.UTC(2024, 1, 27, 21, 7, 9);

function rtc(memBytes = 512 * MiB, clock = () => FIXED) {
  return new Cmos(new FakeHost(), { memBytes, clock });
}
function reg(c: Cmos, r: number): number {
  c.write(0x70, 1, r);
  return c.read(0x71, 1);
}
function set(c: Cmos, r: number, v: number): void {
  c.write(0x70, 1, r);
  c.write(0x71, 1, v);
}

test('time registers read the host clock in BCD, 24-hour by default', (t) => {
  const c = rtc();
  t.is(reg(c, 0x0b) & 0x06, 0x02);
  t.is(reg(c, 0x00), 0x09);
  t.is(reg(c, 0x02), 0x07);
  t.is(reg(c, 0x04), 0x21);
  t.is(reg(c, 0x06), 0x03, 'Tuesday = 3 (Sunday = 1)');
  t.is(reg(c, 0x07), 0x27);
  t.is(reg(c, 0x08), 0x02);
  t.is(reg(c, 0x09), 0x24);
  t.is(reg(c, 0x32), 0x20);
});

test('binary and 12-hour modes per status register B', (t) => {
  const c = rtc();
  set(c, 0x0b, 0x04); // binary, 12-hour
  t.is(reg(c, 0x00), 9);
  t.is(reg(c, 0x04), 0x80 | 9, '21:00 is 9 PM');
  t.is(reg(c, 0x09), 24);
  set(c, 0x0b, 0x00); // BCD, 12-hour
  t.is(reg(c, 0x04), 0x89);
});

test('status registers are sane: A not updating, C clears on read, D battery good', (t) => {
  const c = rtc();
  t.is(reg(c, 0x0a) & 0x80, 0);
  t.is(reg(c, 0x0a) & 0x7f, 0x26);
  t.is(reg(c, 0x0d), 0x80);
  set(c, 0x0d, 0);
  t.is(reg(c, 0x0d), 0x80, 'D is read-only');
  t.is(reg(c, 0x0c), 0);
});

test('the guest can set the clock; it keeps running from there', (t) => {
  let now = FIXED;
  const c = rtc(512 * MiB, () => now);
  set(c, 0x0b, 0x82); // SET while writing, like Linux
  set(c, 0x09, 0x30); // year 2030
  set(c, 0x04, 0x05); // 05h
  set(c, 0x0b, 0x02);
  t.is(reg(c, 0x09), 0x30);
  t.is(reg(c, 0x04), 0x05);
  t.is(reg(c, 0x02), 0x07);
  now += 61_000;
  t.is(reg(c, 0x02), 0x08);
  t.is(reg(c, 0x00), 0x10);
});

test('memory size fields describe the guest RAM', (t) => {
  const c = rtc(512 * MiB);
  const u16 = (lo: number) => reg(c, lo) | (reg(c, lo + 1) << 8);
  t.is(u16(0x15), 640);
  t.is(u16(0x30), 0xffff, 'extended memory in KiB saturates');
  t.is(u16(0x34), (512 - 16) * 16, '64 KiB units above 16 MiB');
  t.is(reg(c, 0x5b) | (reg(c, 0x5c) << 8) | (reg(c, 0x5d) << 16), 0);
  const small = rtc(32 * MiB);
  t.is(reg(small, 0x30) | (reg(small, 0x31) << 8), 31 * 1024);
  const big = rtc(6 * GiB);
  t.is(reg(big, 0x34) | (reg(big, 0x35) << 8), (3 * GiB - 16 * MiB) / (64 * 1024), 'below the 3 GiB hole only');
  t.is(reg(big, 0x5b) | (reg(big, 0x5c) << 8) | (reg(big, 0x5d) << 16), (3 * GiB) / (64 * 1024));
});

test('the index write carries the NMI mask in bit 7', (t) => {
  const c = rtc();
  c.write(0x70, 1, 0x8f);
  t.true(c.nmiMasked);
  c.write(0x71, 1, 0x42);
  c.write(0x70, 1, 0x0f);
  t.false(c.nmiMasked);
  t.is(c.read(0x71, 1), 0x42, 'index 0x0f with the mask bit stripped');
});

test('NVRAM bytes persist', (t) => {
  const c = rtc();
  for (const r of [0x0f, 0x40, 0x7f]) set(c, r, r ^ 0xa5);
  for (const r of [0x0f, 0x40, 0x7f]) t.is(reg(c, r), r ^ 0xa5);
});
