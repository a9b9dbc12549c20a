import test from 'ava';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  MAX_IN_FLIGHT,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
  VirtioBlk,
} from '../src/devices/virtio/blk.js';
import { STATUS_DEVICE_NEEDS_RESET } from '../src/devices/virtio/device.js';
import { DiskError, DiskImage, type BlockBackend } from '../src/devices/virtio/disk-image.js';
import { REG } from '../src/devices/virtio/mmio.js';
import { TestDriver, type GuestBuffer } from './helpers/virtio-driver.js';
import { unwritable } from './helpers/unwritable.js';

const KiB = 1024;
const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-blk-test-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function imageFile(bytes: Uint8Array | number): string {
  const path = join(dir, `disk-${n++}.img`);
  writeFileSync(path, typeof bytes === 'number' ? new Uint8Array(bytes) : bytes);
  return path;
}
const pattern = (len: number, seed = 1) => Uint8Array.from({ length: len }, (_, i) => (i * 7 + seed + (i >> 9)) & 0xff);

function header(type: number, sector: number): Uint8Array {
  const h = new Uint8Array(16);
  const v = new DataView(h.buffer);
  v.setUint32(0, type, true);
  v.setBigUint64(8, BigInt(sector), true);
  return h;
}

/** A blk device on a driver: submit requests, read their status. */
function rig(disk: BlockBackend) {
  const blk = new VirtioBlk(disk, 'vda');
  const d = new TestDriver(blk);
  d.start(1, 256);
  const q = d.queues[0];
  const request = (type: number, sector: number, data: GuestBuffer[] = []) => {
    const status = d.buffer(1, true);
    d.mem.writeU8(status.addr, 0xff);
    const head = d.add(q, [d.buffer(header(type, sector)), ...data, status]);
    return { head, status: () => d.mem.readU8(status.addr) };
  };
  const run = async (type: number, sector: number, data: GuestBuffer[] = []) => {
    const r = request(type, sector, data);
    d.kick(q);
    const used = await d.waitUsed(q, 1);
    return { status: r.status(), used };
  };
  return { blk, d, q, request, run };
}

test('disk images are checked before use: missing, directory, partial sector, unwritable, locked', (t) => {
  t.throws(() => DiskImage.open({ path: join(dir, 'nope.img') }), { instanceOf: DiskError, message: /nope\.img: no such file/ });
  const sub = join(dir, 'a-directory');
  mkdirSync(sub);
  t.throws(() => DiskImage.open({ path: sub }), { instanceOf: DiskError, message: /is a directory/ });
  t.throws(() => DiskImage.open({ path: imageFile(1000) }), { instanceOf: DiskError, message: /size 1000 bytes is not a multiple of 512/ });

  const locked = imageFile(4 * KiB);
  const a = DiskImage.open({ path: locked });
  t.throws(() => DiskImage.open({ path: locked }), { instanceOf: DiskError, message: /in use: another VM holds it open \(its lock\)/ });
  t.throws(() => DiskImage.open({ path: locked, readOnly: true }), { instanceOf: DiskError, message: /in use: another VM holds it open for writing/ });
  void a.close();
  const shared = imageFile(4 * KiB);
  const r1 = DiskImage.open({ path: shared, readOnly: true });
  const r2 = DiskImage.open({ path: shared, readOnly: true });
  t.throws(() => DiskImage.open({ path: shared }), { message: /in use/ }, 'read-only users keep writers out');
  void r1.close();
  void r2.close();

  const frozen = imageFile(4 * KiB);
  const undo = unwritable(frozen);
  try {
    t.throws(() => DiskImage.open({ path: frozen }), { instanceOf: DiskError, message: /cannot be opened for writing \(E(PERM|ACCES)\); add ',ro'/ });
    const ro = DiskImage.open({ path: frozen, readOnly: true });
    t.true(ro.readOnly);
    void ro.close();
  } finally {
    undo();
  }
});

test('OUT then IN over several segments round-trips through the file; FLUSH and GET_ID answer', async (t) => {
  const path = imageFile(64 * KiB);
  const disk = DiskImage.open({ path });
  const { d, run, blk } = rig(disk);
  const data = pattern(3 * 512);
  const segs = [d.buffer(data.subarray(0, 512)), d.buffer(data.subarray(512))];
  const out = await run(VIRTIO_BLK_T_OUT, 4, segs);
  t.is(out.status, VIRTIO_BLK_S_OK);
  t.is(out.used[0].len, 1, 'OUT writes only the status byte');
  t.deepEqual(readFileSync(path).subarray(2048, 2048 + 1536), Buffer.from(data));
  const into = [d.buffer(1024, true), d.buffer(512, true)];
  const back = await run(VIRTIO_BLK_T_IN, 4, into);
  t.is(back.status, VIRTIO_BLK_S_OK);
  t.is(back.used[0].len, 1536 + 1);
  t.deepEqual([...d.mem.read(into[0].addr, 1024), ...d.mem.read(into[1].addr, 512)], [...data]);
  t.is((await run(VIRTIO_BLK_T_FLUSH, 0)).status, VIRTIO_BLK_S_OK);
  const id = d.buffer(20, true);
  t.is((await run(VIRTIO_BLK_T_GET_ID, 0, [id])).status, VIRTIO_BLK_S_OK);
  t.is(new TextDecoder().decode(d.mem.read(id.addr, 20)).replace(/\0+$/, ''), path.split('/').pop()!.slice(0, 20));
  t.like(d.transport.stats.queues[0], { requests: 4 });
  await blk.close();
});

