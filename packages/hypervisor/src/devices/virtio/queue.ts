/**
 * A split virtqueue (virtio 1.x §2.7) as the device side sees it, over guest memory and nothing
 * else: no KVM, no transport, no device. Every index, address, length and chain the driver wrote is
 * untrusted: rings must lie wholly in one RAM region, chains may not loop or outgrow the queue,
 * indirect tables may not nest, buffers must lie in RAM and their lengths may not overflow. Any of
 * that is a QueueError (the transport then sets DEVICE_NEEDS_RESET); no access leaves guest RAM.
 */
import { hex } from '../../hex.js';

/** What a queue needs from guest memory; GuestMemory provides it, tests may provide a smaller one. */
export interface QueueMemory {
  /** A live view of [gpa, gpa+len) inside one RAM region; throws otherwise. */
  slice(gpa: number, len: number): Uint8Array;
  /** Live views of [gpa, gpa+len), split at seams between adjacent regions; throws if any byte is outside RAM. */
  views(gpa: number, len: number): Uint8Array[];
}

/** The driver broke the virtqueue contract; the message says how. */
export class QueueError extends Error {
  override name = 'QueueError';
}

export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
export const MAX_QUEUE_SIZE = 32768;
const DESC_SIZE = 16;
/** Bytes per chain a device is ever handed (virtio lengths are 32-bit; a sum past that is refused). */
const MAX_CHAIN_BYTES = 0xffff_ffff;
/** An indirect table holds at most this many descriptors (as Linux and QEMU bound it). */
const MAX_INDIRECT = MAX_QUEUE_SIZE;

export interface QueueConfig {
  size: number;
  desc: number;
  avail: number;
  used: number;
  /** VIRTIO_F_EVENT_IDX was negotiated: used_event / avail_event instead of the flags. */
  eventIdx: boolean;
  /** VIRTIO_F_INDIRECT_DESC was negotiated. */
  indirect: boolean;
}

/** One buffer chain: device-readable views first, then device-writable ones. */
export interface Chain {
  head: number;
  readable: Uint8Array[];
  writable: Uint8Array[];
  readableBytes: number;
  writableBytes: number;
}

