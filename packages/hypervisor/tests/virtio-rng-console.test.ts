import test from 'ava';
import { VirtioRng } from '../src/devices/virtio/rng.js';
import { MAX_TX_CHAIN, RX_QUEUE, TX_QUEUE, VirtioConsole, type ConsoleSink } from '../src/devices/virtio/console.js';
import { TestDriver } from './helpers/virtio-driver.js';

test('virtio-rng fills writable buffers with bytes that differ from buffer to buffer', (t) => {
  const d = new TestDriver(new VirtioRng());
  d.start(1, 16);
  const q = d.queues[0];
  const bufs = [d.buffer(64, true), d.buffer(64, true)];
  for (const b of bufs) d.add(q, [b]);
  d.kick(q);
  const used = d.takeUsed(q);
  t.deepEqual(used.map((u) => u.len), [64, 64]);
  const [a, b] = bufs.map((x) => d.mem.read(x.addr, 64));
  t.notDeepEqual(a, b);
  t.false(a.every((x) => x === a[0]));
  t.like(d.transport.stats.queues[0], { requests: 2, bytes: 128 });
});

test('virtio-rng is rate-limited: past the burst, chains wait for the bucket to refill, not for a notification', async (t) => {
  let now = 0;
  const rng = new VirtioRng({ bytesPerSecond: 1024, burstBytes: 256, requestCost: 64, now: () => now });
  const d = new TestDriver(rng);
  d.start(1, 16);
  const q = d.queues[0];
  for (let i = 0; i < 8; i++) d.add(q, [d.buffer(128, true)]);
  d.kick(q);
  const first = d.takeUsed(q);
  t.deepEqual(first.map((u) => u.len), [128, 128], 'the burst: 256 bytes');
  d.kick(q);
  d.kick(q);
  t.is(d.takeUsed(q).length, 0, 'notifying again does not help');
  t.true(rng.throttled > 0);
  now += 1000; // a second later: 1024 more bytes of budget, capped at the 256-byte burst
  const more = await d.waitUsed(q, 2, 2000);
  t.deepEqual(more.map((u) => u.len), [128, 128]);
  t.true(d.takeUsed(q).length === 0);
  rng.reset();
});

function sink(): ConsoleSink & { out: number[]; drain: (() => void) | undefined; open: boolean } {
  const s = {
    out: [] as number[],
    drain: undefined as (() => void) | undefined,
    open: true,
    write(bytes: Uint8Array) {
      s.out.push(...bytes);
    },
    get writable() {
      return s.open;
    },
    onDrain(cb: () => void) {
      s.drain = cb;
    },
  };
  return s;
}

test('virtio-console sends transmit buffers to the sink and holds them while it is not writable', (t) => {
  const out = sink();
  const d = new TestDriver(new VirtioConsole(out));
  d.start(2, 16);
  const tx = d.queues[TX_QUEUE];
  d.add(tx, [d.buffer(new TextEncoder().encode('hello '))]);
  d.add(tx, [d.buffer(new TextEncoder().encode('world'))]);
  d.kick(tx);
  t.is(String.fromCharCode(...out.out), 'hello world');
  t.is(d.takeUsed(tx).length, 2);
  out.open = false;
  d.add(tx, [d.buffer(new TextEncoder().encode('!'))]);
  d.kick(tx);
  t.is(out.out.length, 11, 'held while stdout is stalled');
  t.is(d.takeUsed(tx).length, 0);
  out.open = true;
  out.drain!();
  t.is(String.fromCharCode(...out.out), 'hello world!');
  t.is(d.takeUsed(tx).length, 1);
});

test('virtio-console keeps input until receive buffers come, and bounds what one transmit chain can print', (t) => {
  const out = sink();
  const con = new VirtioConsole(out);
  const d = new TestDriver(con);
  d.start(2, 16);
  con.feed(new TextEncoder().encode('ping\n'));
  t.is(con.pendingInput, 5);
  const rx = d.queues[RX_QUEUE];
  const small = d.buffer(3, true);
  const big = d.buffer(64, true);
  d.add(rx, [small]);
  d.add(rx, [big]);
  d.kick(rx);
  t.deepEqual(d.takeUsed(rx).map((u) => u.len), [3, 2]);
  t.is(new TextDecoder().decode(d.mem.read(small.addr, 3)) + new TextDecoder().decode(d.mem.read(big.addr, 2)), 'ping\n');
  t.is(con.pendingInput, 0);

  const tx = d.queues[TX_QUEUE];
  d.add(tx, [d.buffer(MAX_TX_CHAIN), d.buffer(100)]);
  d.kick(tx);
  t.is(out.out.length, MAX_TX_CHAIN);
  t.is(con.droppedTx, 100);
});