test('direct (O_DIRECT): aligned guest buffers go straight to the file, unaligned ones through a bounce buffer', async (t) => {
  const path = imageFile(64 * KiB);
  const { d, run, blk } = rig(DiskImage.open({ path, direct: true }));
  const data = pattern(8 * KiB, 4);
  const aligned = { addr: d.alloc(8 * KiB, 4096), len: 8 * KiB };
  d.mem.write(aligned.addr, data);
  t.is((await run(VIRTIO_BLK_T_OUT, 0, [aligned])).status, VIRTIO_BLK_S_OK);
  const odd = { addr: d.alloc(1024 + 16, 16) + 16, len: 1024 }; // 512-byte sectors, not 4 KiB aligned
  d.mem.write(odd.addr, data.subarray(0, 1024));
  t.is((await run(VIRTIO_BLK_T_OUT, 16, [odd])).status, VIRTIO_BLK_S_OK);
  const back = { addr: d.alloc(2048 + 8, 8) + 8, len: 2048, write: true };
  t.is((await run(VIRTIO_BLK_T_IN, 15, [back])).status, VIRTIO_BLK_S_OK);
  const got = d.mem.read(back.addr, 2048);
  await blk.close();
  const file = readFileSync(path);
  t.deepEqual(Buffer.from(got), file.subarray(15 * 512, 15 * 512 + 2048), 'an unaligned read through the bounce buffer');
  t.deepEqual(file.subarray(0, 8 * KiB), Buffer.from(data));
  t.deepEqual(file.subarray(8 * KiB, 9 * KiB), Buffer.from(data.subarray(0, 1024)));
});

test('bad requests get IOERR or UNSUPP, and a request without header or status is a driver error', async (t) => {
  const { d, q, run, blk } = rig(DiskImage.open({ path: imageFile(8 * KiB) }));
  t.is((await run(VIRTIO_BLK_T_IN, 16, [d.buffer(512, true)])).status, VIRTIO_BLK_S_IOERR, 'past the end');
  t.is((await run(VIRTIO_BLK_T_IN, 15, [d.buffer(1024, true)])).status, VIRTIO_BLK_S_IOERR, 'runs past the end');
  t.is((await run(VIRTIO_BLK_T_IN, 0, [d.buffer(100, true)])).status, VIRTIO_BLK_S_IOERR, 'not whole sectors');
  t.is((await run(99, 0)).status, VIRTIO_BLK_S_UNSUPP);
  t.is(d.r(REG.Status) & STATUS_DEVICE_NEEDS_RESET, 0);
  d.add(q, [d.buffer(8)]); // 8 readable bytes, no status
  d.kick(q);
  t.truthy(d.r(REG.Status) & STATUS_DEVICE_NEEDS_RESET);
  t.regex(d.logs.join('\n'), /no 16-byte header or no status byte/);
  await blk.close();
});

test('a read-only disk offers VIRTIO_BLK_F_RO and answers writes with IOERR, leaving the file alone', async (t) => {
  const original = pattern(16 * KiB, 3);
  const path = imageFile(original);
  const { d, run, blk } = rig(DiskImage.open({ path, readOnly: true }));
  t.true((blk.features & (1n << BigInt(VIRTIO_BLK_F_RO))) !== 0n);
  t.is((await run(VIRTIO_BLK_T_OUT, 0, [d.buffer(pattern(512, 9))])).status, VIRTIO_BLK_S_IOERR);
  t.is((await run(VIRTIO_BLK_T_WRITE_ZEROES, 0, [d.buffer(rangeSeg(0, 8))])).status, VIRTIO_BLK_S_IOERR);
  t.is((await run(VIRTIO_BLK_T_IN, 0, [d.buffer(512, true)])).status, VIRTIO_BLK_S_OK);
  await blk.close();
  t.deepEqual(readFileSync(path), Buffer.from(original));
});

function rangeSeg(sector: number, count: number, flags = 0): Uint8Array {
  const s = new Uint8Array(16);
  const v = new DataView(s.buffer);
  v.setBigUint64(0, BigInt(sector), true);
  v.setUint32(8, count, true);
  v.setUint32(12, flags, true);
  return s;
}

