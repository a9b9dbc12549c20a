/**
 * Budgets a guest controls, on their own (no KVM): console output back-pressure and its limit,
 * the bounded console input queue, the UART's THRE/TEMT following the sink, the unclaimed-access
 * log, and a CPUID topology that stays right for every allowed vCPU count.
 */
import test from 'ava';
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { normalizeCpuid, topology } from '../src/arch/x86/cpuid.js';
import { ConsoleInput } from '../src/console/input.js';
import { ConsoleSink, type ByteStream } from '../src/console/sink.js';
import { Serial, IIR_THRE, LSR_THRE, LSR_TEMT } from '../src/devices/legacy/serial.js';
import { UNCLAIMED_LOG_LINES, UnclaimedLog, unclaimedSummaryLine } from '../src/devices/unclaimed.js';
import type { CpuidEntry } from '../src/kvm/system.js';
import { MAX_VCPUS } from '../src/vcpu/limits.js';
import { FakeHost } from './helpers/fake-host.js';

/** A stream that takes `capacity` bytes and then stalls until drain() is called. */
class StallingStream extends EventEmitter implements ByteStream {
  writes: Uint8Array[] = [];
  writableLength = 0;
  destroyed = false;
  constructor(private capacity: number) {
    super();
  }
  write(chunk: Uint8Array): boolean {
    this.writes.push(chunk);
    this.writableLength += chunk.length;
    return this.writableLength < this.capacity;
  }
  drain(): void {
    this.writableLength = 0;
    this.emit('drain');
  }
  destroy(): void {
    this.destroyed = true;
  }
}

test('the console sink coalesces a turn of writes into one stream write', async (t) => {
  const out = new StallingStream(1 << 20);
  const sink = new ConsoleSink(out);
  for (const c of 'hello, world') sink.write(Uint8Array.of(c.charCodeAt(0)));
  t.is(out.writes.length, 0, 'nothing written synchronously');
  await sleep(1);
  t.is(out.writes.length, 1);
  t.is(Buffer.from(out.writes[0]).toString(), 'hello, world');
});

test('a stalled output turns the sink unwritable, bounds what it holds, and wakes waiters on drain', async (t) => {
  const out = new StallingStream(100);
  const sink = new ConsoleSink(out, { highWater: 1000, limit: 4000 });
  sink.write(new Uint8Array(200));
  await sleep(1);
  t.false(sink.writable, 'the stream said stop');
  let woken = 0;
  sink.onWritable(() => woken++);
  for (let i = 0; i < 100; i++) sink.write(new Uint8Array(100)); // a guest ignoring THRE
  await sleep(1);
  t.is(out.writes.length, 1, 'nothing more reaches a stream that said stop');
  t.is(sink.dropped, 10_000 - 4000, 'held up to the limit, the rest dropped and counted');
  out.drain();
  await sleep(1);
  t.is(out.writes.length, 2, 'the held bytes go out in one write on drain');
  t.is(out.writes[1].length, 4000);
  t.is(woken, 0, 'that write filled the stream again');
  out.drain();
  await sleep(1);
  t.is(woken, 1);
  t.true(sink.writable);
});

test('settle() drops what a stalled output never takes and destroys it, so the process can end', async (t) => {
  const out = new StallingStream(10);
  const sink = new ConsoleSink(out);
  sink.write(new Uint8Array(50));
  await sleep(1);
  const started = performance.now();
  t.false(await sink.settle(200));
  t.true(performance.now() - started < 2000);
  t.true(out.destroyed);
  t.is(sink.dropped, 50);
  const fine = new StallingStream(1 << 20);
  const ok = new ConsoleSink(fine);
  ok.write(new Uint8Array(5));
  await sleep(1);
  fine.drain();
  t.true(await ok.settle(200));
});

test('after stop() (EPIPE) the sink discards and stays writable, so the guest runs on to its exit', async (t) => {
  const out = new StallingStream(10);
  const sink = new ConsoleSink(out);
  sink.write(new Uint8Array(50));
  await sleep(1);
  t.false(sink.writable);
  let woken = false;
  sink.onWritable(() => (woken = true));
  sink.stop();
  t.true(sink.writable);
  t.true(woken);
  sink.write(new Uint8Array(50));
  await sleep(1);
  t.is(out.writes.length, 1);
});

test('console input is a bounded queue: full means pause, room comes back as the guest reads', async (t) => {
  const host = new FakeHost();
  const uart = new Serial(host);
  uart.write(0x3f8 + 2, 1, 0x01); // FIFO on
  const input = new ConsoleInput(uart, 1000);
  t.true(input.push(new Uint8Array(500)));
  t.false(input.push(new Uint8Array(600)), 'full: the source must pause');
  t.true(input.queued <= 1100 - 16);
  let room = false;
  input.onRoom(() => (room = true));
  // The guest reads the FIFO until the queue is half empty.
  for (let i = 0; i < 200 && !room; i++) {
    while (uart.read(0x3f8 + 5, 1) & 1) uart.read(0x3f8, 1);
    await sleep(3);
  }
  t.true(room);
  t.true(input.queued <= 500);
  input.close();
});

