import test from 'ava';
import fc from 'fast-check';
import { GuestMemory } from '../src/memory.js';
import { QueueError, SplitQueue, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, type QueueConfig, type QueueMemory } from '../src/devices/virtio/queue.js';

const KiB = 1024;
const { NEXT, WRITE, INDIRECT } = { NEXT: VIRTQ_DESC_F_NEXT, WRITE: VIRTQ_DESC_F_WRITE, INDIRECT: VIRTQ_DESC_F_INDIRECT };

/** Two RAM regions with a hole between them and nothing above: [0, 48K) and [64K, 96K). */
function twoRegions(): GuestMemory {
  return new GuestMemory([
    { gpa: 0, size: 48 * KiB, bytes: new Uint8Array(48 * KiB) },
    { gpa: 64 * KiB, size: 32 * KiB, bytes: new Uint8Array(32 * KiB) },
  ]);
}

const DESC = 0x1000;
const AVAIL = 0x2000;
const USED = 0x3000;

function setup(size = 8, extra: Partial<QueueConfig> = {}) {
  const mem = twoRegions();
  const cfg: QueueConfig = { size, desc: DESC, avail: AVAIL, used: USED, eventIdx: false, indirect: true, ...extra };
  const desc = (i: number, addr: number, len: number, flags: number, next = 0, table = cfg.desc) => {
    mem.writeU64(table + 16 * i, BigInt(addr));
    mem.writeU32(table + 16 * i + 8, len >>> 0);
    mem.writeU16(table + 16 * i + 12, flags);
    mem.writeU16(table + 16 * i + 14, next);
  };
  let availIdx = 0;
  const offer = (...heads: number[]) => {
    for (const h of heads) {
      mem.writeU16(cfg.avail + 4 + 2 * (availIdx % size), h);
      availIdx = (availIdx + 1) & 0xffff;
    }
    mem.writeU16(cfg.avail + 2, availIdx);
  };
  return { mem, cfg, desc, offer, queue: () => new SplitQueue(mem, cfg) };
}

test('a chain of readable then writable buffers comes out whole and goes back on the used ring', (t) => {
  const { mem, desc, offer, queue } = setup();
  mem.write(0x5000, Uint8Array.from([1, 2, 3, 4]));
  desc(0, 0x5000, 4, NEXT, 3);
  desc(3, 0x6000, 100, NEXT | WRITE, 5);
  desc(5, 64 * KiB, 8, WRITE);
  offer(0);
  const q = queue();
  t.is(q.pending(), 1);
  const c = q.pop()!;
  t.deepEqual([c.head, c.readableBytes, c.writableBytes], [0, 4, 108]);
  t.deepEqual([...c.readable[0]], [1, 2, 3, 4]);
  t.deepEqual(c.writable.map((v) => v.length), [100, 8]);
  c.writable[1].set([9, 9]);
  t.deepEqual([...mem.read(64 * KiB, 2)], [9, 9], 'writable views are guest memory');
  t.is(q.pop(), null);
  q.push(c.head, 42);
  t.is(mem.readU16(USED + 2), 1);
  t.is(mem.readU32(USED + 4), 0);
  t.is(mem.readU32(USED + 8), 42);
  t.true(q.needsInterrupt());
  t.false(q.needsInterrupt(), 'nothing new since');
});

test('an indirect table stands in for the chain', (t) => {
  const { desc, offer, queue } = setup();
  const table = 0x8000;
  desc(0, 0x5000, 16, NEXT, 1, table);
  desc(1, 0x6000, 512, NEXT | WRITE, 2, table);
  desc(2, 0x7000, 1, WRITE, 0, table);
  desc(2, table, 48, INDIRECT);
  offer(2);
  const c = queue().pop()!;
  t.deepEqual([c.head, c.readableBytes, c.writableBytes], [2, 16, 513]);
});

test('a buffer across the seam between adjacent regions is split, not refused', (t) => {
  const mem = new GuestMemory([
    { gpa: 0, size: 32 * KiB, bytes: new Uint8Array(32 * KiB) },
    { gpa: 32 * KiB, size: 32 * KiB, bytes: new Uint8Array(32 * KiB) },
  ]);
  const cfg = { size: 4, desc: DESC, avail: AVAIL, used: USED, eventIdx: false, indirect: false };
  mem.writeU64(DESC, BigInt(32 * KiB - 10));
  mem.writeU32(DESC + 8, 20);
  mem.writeU16(DESC + 12, WRITE);
  mem.writeU16(AVAIL + 2, 1);
  const c = new SplitQueue(mem, cfg).pop()!;
  t.deepEqual(c.writable.map((v) => v.length), [10, 10]);
});