test('DISCARD punches a hole and WRITE_ZEROES zeroes, both through fallocate', async (t) => {
  const path = imageFile(pattern(1024 * KiB, 5));
  const { d, run, blk } = rig(DiskImage.open({ path }));
  t.true((blk.features & (1n << BigInt(VIRTIO_BLK_F_DISCARD))) !== 0n, 'this file system can punch holes');
  const blocksBefore = statSync(path).blocks;
  t.is((await run(VIRTIO_BLK_T_DISCARD, 0, [d.buffer(rangeSeg(0, 1024))])).status, VIRTIO_BLK_S_OK);
  t.true(statSync(path).blocks < blocksBefore, 'blocks freed');
  t.is((await run(VIRTIO_BLK_T_WRITE_ZEROES, 1024, [d.buffer(rangeSeg(1024, 8))])).status, VIRTIO_BLK_S_OK);
  t.is((await run(VIRTIO_BLK_T_DISCARD, 0, [d.buffer(rangeSeg(0, 8, 1))])).status, VIRTIO_BLK_S_UNSUPP, 'unmap is not a DISCARD flag');
  t.is((await run(VIRTIO_BLK_T_DISCARD, 0, [d.buffer(rangeSeg(2040, 16))])).status, VIRTIO_BLK_S_IOERR, 'past the end');
  await blk.close();
  const file = readFileSync(path);
  t.true(file.subarray(0, 512 * KiB + 4 * KiB).every((b) => b === 0));
  t.deepEqual(file.subarray(516 * KiB, 520 * KiB), Buffer.from(pattern(1024 * KiB, 5).subarray(516 * KiB, 520 * KiB)));
});

/** A backend whose operations finish only when the test says so. */
class HeldBackend implements BlockBackend {
  readonly size = 1 << 20;
  readonly readOnly = false;
  readonly canDiscard = false;
  readonly serial = 'held';
  readonly pending: Array<{ op: string; release: () => void }> = [];
  readonly order: string[] = [];
  closed = false;
  private op(name: string): Promise<void> {
    return new Promise((resolve) =>
      this.pending.push({
        op: name,
        release: () => {
          this.order.push(`${name} done`);
          resolve();
        },
      }),
    );
  }
  read(): Promise<void> {
    return this.op('read');
  }
  write(): Promise<void> {
    return this.op('write');
  }
  flush(): Promise<void> {
    this.order.push('flush begins');
    return this.op('flush');
  }
  discard(): Promise<void> {
    return this.op('discard');
  }
  writeZeroes(): Promise<void> {
    return this.op('zeroes');
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
  releaseAll(): void {
    for (const p of this.pending.splice(0)) p.release();
  }
}

const tick = () => new Promise((r) => setImmediate(r));

test(`at most ${MAX_IN_FLIGHT} requests are in flight; the rest wait in the ring`, async (t) => {
  const disk = new HeldBackend();
  const { d, q, request } = rig(disk);
  for (let i = 0; i < 40; i++) request(VIRTIO_BLK_T_IN, i, [d.buffer(512, true)]);
  d.kick(q);
  await tick();
  t.is(disk.pending.length, MAX_IN_FLIGHT);
  disk.releaseAll();
  for (let i = 0; i < 10 && disk.pending.length < 8; i++) await tick();
  t.is(disk.pending.length, 8, 'completions made room for the rest, without another notification');
  disk.releaseAll();
  t.is((await d.waitUsed(q, 40)).length, 40);
});

test('FLUSH waits for the writes before it, then syncs; close() waits for requests in flight', async (t) => {
  const disk = new HeldBackend();
  const { d, q, request, blk } = rig(disk);
  request(VIRTIO_BLK_T_OUT, 0, [d.buffer(512)]);
  const flush = request(VIRTIO_BLK_T_FLUSH, 0);
  d.kick(q);
  await tick();
  t.deepEqual(disk.order, [], 'the flush has not begun while the write runs');
  disk.releaseAll();
  for (let i = 0; i < 10 && disk.pending.length === 0; i++) await tick();
  t.deepEqual(disk.order, ['write done', 'flush begins']);
  t.is(flush.status(), 0xff, 'FLUSH not answered before the sync finished');
  disk.releaseAll();
  await d.waitUsed(q, 2);
  t.is(flush.status(), VIRTIO_BLK_S_OK);

  request(VIRTIO_BLK_T_OUT, 1, [d.buffer(512)]);
  d.kick(q);
  await tick();
  let closed = false;
  void blk.close().then(() => (closed = true));
  await tick();
  t.false(closed);
  t.false(disk.closed, 'the file stays open while a write is in flight');
  disk.releaseAll();
  for (let i = 0; i < 10 && !closed; i++) await tick();
  t.true(closed);
  t.true(disk.closed);
});

test('a reset while a read is in flight drops its completion: nothing is written to the old rings', async (t) => {
  const disk = new HeldBackend();
  const { d, q, request } = rig(disk);
  const r = request(VIRTIO_BLK_T_IN, 0, [d.buffer(512, true)]);
  d.kick(q);
  await tick();
  d.w(REG.Status, 0);
  disk.releaseAll();
  for (let i = 0; i < 5; i++) await tick();
  t.is(d.mem.readU16(q.used + 2), 0);
  t.is(r.status(), 0xff);
});
