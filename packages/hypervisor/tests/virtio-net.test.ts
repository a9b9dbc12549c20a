import assert from 'node:assert/strict';
import test from 'ava';
import fc from 'fast-check';
import { STATUS_DEVICE_NEEDS_RESET } from '../src/devices/virtio/device.js';
import { REG } from '../src/devices/virtio/mmio.js';
import {
  defaultMac,
  MAX_FRAME,
  NET_HDR_LEN,
  parseMac,
  RX_BACKLOG,
  RX_QUEUE,
  TX_QUEUE,
  VIRTIO_NET_F_CSUM,
  VIRTIO_NET_F_GUEST_CSUM,
  VIRTIO_NET_F_MAC,
  VIRTIO_NET_F_MRG_RXBUF,
  VIRTIO_NET_F_STATUS,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VirtioNet,
  type NetBackend,
} from '../src/devices/virtio/net.js';
import { FrameReader } from '../src/devices/virtio/net-backends/stream.js';
import { IFNAMSIZ } from '../src/devices/virtio/net-backends/spec.js';
import { native } from '../src/kvm/native.js';
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../src/devices/virtio/queue.js';
import { TestDriver, type DriverQueue } from './helpers/virtio-driver.js';

/** A backend the test drives: frames the device sent, and receive() to inject frames. */
class FakeBackend implements NetBackend {
  readonly name = 'fake';
  readonly sent: Uint8Array[] = [];
  receive: (frame: Uint8Array) => void = () => undefined;
  offload: boolean | undefined;
  closed = false;
  constructor(readonly vnetHeader: boolean) {}
  start(receive: (frame: Uint8Array) => void): void {
    this.receive = receive;
  }
  send(frame: Uint8Array): boolean {
    this.sent.push(frame.slice());
    return true;
  }
  setOffload(on: boolean): void {
    this.offload = on;
  }
  counters(): Record<string, number> {
    return { sent: this.sent.length };
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

const MAC = parseMac('52:54:00:12:34:56');
const bit = (n: number) => 1n << BigInt(n);

function ethFrame(len: number, seed = 1): Uint8Array {
  const f = new Uint8Array(len);
  for (let i = 0; i < len; i++) f[i] = (i * 31 + seed) & 0xff;
  if (len >= 6) f.set(MAC, 0);
  return f;
}

function header(fields: { flags?: number; gso?: number; csumStart?: number; csumOffset?: number } = {}): Uint8Array {
  const h = new Uint8Array(NET_HDR_LEN);
  const v = new DataView(h.buffer);
  v.setUint8(0, fields.flags ?? 0);
  v.setUint8(1, fields.gso ?? 0);
  v.setUint16(6, fields.csumStart ?? 0, true);
  v.setUint16(8, fields.csumOffset ?? 0, true);
  return h;
}

function setup(vnet: boolean, features?: bigint) {
  const backend = new FakeBackend(vnet);
  const dev = new VirtioNet(backend, MAC);
  const d = new TestDriver(dev, 16 << 20);
  if (!d.negotiate(features)) throw new Error('FEATURES_OK refused');
  const rx = d.setupQueue(RX_QUEUE, 64);
  const tx = d.setupQueue(TX_QUEUE, 64);
  d.driverOk();
  return { backend, dev, d, rx, tx };
}

function transmit(d: TestDriver, tx: DriverQueue, bytes: Uint8Array): void {
  d.add(tx, [d.buffer(bytes)]);
  d.kick(tx);
}

test('features: MAC, STATUS and MRG_RXBUF always; checksum offload only over a vnet header; config holds the MAC and link up', (t) => {
  const plain = new VirtioNet(new FakeBackend(false), MAC);
  const tap = new VirtioNet(new FakeBackend(true), MAC);
  for (const f of [VIRTIO_NET_F_MAC, VIRTIO_NET_F_STATUS, VIRTIO_NET_F_MRG_RXBUF]) {
    t.not(plain.features & bit(f), 0n);
    t.not(tap.features & bit(f), 0n);
  }
  t.is(plain.features & (bit(VIRTIO_NET_F_CSUM) | bit(VIRTIO_NET_F_GUEST_CSUM)), 0n);
  t.is(tap.features & (bit(VIRTIO_NET_F_CSUM) | bit(VIRTIO_NET_F_GUEST_CSUM)), bit(VIRTIO_NET_F_CSUM) | bit(VIRTIO_NET_F_GUEST_CSUM));
  const { d } = setup(false);
  const cfg = [0, 4].map((o) => d.r(REG.Config + o));
  t.deepEqual(Array.from(new Uint8Array(new Uint32Array(cfg).buffer).subarray(0, 6)), Array.from(MAC));
  t.is(cfg[1] >>> 16, 1, 'VIRTIO_NET_S_LINK_UP');
});

test('default MACs are stable, locally administered, unicast and differ by VM name and index', (t) => {
  const a = defaultMac('web', 0);
  t.deepEqual(a, defaultMac('web', 0));
  t.notDeepEqual(a, defaultMac('web', 1));
  t.notDeepEqual(a, defaultMac('db', 0));
  t.is(a[0] & 0x03, 0x02);
  t.throws(() => parseMac('01:00:5e:00:00:01'), { message: /multicast/ });
  t.throws(() => parseMac('52:54:00:12:34'), { message: /not a MAC address/ });
});

test('transmit: the header is checked and stripped for a framing backend, kept for a vnet one', (t) => {
  const plain = setup(false);
  const frame = ethFrame(100);
  transmit(plain.d, plain.tx, Uint8Array.from([...header(), ...frame]));
  transmit(plain.d, plain.tx, Uint8Array.from([...header({ gso: 1 }), ...frame]));
  transmit(plain.d, plain.tx, Uint8Array.from([...header({ flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, csumStart: 34, csumOffset: 6 }), ...frame]));
  transmit(plain.d, plain.tx, new Uint8Array(NET_HDR_LEN + 5));
  t.deepEqual(plain.backend.sent, [frame]);
  t.like(plain.dev.stats, { txFrames: 1, txBadHeader: 2, txBadLength: 1 });
  t.is(plain.d.takeUsed(plain.tx).length, 4, 'every chain is returned');

  const tap = setup(true);
  t.true(tap.backend.offload, 'TUNSETOFFLOAD follows GUEST_CSUM');
  const csum = header({ flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, csumStart: 34, csumOffset: 6 });
  transmit(tap.d, tap.tx, Uint8Array.from([...csum, ...frame]));
  transmit(tap.d, tap.tx, Uint8Array.from([...header({ flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, csumStart: 99, csumOffset: 6 }), ...frame]));
  t.deepEqual(tap.backend.sent, [Uint8Array.from([...csum, ...frame])]);
  t.like(tap.dev.stats, { txFrames: 1, txBadHeader: 1 });
});

test('receive: frames land in posted buffers with num_buffers, spread over small ones with MRG_RXBUF', (t) => {
  const { backend, d, rx } = setup(false);
  const small = [d.buffer(512, true), d.buffer(512, true), d.buffer(512, true), d.buffer(512, true)];
  for (const b of small) d.add(rx, [b]);
  d.kick(rx);
  const frame = ethFrame(1000);
  backend.receive(frame);
  const used = d.takeUsed(rx);
  t.deepEqual(used.map((u) => u.len), [512, 500]);
  const got = Uint8Array.from([...d.mem.read(small[0].addr, 512), ...d.mem.read(small[1].addr, 500)]);
  t.is(new DataView(got.buffer).getUint16(10, true), 2, 'num_buffers');
  t.deepEqual(got.subarray(NET_HDR_LEN), frame);
});

test('receive without MRG_RXBUF: one buffer per frame; a frame larger than it is dropped and the buffer kept', (t) => {
  const offered = bit(VIRTIO_NET_F_MAC) | bit(VIRTIO_NET_F_STATUS) | bit(32) | bit(29);
  const { backend, dev, d, rx } = setup(false, offered);
  const b = d.buffer(600, true);
  d.add(rx, [b]);
  d.kick(rx);
  backend.receive(ethFrame(1000));
  backend.receive(ethFrame(200, 7));
  const used = d.takeUsed(rx);
  t.deepEqual(used.map((u) => u.len), [NET_HDR_LEN + 200]);
  t.deepEqual(d.mem.read(b.addr + NET_HDR_LEN, 200), ethFrame(200, 7));
  t.is(dev.stats.rxBadLength, 1);
});

test('a guest that posts no receive buffers makes frames wait in a bounded backlog, then be dropped', (t) => {
  const { backend, dev, d, rx } = setup(false);
  for (let i = 0; i < RX_BACKLOG + 500; i++) backend.receive(ethFrame(64, i));
  t.is(dev.stats.rxDropped, 500);
  t.is(dev.stats.rxFrames, 0);
  for (let i = 0; i < 64; i++) d.add(rx, [d.buffer(2048, true)]);
  d.kick(rx);
  t.is(d.takeUsed(rx).length, 64, 'the backlog drains into the buffers posted');
  t.is(dev.stats.rxFrames, 64);
});

test('a receive chain with a device-readable buffer is a misdriven device: DEVICE_NEEDS_RESET, logged once', (t) => {
  const { backend, d, rx } = setup(false);
  d.add(rx, [d.buffer(64), d.buffer(2048, true)]);
  d.kick(rx);
  backend.receive(ethFrame(100));
  t.not(d.r(REG.Status) & STATUS_DEVICE_NEEDS_RESET, 0);
  t.is(d.logs.length, 1);
  t.regex(d.logs[0], /virtio-net .*device needs reset: receive chain \d+ has device-readable buffers/);
});

test('the shim\'s tun numbers are the compiled headers\' (x86_64 values), and net-spec\'s IFNAMSIZ is theirs', (t) => {
  const { tun } = native();
  t.like(tun, { TUNSETIFF: 0x400454ca, TUNSETOFFLOAD: 0x400454d0, TUNSETVNETHDRSZ: 0x400454d8, IFF_TAP: 0x2, IFF_NO_PI: 0x1000, IFF_VNET_HDR: 0x4000, TUN_F_CSUM: 1 });
  t.like(tun, { IFNAMSIZ: 16, ifreqSize: 40, ifreqFlagsOffset: 16 });
  // The CLI checks tap names before the shim loads, so net-spec keeps its own copy of the limit.
  t.is(IFNAMSIZ, tun.IFNAMSIZ);
});

test('the stream framing splits frames at any chunk boundary and refuses a length past MAX_FRAME', (t) => {
  const frames: Uint8Array[] = [];
  let bad = 0;
  const r = new FrameReader((f) => frames.push(Uint8Array.from(f)), () => bad++);
  const a = ethFrame(70);
  const b = ethFrame(1500, 3);
  const stream = Buffer.alloc(8 + a.length + b.length);
  stream.writeUInt32BE(a.length, 0);
  stream.set(a, 4);
  stream.writeUInt32BE(b.length, 4 + a.length);
  stream.set(b, 8 + a.length);
  for (let i = 0; i < stream.length; i += 7) t.true(r.push(stream.subarray(i, i + 7)));
  t.deepEqual(frames, [a, b]);
  const huge = Buffer.alloc(4);
  huge.writeUInt32BE(MAX_FRAME + 1, 0);
  t.false(r.push(huge));
  t.is(bad, 1);
});

/**
 * Hostile input from both sides: random vnet headers and frame lengths from the backend (truncated,
 * oversized), random receive chains (sizes, splits, stray addresses near and past the end of RAM,
 * read-only parts) and random transmit chains with random headers. Nothing escapes as an exception,
 * every access stays in guest RAM (GuestMemory throws otherwise, which the device turns into
 * DEVICE_NEEDS_RESET), every frame the guest gets is byte-exact, and every injected frame is counted
 * exactly once: delivered, waiting, or dropped for a stated reason.
 */
test('property: hostile headers, frames and chains never escape, never leave guest RAM, and are all accounted for', (t) => {
  const MEM = 4 << 20;
  let runs = 0;
  fc.assert(
    fc.property(
      fc.record({
        vnet: fc.boolean(),
        features: fc.bigInt({ min: 0n, max: (1n << 40n) - 1n }),
        frames: fc.array(
          fc.record({
            len: fc.oneof(fc.integer({ min: 0, max: 80 }), fc.integer({ min: 0, max: 2000 }), fc.integer({ min: MAX_FRAME - 4, max: MAX_FRAME + NET_HDR_LEN + 4 })),
            flags: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 255 })),
            gso: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 255 })),
          }),
          { maxLength: 12 },
        ),
        rxChains: fc.array(
          fc.array(
            fc.record({
              len: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 3000 })),
              write: fc.oneof(fc.constant(true), fc.boolean()),
              stray: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 3 })),
            }),
            { minLength: 1, maxLength: 4 },
          ),
          { maxLength: 10 },
        ),
        txChains: fc.array(fc.record({ hdr: fc.uint8Array({ minLength: NET_HDR_LEN, maxLength: NET_HDR_LEN }), len: fc.integer({ min: 0, max: 3000 }) }), { maxLength: 6 }),
        interleave: fc.boolean(),
      }),
      ({ vnet, features, frames, rxChains, txChains, interleave }) => {
        runs++;
        const backend = new FakeBackend(vnet);
        const dev = new VirtioNet(backend, MAC);
        const d = new TestDriver(dev, MEM);
        // Whatever the driver accepts (the transport refuses what was not offered).
        const accepted = (features & dev.features) | (1n << 32n) | (features & ((1n << 28n) | (1n << 29n)));
        if (!d.negotiate(accepted)) return;
        // Room for every descriptor the chains take, so no head is reused while outstanding.
        const rx = d.setupQueue(RX_QUEUE, 64);
        const tx = d.setupQueue(TX_QUEUE, 16);
        d.driverOk();
        const pending = [...rxChains];
        // Buffers that overlap (a guest may post them) make the bytes of one frame overwrite another's.
        const ranges: Array<[number, number]> = [];
        let overlap = false;
        const chainBufs = new Map<number, Array<{ addr: number; len: number; write?: boolean }>>();
        const postRx = () => {
          for (const chain of pending.splice(0, interleave ? 2 : pending.length)) {
            const bufs = chain.map((b) => {
              if (b.stray === 0) return { ...d.buffer(b.len, b.write) };
              // near, straddling and past the end of RAM
              const addr = b.stray === 1 ? MEM - Math.floor(b.len / 2) : b.stray === 2 ? MEM + 4096 : MEM - b.len;
              return { addr, len: b.len, write: b.write };
            });
            for (const b of bufs) {
              if (ranges.some(([a, l]) => b.addr < a + l && a < b.addr + b.len)) overlap = true;
              ranges.push([b.addr, b.len]);
            }
            chainBufs.set(d.add(rx, bufs), bufs);
          }
          d.kick(rx);
        };
        const expected: Uint8Array[] = [];
        if (!interleave) postRx();
        for (const f of frames) {
          const hdrLen = vnet ? NET_HDR_LEN : 0;
          const bytes = ethFrame(f.len, f.len);
          if (vnet && bytes.length >= 2) {
            bytes[0] = f.flags;
            bytes[1] = f.gso;
          }
          backend.receive(bytes);
          expected.push(bytes.subarray(hdrLen));
          if (interleave) postRx();
        }
        for (const c of txChains) {
          const body = ethFrame(c.len);
          d.add(tx, [d.buffer(Uint8Array.from([...c.hdr, ...body]))]);
          d.kick(tx);
        }
        const failed = (d.r(REG.Status) & STATUS_DEVICE_NEEDS_RESET) !== 0;
        const s = dev.stats;
        if (!failed) {
          // Every injected frame: delivered, waiting in the backlog, or dropped for a reason.
          const waiting = (dev as unknown as { backlog: unknown[] }).backlog.length;
          assert.equal(s.rxFrames + s.rxDropped + s.rxBadLength + s.rxBadHeader + waiting, frames.length);
          assert.equal(s.txFrames + s.txBadLength + s.txBadHeader + s.txDropped, txChains.length);
          // What the guest got, chain by chain (num_buffers of them per frame), byte-exact and in order.
          const used = overlap ? [] : d.takeUsed(rx);
          let next = 0;
          for (let i = 0; i < used.length; ) {
            const read = (u: { id: number; len: number }) => {
              const out: number[] = [];
              let left = u.len;
              for (const b of chainBufs.get(u.id) ?? []) {
                const n = Math.min(left, b.len);
                out.push(...d.mem.read(b.addr, n));
                left -= n;
              }
              assert.equal(left, 0, 'a used length within the chain');
              return out;
            };
            // The header (num_buffers in it) may itself span chains that small.
            const bytes: number[] = [];
            let chains = 0;
            while (i + chains < used.length && (bytes.length < NET_HDR_LEN || chains < (bytes[10] | (bytes[11] << 8)))) bytes.push(...read(used[i + chains++]));
            const count = bytes[10] | (bytes[11] << 8);
            assert.ok(count >= 1 && count === chains, 'num_buffers counts the chains of the frame');
            i += chains - count;
            const payload = Uint8Array.from(bytes.slice(NET_HDR_LEN));
            while (next < expected.length && !Buffer.from(expected[next]).equals(payload)) next++;
            assert.ok(next < expected.length, 'a delivered frame is one that was received, in order');
            next++;
            i += count;
          }
        }
        assert.ok(backend.sent.every((f) => f.length <= (vnet ? NET_HDR_LEN : 0) + MAX_FRAME && f.length >= 14));
        void dev.close();
      },
    ),
    { numRuns: Number(process.env.NET_FUZZ_RUNS ?? 1500), includeErrorInReport: true },
  );
  t.log(`${runs} runs`);
  t.pass();
});