/** A full memory fence: any Atomics operation is one (a locked instruction on x86). */
const fenceWord = new Int32Array(new SharedArrayBuffer(4));
export function fullFence(): void {
  Atomics.add(fenceWord, 0, 0);
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/** A ring's view, checked to lie in one RAM region. */
function ringView(mem: QueueMemory, what: string, gpa: number, len: number): DataView {
  let bytes: Uint8Array;
  try {
    bytes = mem.slice(gpa, len);
  } catch {
    throw new QueueError(`${what} at ${hex(gpa)} (${len} bytes) is not inside one guest RAM region`);
  }
  return new DataView(bytes.buffer, bytes.byteOffset, len);
}

export class SplitQueue {
  readonly size: number;
  private readonly desc: DataView;
  private readonly avail: DataView;
  private readonly used: DataView;
  /** The next avail ring slot the device will read (free-running, mod 2^16). */
  private lastAvail = 0;
  /** The device's used.idx (free-running, mod 2^16); the guest's copy is never read back. */
  private usedIdx = 0;
  /** used.idx when the driver was last considered for an interrupt. */
  private signalled = 0;
  /** Retired by a reset: stale completions must not touch the rings any more. */
  retired = false;

  constructor(
    private readonly mem: QueueMemory,
    readonly config: QueueConfig,
    maxSize = MAX_QUEUE_SIZE,
  ) {
    const n = config.size;
    if (!Number.isInteger(n) || !isPowerOfTwo(n) || n > maxSize) {
      throw new QueueError(`queue size ${n} is not a power of two from 1 to ${maxSize}`);
    }
    for (const [what, addr, align] of [
      ['descriptor table', config.desc, 16],
      ['driver (avail) ring', config.avail, 2],
      ['device (used) ring', config.used, 4],
    ] as const) {
      if (!Number.isSafeInteger(addr) || addr < 0) throw new QueueError(`${what} address ${String(addr)} is out of range`);
      if (addr % align !== 0) throw new QueueError(`${what} at ${hex(addr)} is not ${align}-byte aligned`);
    }
    this.size = n;
    this.desc = ringView(mem, 'descriptor table', config.desc, DESC_SIZE * n);
    // flags, idx, ring[n], used_event
    this.avail = ringView(mem, 'driver (avail) ring', config.avail, 6 + 2 * n);
    // flags, idx, ring[n] of {id, len}, avail_event
    this.used = ringView(mem, 'device (used) ring', config.used, 6 + 8 * n);
  }

  /** Chains the driver made available that the device has not taken yet. */
  pending(): number {
    const idx = this.avail.getUint16(2, true);
    const n = (idx - this.lastAvail) & 0xffff;
    if (n > this.size) throw new QueueError(`avail index ${idx} is ${n} entries ahead of the device's ${this.lastAvail}, more than the queue size ${this.size}`);
    return n;
  }

  /** Takes the next available chain, or null when there is none. */
  pop(): Chain | null {
    if (this.retired || this.pending() === 0) return null;
    const head = this.avail.getUint16(4 + 2 * (this.lastAvail % this.size), true);
    this.lastAvail = (this.lastAvail + 1) & 0xffff;
    return this.walk(head);
  }

  /**
   * The next chain; when there is none, arms the notification and looks once more, so a chain the
   * driver made available meanwhile is not left waiting for a doorbell that will not come.
   */
  next(): Chain | null {
    for (;;) {
      const chain = this.pop();
      if (chain || !this.armNotification()) return chain;
    }
  }

  private walk(head: number): Chain {
    const chain: Chain = { head, readable: [], writable: [], readableBytes: 0, writableBytes: 0 };
    let table = this.desc;
    let tableSize = this.size;
    let inIndirect = false;
    let idx = head;
    let seen = 0;
    let total = 0;
    for (;;) {
      if (idx >= tableSize) {
        throw new QueueError(`descriptor index ${idx} is outside the ${inIndirect ? 'indirect table' : 'queue'} of ${tableSize}`);
      }
      if (++seen > tableSize) {
        throw new QueueError(`descriptor chain from head ${head} loops or is longer than its ${inIndirect ? 'indirect table' : 'queue'} of ${tableSize}`);
      }
      const at = idx * DESC_SIZE;
      const lo = table.getUint32(at, true);
      const hi = table.getUint32(at + 4, true);
      const len = table.getUint32(at + 8, true);
      const flags = table.getUint16(at + 12, true);
      const next = table.getUint16(at + 14, true);
      if (hi >= 0x20_0000) throw new QueueError(`descriptor ${idx} address ${hex((BigInt(hi) << 32n) | BigInt(lo))} is outside guest RAM`);
      const addr = hi * 0x1_0000_0000 + lo;
      if (flags & VIRTQ_DESC_F_INDIRECT) {
        if (!this.config.indirect) throw new QueueError(`descriptor ${idx} is indirect but VIRTIO_F_INDIRECT_DESC was not negotiated`);
        if (inIndirect) throw new QueueError(`indirect table inside an indirect table (descriptor ${idx})`);
        if (flags & VIRTQ_DESC_F_NEXT) throw new QueueError(`descriptor ${idx} is both indirect and chained (NEXT)`);
        if (len === 0 || len % DESC_SIZE !== 0 || len / DESC_SIZE > MAX_INDIRECT) {
          throw new QueueError(`indirect table length ${len} is not a positive multiple of ${DESC_SIZE} up to ${MAX_INDIRECT} entries`);
        }
        table = ringView(this.mem, 'indirect table', addr, len);
        tableSize = len / DESC_SIZE;
        inIndirect = true;
        idx = 0;
        seen = 0;
        continue;
      }
      total += len;
      if (total > MAX_CHAIN_BYTES) throw new QueueError(`descriptor chain from head ${head} is longer than 4 GiB`);
      let views: Uint8Array[];
      try {
        views = this.mem.views(addr, len);
      } catch {
        throw new QueueError(`descriptor ${idx}: buffer at ${hex(addr)} (${len} bytes) is outside guest RAM`);
      }
      if (flags & VIRTQ_DESC_F_WRITE) {
        for (const v of views) if (v.length > 0) chain.writable.push(v);
        chain.writableBytes += len;
      } else {
        if (chain.writableBytes > 0 || chain.writable.length > 0) throw new QueueError(`descriptor ${idx} is device-readable after a device-writable one`);
        for (const v of views) if (v.length > 0) chain.readable.push(v);
        chain.readableBytes += len;
      }
      if (!(flags & VIRTQ_DESC_F_NEXT)) return chain;
      idx = next;
    }
  }

  /** Returns a chain to the driver with `written` bytes written into its writable part. */
  push(head: number, written: number): void {
    if (this.retired) return;
    const at = 4 + 8 * (this.usedIdx % this.size);
    this.used.setUint32(at, head, true);
    this.used.setUint32(at + 4, written >>> 0, true);
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    // x86 keeps stores in order, and V8 keeps these in program order: the element is visible first.
    this.used.setUint16(2, this.usedIdx, true);
  }

  /**
   * Whether the driver wants an interrupt for what was pushed since the last call (used_event with
   * EVENT_IDX, else the avail ring's NO_INTERRUPT flag).
   */
  needsInterrupt(): boolean {
    if (this.retired || this.usedIdx === this.signalled) return false;
    // The used.idx store must be visible before the driver's suppression word is read.
    fullFence();
    const old = this.signalled;
    const now = this.usedIdx;
    this.signalled = now;
    if (this.config.eventIdx) {
      const event = this.avail.getUint16(4 + 2 * this.size, true);
      return ((now - event - 1) & 0xffff) < ((now - old) & 0xffff);
    }
    return (this.avail.getUint16(0, true) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
  }

  /**
   * Asks the driver to notify on the next chain it makes available (avail_event with EVENT_IDX;
   * without it the device always wants notifications), then reports whether chains arrived
   * meanwhile: a device that went idle loops while this says true, so no notification is lost.
   */
  armNotification(): boolean {
    if (this.retired) return false;
    if (this.config.eventIdx) {
      this.used.setUint16(4 + 8 * this.size, this.lastAvail, true);
      fullFence();
    }
    return this.pending() > 0;
  }

  /** How many chains the device has returned (free-running, mod 2^16); for tests. */
  get usedIndex(): number {
    return this.usedIdx;
  }
}

/**
 * Copies between `buf` and the concatenation of `views` from its byte `offset`, as far as both
 * reach: into the views when `toViews`, out of them otherwise. Returns the byte count.
 */
function copyViews(views: readonly Uint8Array[], offset: number, buf: Uint8Array, toViews: boolean): number {
  let copied = 0;
  for (const v of views) {
    if (copied === buf.length) break;
    if (offset >= v.length) {
      offset -= v.length;
      continue;
    }
    const n = Math.min(v.length - offset, buf.length - copied);
    if (toViews) v.set(buf.subarray(copied, copied + n), offset);
    else buf.set(v.subarray(offset, offset + n), copied);
    copied += n;
    offset = 0;
  }
  return copied;
}

/** Copies up to dest.length bytes out of `views`, from byte `offset` of their concatenation. */
export function gather(views: readonly Uint8Array[], offset: number, dest: Uint8Array): number {
  return copyViews(views, offset, dest, false);
}

/** Copies `src` into `views` from byte `offset` of their concatenation, as far as they reach. */
export function scatter(views: readonly Uint8Array[], offset: number, src: Uint8Array): number {
  return copyViews(views, offset, src, true);
}

/** `views` with the first `skip` bytes and everything past `skip + length` cut off. */
export function subViews(views: readonly Uint8Array[], skip: number, length: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const v of views) {
    if (length <= 0) break;
    if (skip >= v.length) {
      skip -= v.length;
      continue;
    }
    const n = Math.min(v.length - skip, length);
    out.push(v.subarray(skip, skip + n));
    length -= n;
    skip = 0;
  }
  return out;
}