test('the UART keeps THR full while the console does not drain, and raises THRE once it does', (t) => {
  const host = new FakeHost();
  const s = new Serial(host);
  const LSR = 0x3f8 + 5;
  s.write(0x3f8 + 1, 1, 0x02); // IER: THRE interrupt
  t.is(s.read(0x3f8 + 2, 1) & 0x0f, IIR_THRE);
  host.writable = false;
  t.is(s.read(LSR, 1) & (LSR_THRE | LSR_TEMT), 0, 'THRE and TEMT clear while not draining');
  s.write(0x3f8, 1, 0x41); // a guest that writes anyway
  t.false(s.irqAsserted, 'no THRE interrupt: the transmitter is busy');
  t.is(host.consoleText(), 'A', 'the byte itself is not lost');
  host.drain();
  t.is(s.read(LSR, 1) & (LSR_THRE | LSR_TEMT), LSR_THRE | LSR_TEMT);
  t.true(s.irqAsserted, 'THRE interrupt once the console drained');
  t.is(s.read(0x3f8 + 2, 1) & 0x0f, IIR_THRE);
  // A driver that enables the THRE interrupt while the console is stalled gets it once it drains.
  s.write(0x3f8 + 1, 1, 0x00);
  host.writable = false;
  s.write(0x3f8 + 1, 1, 0x02);
  t.false(s.irqAsserted);
  host.drain();
  t.true(s.irqAsserted, 'THRE interrupt after the drain');
  t.is(s.read(0x3f8 + 2, 1) & 0x0f, IIR_THRE);
  // Loopback never leaves the chip, so it does not wait for the console.
  host.writable = false;
  s.write(0x3f8 + 4, 1, 0x10);
  t.is(s.read(LSR, 1) & LSR_THRE, LSR_THRE);
});

test('unclaimed accesses: at most 32 lines per run, all counted, a bounded set of addresses', (t) => {
  const lines: string[] = [];
  const log = new UnclaimedLog((l) => lines.push(l));
  for (let page = 0; page < 10_000; page++) log.record(`MMIO 0x${(0xc0000000 + page * 4096).toString(16)}`, 'read', 4);
  log.record('MMIO 0xc0000000', 'read', 4);
  t.is(lines.length, UNCLAIMED_LOG_LINES);
  t.regex(lines[UNCLAIMED_LOG_LINES - 1], /no more unclaimed accesses are logged/);
  const totals = log.totals(5);
  t.like(totals, { accesses: 10_006, logged: 32, addressesAtLeast: true });
  t.true(totals.addresses <= 4096);
  t.is(unclaimedSummaryLine(totals), 'unclaimed accesses: 10006 at 4096+ addresses (32 logged)');
});

const entry = (fn: number, index: number, eax = 0): CpuidEntry => ({ function: fn, index, flags: 0, eax, ebx: 0, ecx: 0, edx: 0 });
const supported = [entry(1, 0), entry(4, 0, (1 << 5) | 1), entry(4, 3, (3 << 5) | 3), entry(0xb, 0), entry(0xb, 1)];

test('CPUID topology is consistent for every allowed vCPU count (no 6-bit wrap above 64)', (t) => {
  for (let cpus = 1; cpus <= MAX_VCPUS; cpus++) {
    const { coresPerPackage, coreBits } = topology(cpus);
    t.true(coresPerPackage <= 64 && 1 << coreBits >= coresPerPackage);
    let counted = 0;
    for (const index of [0, cpus - 1, Math.min(cpus - 1, 64)]) {
      const out = normalizeCpuid(supported, { index, cpus, tscDeadline: false });
      const get = (fn: number, i = 0) => out.find((e) => e.function === fn && e.index === i)!;
      const cores = (get(4, 0).eax >>> 26) + 1;
      if (cores !== coresPerPackage) t.fail(`cpus ${cpus}: leaf 4 says ${cores} cores per package`);
      // The package id (APIC id above the core bits) and the core id must name this vCPU.
      if (((index >> coreBits) << coreBits | (index & ((1 << coreBits) - 1))) !== get(0xb, 1).edx) t.fail(`cpus ${cpus}: x2APIC id`);
      const inPackage = get(0xb, 1).ebx;
      if (inPackage < 1 || inPackage > coresPerPackage) t.fail(`cpus ${cpus}: ${inPackage} logical CPUs at the core level`);
      if (((get(1, 0).ebx >>> 16) & 0xff) !== 1 << coreBits) t.fail(`cpus ${cpus}: leaf 1 addressable ids`);
      counted++;
    }
    t.is(counted, 3);
  }
  t.deepEqual(topology(254), { coresPerPackage: 64, coreBits: 6 });
});
