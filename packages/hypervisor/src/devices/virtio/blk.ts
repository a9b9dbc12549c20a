/**
 * virtio-blk (virtio 1.x §5.2) over a BlockBackend: IN, OUT, FLUSH, GET_ID, DISCARD and
 * WRITE_ZEROES. Requests run asynchronously and at most MAX_IN_FLIGHT at a time (the rest wait in
 * the avail ring); FLUSH completes only after every write submitted before it and fdatasync.
 * A read-only disk offers VIRTIO_BLK_F_RO and answers every write with IOERR.
 */
import { bit, VIRTIO_ID_BLOCK, type VirtioContext, type VirtioDevice } from './device.js';
import { SECTOR, type BlockBackend } from './disk-image.js';
import { gather, scatter, subViews, type Chain, type SplitQueue } from './queue.js';

export const VIRTIO_BLK_F_SEG_MAX = 2;
export const VIRTIO_BLK_F_RO = 5;
export const VIRTIO_BLK_F_BLK_SIZE = 6;
export const VIRTIO_BLK_F_FLUSH = 9;
export const VIRTIO_BLK_F_DISCARD = 13;
export const VIRTIO_BLK_F_WRITE_ZEROES = 14;

export const VIRTIO_BLK_T_IN = 0;
export const VIRTIO_BLK_T_OUT = 1;
export const VIRTIO_BLK_T_FLUSH = 4;
export const VIRTIO_BLK_T_GET_ID = 8;
export const VIRTIO_BLK_T_DISCARD = 11;
export const VIRTIO_BLK_T_WRITE_ZEROES = 13;

export const VIRTIO_BLK_S_OK = 0;
export const VIRTIO_BLK_S_IOERR = 1;
export const VIRTIO_BLK_S_UNSUPP = 2;

const WRITE_ZEROES_UNMAP = 1;
const HEADER = 16;
const SEGMENT = 16;
export const ID_BYTES = 20;
export const QUEUE_SIZE = 256;
export const SEG_MAX = 128;
/** Requests handed to the backend at once; further chains stay in the ring until one completes. */
export const MAX_IN_FLIGHT = 32;
/** Sectors one DISCARD / WRITE_ZEROES segment may cover (the config space says so). */
const MAX_RANGE_SECTORS = 0x3f_ffff;
/** Config space layout (§5.2.4) up to write_zeroes_may_unmap and its padding. */
const CONFIG_SIZE = 60;

class RequestError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export class VirtioBlk implements VirtioDevice {
  readonly type = VIRTIO_ID_BLOCK;
  readonly name: string;
  readonly features: bigint;
  readonly queueSizes = [QUEUE_SIZE];
  readonly configSize = CONFIG_SIZE;
  private readonly config = new Uint8Array(CONFIG_SIZE);
  private ctx: VirtioContext | undefined;
  private inFlight = 0;
  /** Every request the backend is working on, reset or not: close() and FLUSH wait for them. */
  private readonly running = new Set<Promise<void>>();
  private readonly writes = new Set<Promise<void>>();
  private closing: Promise<void> | undefined;
  /** I/O errors reported (the first is logged). */
  ioErrors = 0;

  constructor(
    readonly disk: BlockBackend,
    /** "vda", "vdb", …: how logs name it. */
    readonly label: string,
  ) {
    this.name = `virtio-blk ${label}`;
    let f = bit(VIRTIO_BLK_F_SEG_MAX) | bit(VIRTIO_BLK_F_BLK_SIZE) | bit(VIRTIO_BLK_F_FLUSH);
    if (disk.readOnly) f |= bit(VIRTIO_BLK_F_RO);
    else {
      f |= bit(VIRTIO_BLK_F_WRITE_ZEROES);
      if (disk.canDiscard) f |= bit(VIRTIO_BLK_F_DISCARD);
    }
    this.features = f;
    const v = new DataView(this.config.buffer);
    v.setBigUint64(0, BigInt(Math.floor(disk.size / SECTOR)), true); // capacity
    v.setUint32(12, SEG_MAX, true); // seg_max
    v.setUint32(20, SECTOR, true); // blk_size
    v.setUint32(36, MAX_RANGE_SECTORS, true); // max_discard_sectors
    v.setUint32(40, 1, true); // max_discard_seg
    v.setUint32(44, 4096 / SECTOR, true); // discard_sector_alignment
    v.setUint32(48, MAX_RANGE_SECTORS, true); // max_write_zeroes_sectors
    v.setUint32(52, 1, true); // max_write_zeroes_seg
    this.config[56] = disk.canDiscard ? 1 : 0; // write_zeroes_may_unmap
  }