const refusals: Array<[string, (s: ReturnType<typeof setup>) => void, RegExp]> = [
  ['a descriptor loop', ({ desc, offer }) => (desc(0, 0x5000, 4, NEXT, 1), desc(1, 0x5000, 4, NEXT, 0), offer(0)), /loops or is longer than its queue/],
  ['a chain longer than the queue', ({ desc, offer }) => {
    for (let i = 0; i < 8; i++) desc(i, 0x5000, 4, NEXT, (i + 1) % 8);
    offer(0);
  }, /loops or is longer/],
  ['a next index outside the queue', ({ desc, offer }) => (desc(0, 0x5000, 4, NEXT, 8), offer(0)), /index 8 is outside the queue of 8/],
  ['a head index outside the queue', ({ offer }) => offer(9), /index 9 is outside/],
  ['an indirect table inside an indirect table', ({ desc, offer }) => (desc(0, 0x8000, 32, INDIRECT, 0, 0x8000), desc(0, 0x8000, 32, INDIRECT), offer(0)), /indirect table inside an indirect table/],
  ['an indirect descriptor that also says NEXT', ({ desc, offer }) => (desc(0, 0x8000, 32, INDIRECT | NEXT, 1), offer(0)), /both indirect and chained/],
  ['an indirect table of a length that is not whole descriptors', ({ desc, offer }) => (desc(0, 0x8000, 20, INDIRECT), offer(0)), /indirect table length 20/],
  ['an indirect table outside RAM', ({ desc, offer }) => (desc(0, 48 * KiB - 16, 32, INDIRECT), offer(0)), /indirect table .* not inside one guest RAM region/],
  ['a buffer straddling the end of a region', ({ desc, offer }) => (desc(0, 48 * KiB - 8, 16, WRITE), offer(0)), /outside guest RAM/],
  ['a buffer above RAM', ({ desc, offer }) => (desc(0, 200 * KiB, 1, 0), offer(0)), /outside guest RAM/],
  ['an address beyond 2^53', ({ mem, desc, offer }) => (desc(0, 0, 1, 0), mem.writeU32(DESC + 4, 0xffff_ffff), offer(0)), /address 0xffffffff00000000 is outside guest RAM/],
  ['lengths that add up past 32 bits', ({ desc, offer }) => (desc(0, 0x5000, 16, NEXT, 1), desc(1, 0x5000, 0xffff_ffff, WRITE), offer(0)), /longer than 4 GiB/],
  ['a readable buffer after a writable one', ({ desc, offer }) => (desc(0, 0x5000, 4, NEXT | WRITE, 1), desc(1, 0x5000, 4, 0), offer(0)), /device-readable after a device-writable/],
  ['an avail index further ahead than the queue size', ({ mem }) => mem.writeU16(AVAIL + 2, 9), /9 entries ahead .* queue size 8/],
];

for (const [what, arrange, message] of refusals) {
  test(`refused: ${what}`, (t) => {
    const s = setup();
    arrange(s);
    t.throws(() => s.queue().pop(), { instanceOf: QueueError, message });
  });
}

test('indirect descriptors need VIRTIO_F_INDIRECT_DESC', (t) => {
  const s = setup(8, { indirect: false });
  s.desc(0, 0x8000, 32, INDIRECT);
  s.offer(0);
  t.throws(() => s.queue().pop(), { instanceOf: QueueError, message: /INDIRECT_DESC was not negotiated/ });
});

test('rings must be powers of two, aligned, and wholly inside one RAM region', (t) => {
  const mem = twoRegions();
  const base = { size: 8, desc: DESC, avail: AVAIL, used: USED, eventIdx: true, indirect: true };
  const bad: Array<[Partial<QueueConfig>, RegExp]> = [
    [{ size: 0 }, /power of two/],
    [{ size: 6 }, /power of two/],
    [{ size: 65536 }, /power of two from 1 to 32768/],
    [{ desc: DESC + 8 }, /descriptor table .* not 16-byte aligned/],
    [{ avail: AVAIL + 1 }, /not 2-byte aligned/],
    [{ used: USED + 2 }, /not 4-byte aligned/],
    [{ desc: 48 * KiB - 64 }, /descriptor table .* not inside one guest RAM region/],
    [{ used: 96 * KiB - 68 }, /used\) ring .* not inside/],
    [{ avail: 1 << 30 }, /avail\) ring .* not inside/],
    [{ desc: Number.MAX_SAFE_INTEGER + 1 }, /out of range/],
  ];
  for (const [change, message] of bad) t.throws(() => new SplitQueue(mem, { ...base, ...change }), { instanceOf: QueueError, message }, JSON.stringify(change));
  t.throws(() => new SplitQueue(mem, { ...base, size: 16 }, 8), { message: /from 1 to 8/ });
});

test('EVENT_IDX: the device interrupts only when used_event is crossed, and asks for the next notification', (t) => {
  const { mem, desc, offer, queue } = setup(8, { eventIdx: true });
  for (let i = 0; i < 4; i++) desc(i, 0x5000, 4, WRITE);
  offer(0, 1, 2);
  const q = queue();
  const usedEvent = (v: number) => mem.writeU16(AVAIL + 4 + 2 * 8, v);
  usedEvent(1); // interrupt once used.idx passes 1 → 2
  q.push(q.pop()!.head, 0);
  t.false(q.needsInterrupt(), 'used.idx 1 has not passed used_event 1');
  q.push(q.pop()!.head, 0);
  t.true(q.needsInterrupt(), 'used.idx 2 passed used_event 1');
  q.push(q.pop()!.head, 0);
  t.false(q.needsInterrupt());
  t.false(q.armNotification(), 'nothing pending');
  t.is(mem.readU16(USED + 4 + 8 * 8), 3, 'avail_event = the next chain the device wants to hear about');
  offer(3);
  t.true(q.armNotification(), 'a chain arrived: the device must look again');
});

test('without EVENT_IDX the avail ring flag suppresses interrupts', (t) => {
  const { mem, desc, offer, queue } = setup();
  desc(0, 0x5000, 4, WRITE);
  offer(0, 0);
  const q = queue();
  mem.writeU16(AVAIL, 1);
  q.push(q.pop()!.head, 0);
  t.false(q.needsInterrupt());
  mem.writeU16(AVAIL, 0);
  q.push(q.pop()!.head, 0);
  t.true(q.needsInterrupt());
});

test('a retired queue takes nothing and writes nothing', (t) => {
  const { mem, desc, offer, queue } = setup();
  desc(0, 0x5000, 4, WRITE);
  offer(0);
  const q = queue();
  const c = q.pop()!;
  q.retired = true;
  q.push(c.head, 4);
  t.is(mem.readU16(USED + 2), 0);
  t.is(q.pop(), null);
});

/**
 * The property: whatever a driver writes (rings anywhere, descriptor tables of random and
 * half-valid entries, indirect tables, any indices), popping and pushing chains never throws
 * anything but a QueueError, every view it returns lies inside RAM, it writes nothing outside the
 * used ring, and it terminates. Rounds of new chains per queue so each run pops many.
 */
const CHAINS_PER_RUN_TARGET = 100_000;