  readConfig(offset: number, data: Uint8Array): void {
    data.set(this.config.subarray(offset, offset + data.length));
  }

  writeConfig(): void {
    // writeback (offset 32) is only writable with VIRTIO_BLK_F_CONFIG_WCE, which is not offered.
  }

  activate(ctx: VirtioContext): void {
    this.ctx = ctx;
    this.drain();
  }

  notify(): void {
    this.drain();
  }

  reset(): void {
    this.ctx = undefined;
  }

  /** Takes chains while there is room in flight; arms the notification when the ring is empty. */
  private drain(): void {
    const ctx = this.ctx;
    const q = ctx?.queue(0);
    if (!ctx || !q || this.closing) return;
    while (this.inFlight < MAX_IN_FLIGHT) {
      const chain = q.next();
      if (!chain) break;
      this.start(ctx, q, chain);
    }
  }

  private start(ctx: VirtioContext, q: SplitQueue, chain: Chain): void {
    const status = chain.writable.length > 0 ? lastByte(chain.writable) : undefined;
    if (chain.readableBytes < HEADER || !status) {
      ctx.fail(`request (head ${chain.head}) has no 16-byte header or no status byte`);
      return;
    }
    const header = new Uint8Array(HEADER);
    gather(chain.readable, 0, header);
    const hv = new DataView(header.buffer);
    const type = hv.getUint32(0, true);
    const sector = hv.getBigUint64(8, true);
    this.inFlight++;
    let done: Promise<{ status: number; written: number; bytes: number }>;
    try {
      done = this.execute(type, sector, chain);
    } catch (err) {
      done = Promise.reject(err);
    }
    const op = done.then(
      (r) => r,
      (err: unknown) => {
        const status = err instanceof RequestError ? err.status : VIRTIO_BLK_S_IOERR;
        if (!(err instanceof RequestError) || status === VIRTIO_BLK_S_IOERR) this.reportIoError(err);
        return { status, written: 0, bytes: 0 };
      },
    ).then((r) => {
      this.inFlight--;
      // A reset (or failure) since the request began retired its queue: the driver no longer owns those buffers for us.
      if (!ctx.alive) return;
      status.view[status.at] = r.status;
      q.push(chain.head, r.written + 1);
      ctx.count(0, r.bytes);
      ctx.used(0);
      ctx.guard(() => this.drain());
    });
    this.track(this.running, op);
  }

  private track(set: Set<Promise<void>>, p: Promise<void>): void {
    const settled = p.then(
      () => undefined,
      () => undefined,
    );
    set.add(settled);
    void settled.then(() => set.delete(settled));
  }

  private reportIoError(err: unknown): void {
    this.ioErrors++;
    if (this.ioErrors === 1 && this.ctx) this.ctx.log(`I/O error: ${err instanceof Error ? err.message : String(err)} (answered IOERR; further errors counted)`);
  }