function xorshift(seed: number) {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

test('fast-check: random rings and chains never escape guest RAM, never throw but QueueError, always end', (t) => {
  let chains = 0;
  let refused = 0;
  const started = performance.now();
  // Two small regions with a hole between them, so placements inside, across and beyond are all likely.
  const regions = [
    { gpa: 0, size: 16 * KiB },
    { gpa: 32 * KiB, size: 16 * KiB },
  ];
  const inRam = (gpa: number, len: number) => regions.some((r) => gpa >= r.gpa && gpa + len <= r.gpa + r.size);
  fc.assert(
    fc.property(
      fc.record({
        seed: fc.integer(),
        sizeLog: fc.integer({ min: 0, max: 8 }),
        eventIdx: fc.boolean(),
        indirect: fc.boolean(),
        /** How often a descriptor is well formed (the rest is garbage). */
        sanity: fc.oneof(fc.constant(1), fc.double({ min: 0.9, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true })),
        ringPlacement: fc.constantFrom('fixed', 'random', 'edge'),
      }),
      ({ seed, sizeLog, eventIdx, indirect, sanity, ringPlacement }) => {
        const rnd = xorshift(seed);
        const int = (n: number) => Math.floor(rnd() * n);
        const size = 1 << sizeLog;
        const raw = regions.map((r) => new Uint8Array(r.size));
        const mem = new GuestMemory(regions.map((r, i) => ({ ...r, bytes: raw[i] })));
        // Accesses are recorded: every range the queue asked for must be inside RAM when it got it.
        const memory: QueueMemory = {
          slice: (gpa, len) => {
            const v = mem.slice(gpa, len);
            if (!inRam(gpa, len)) throw new Error(`slice outside RAM returned ${gpa}+${len}`);
            return v;
          },
          views: (gpa, len) => {
            const v = mem.views(gpa, len);
            if (!inRam(gpa, len)) throw new Error(`views outside RAM returned ${gpa}+${len}`);
            return v;
          },
        };
        const pick = (near: number) =>
          ringPlacement === 'fixed' ? near : ringPlacement === 'edge' ? [16 * KiB - 16 * int(64), 48 * KiB - 16 * int(64), 32 * KiB - 16][int(3)] : int(52 * KiB) & ~15;
        const cfg: QueueConfig = { size, desc: pick(32 * KiB), avail: pick(44 * KiB), used: pick(40 * KiB), eventIdx, indirect };
        for (const b of raw) for (let i = 0; i < b.length; i += 4) new DataView(b.buffer).setUint32(i, (rnd() * 0x1_0000_0000) >>> 0, true);
        const anyAddr = () => [int(52 * KiB), 16 * KiB - int(32), 48 * KiB - int(32), int(0x1_0000_0000) * 0x10000, 0x1f_ffff_ffff_ffff][rnd() < 0.8 ? 0 : 1 + int(4)];
        const writeDesc = (table: number, i: number) => {
          const ok = rnd() < sanity;
          const at = table + 16 * i;
          if (!inRam(at, 16)) return;
          // Well formed: chained to the next entry, readable ones before writable ones (mostly), in RAM.
          const indirectOk = indirect && rnd() < 0.05;
          const flags = ok ? (indirectOk ? INDIRECT : (i % 4 !== 3 && rnd() < 0.7 ? NEXT : 0) | (i % 4 >= 2 ? WRITE : 0)) : int(8);
          const addr = ok ? (indirectOk ? 16 * int(14 * 64) : int(14 * KiB)) : anyAddr();
          mem.writeU64(at, BigInt(addr));
          mem.writeU32(at + 8, ok ? (indirectOk ? 16 * (1 + int(8)) : int(2 * KiB)) : (rnd() * 0x1_0000_0000) >>> 0);
          mem.writeU16(at + 12, flags);
          mem.writeU16(at + 14, ok ? (i + 1) % size : int(0x10000));
        };
        const usedEnd = cfg.used + 6 + 8 * size;
        const before = raw.map((b) => b.slice());
        /** Equal but for the used ring: compared in the two pieces around it (memcmp, not a JS loop). */
        const unchangedOutsideUsed = (i: number) => {
          const r = regions[i];
          const a = Buffer.from(raw[i].buffer);
          const b = Buffer.from(before[i].buffer);
          const lo = Math.min(Math.max(cfg.used - r.gpa, 0), r.size);
          const hi = Math.min(Math.max(usedEnd - r.gpa, 0), r.size);
          return a.subarray(0, lo).equals(b.subarray(0, lo)) && a.subarray(hi).equals(b.subarray(hi));
        };
        let q: SplitQueue | undefined;
        let availIdx = 0;
        for (let round = 0; round < 24; round++) {
          if (!q) {
            // The driver (re)sets the queue up, as after a device reset: rings zeroed where they are in RAM.
            for (const [at, len] of [[cfg.avail, 6 + 2 * size], [cfg.used, usedEnd - cfg.used]]) if (inRam(at, len)) mem.fill(at, len, 0);
            availIdx = 0;
            try {
              q = new SplitQueue(memory, cfg);
            } catch (err) {
              if (!(err instanceof QueueError)) throw err;
              chains++;
              refused++;
              return;
            }
          }
          for (let i = 0; i < size; i++) writeDesc(cfg.desc, i);
          for (let i = 0; i < 8; i++) writeDesc(16 * int(14 * 64), int(8)); // entries of would-be indirect tables
          const n = rnd() < 0.05 ? size + 1 + int(100) : int(size + 1);
          for (let k = 0; k < n; k++) mem.writeU16(cfg.avail + 4 + 2 * ((availIdx + k) % size), rnd() < sanity ? int(size) : int(0x10000));
          availIdx = (availIdx + n) & 0xffff;
          mem.writeU16(cfg.avail + 2, availIdx);
          raw.forEach((b, i) => before[i].set(b));
          try {
            for (let c = q.pop(); c; c = q.pop()) {
              chains++;
              const views = [...c.readable, ...c.writable];
              const total = views.reduce((sum, v) => sum + v.length, 0);
              if (total !== c.readableBytes + c.writableBytes) throw new Error('view lengths do not add up');
              if (c.readableBytes + c.writableBytes > 0xffff_ffff) throw new Error('chain longer than 4 GiB');
              for (const v of views) if (!raw.some((b) => b.buffer === v.buffer)) throw new Error('a view of something other than guest RAM');
              q.push(c.head, int(c.writableBytes + 1));
            }
            q.needsInterrupt();
            q.armNotification();
          } catch (err) {
            if (!(err instanceof QueueError)) throw err;
            chains++;
            refused++;
            q = undefined;
          }
          // Nothing outside the used ring changed.
          for (let i = 0; i < raw.length; i++) if (!unchangedOutsideUsed(i)) throw new Error(`region ${i} changed outside the used ring`);
        }
      },
    ),
    { numRuns: 2500, includeErrorInReport: true },
  );
  const ms = Math.round(performance.now() - started);
  t.log(`${chains} chains examined (${refused} refused with a QueueError) in ${ms} ms`);
  t.true(chains >= CHAINS_PER_RUN_TARGET, `${chains} chains, want at least ${CHAINS_PER_RUN_TARGET}`);
});