  /** Runs one request; resolves with the status and how many bytes went into writable buffers. */
  private async execute(type: number, sector: bigint, chain: Chain): Promise<{ status: number; written: number; bytes: number }> {
    const disk = this.disk;
    switch (type) {
      case VIRTIO_BLK_T_IN: {
        const data = subViews(chain.writable, 0, chain.writableBytes - 1);
        const len = chain.writableBytes - 1;
        const offset = this.range(sector, len);
        await disk.read(data, offset);
        return { status: VIRTIO_BLK_S_OK, written: len, bytes: len };
      }
      case VIRTIO_BLK_T_OUT: {
        const len = chain.readableBytes - HEADER;
        const offset = this.range(sector, len);
        if (disk.readOnly) throw new RequestError(VIRTIO_BLK_S_IOERR, 'write to a read-only disk');
        const w = disk.write(subViews(chain.readable, HEADER, len), offset);
        this.track(this.writes, w);
        await w;
        return { status: VIRTIO_BLK_S_OK, written: 0, bytes: len };
      }
      case VIRTIO_BLK_T_FLUSH: {
        // Every write submitted before this FLUSH, then fdatasync.
        await Promise.all([...this.writes]);
        await disk.flush();
        return { status: VIRTIO_BLK_S_OK, written: 0, bytes: 0 };
      }
      case VIRTIO_BLK_T_GET_ID: {
        const id = new Uint8Array(ID_BYTES);
        id.set(new TextEncoder().encode(disk.serial).subarray(0, ID_BYTES));
        const n = scatter(subViews(chain.writable, 0, chain.writableBytes - 1), 0, id);
        return { status: VIRTIO_BLK_S_OK, written: n, bytes: n };
      }
      case VIRTIO_BLK_T_DISCARD:
      case VIRTIO_BLK_T_WRITE_ZEROES: {
        const discard = type === VIRTIO_BLK_T_DISCARD;
        if (disk.readOnly) throw new RequestError(VIRTIO_BLK_S_IOERR, 'discard or write-zeroes on a read-only disk');
        if (discard && !disk.canDiscard) throw new RequestError(VIRTIO_BLK_S_UNSUPP, 'discard');
        const segments = chain.readableBytes - HEADER;
        if (segments !== SEGMENT) throw new RequestError(VIRTIO_BLK_S_UNSUPP, `${segments / SEGMENT} ranges in one request`);
        const seg = new Uint8Array(SEGMENT);
        gather(chain.readable, HEADER, seg);
        const sv = new DataView(seg.buffer);
        const start = sv.getBigUint64(0, true);
        const count = sv.getUint32(8, true);
        const flags = sv.getUint32(12, true);
        if (count > MAX_RANGE_SECTORS || flags & ~WRITE_ZEROES_UNMAP || (discard && flags !== 0)) {
          throw new RequestError(VIRTIO_BLK_S_UNSUPP, 'range flags or size');
        }
        const offset = this.range(start, count * SECTOR);
        if (count > 0) {
          const op = discard ? disk.discard(offset, count * SECTOR) : disk.writeZeroes(offset, count * SECTOR, (flags & WRITE_ZEROES_UNMAP) !== 0);
          this.track(this.writes, op);
          await op;
        }
        return { status: VIRTIO_BLK_S_OK, written: 0, bytes: 0 };
      }
      default:
        throw new RequestError(VIRTIO_BLK_S_UNSUPP, `request type ${type}`);
    }
  }

  /** The byte offset of `sector`, checked with `len` against the disk; IOERR outside it. */
  private range(sector: bigint, len: number): number {
    if (len % SECTOR !== 0) throw new RequestError(VIRTIO_BLK_S_IOERR, `length ${len} is not a whole number of sectors`);
    const end = sector * BigInt(SECTOR) + BigInt(len);
    if (end > BigInt(this.disk.size)) throw new RequestError(VIRTIO_BLK_S_IOERR, `sector ${sector} + ${len} bytes is past the end of the disk`);
    return Number(sector) * SECTOR;
  }

  /** Stops taking requests, waits for those in flight (writes reach the file), then closes it. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.ctx = undefined;
      while (this.running.size > 0) await Promise.all([...this.running]);
      await this.disk.close();
    })();
    return this.closing;
  }
}

function lastByte(views: Uint8Array[]): { view: Uint8Array; at: number } | undefined {
  const v = views[views.length - 1];
  return v && v.length > 0 ? { view: v, at: v.length - 1 } : undefined;
}
