/**
 * A virtio-mmio driver in TypeScript for tests without KVM: it drives an MmioTransport through its
 * registers (as a guest's MMIO accesses would) over a GuestMemory, and builds split-queue rings
 * and descriptor chains in that memory.
 */
import { GuestMemory } from '../../src/memory.js';
import { MmioTransport, REG } from '../../src/devices/virtio/mmio.js';
import { STATUS_ACKNOWLEDGE, STATUS_DRIVER, STATUS_DRIVER_OK, STATUS_FEATURES_OK, TRANSPORT_FEATURES, type VirtioDevice } from '../../src/devices/virtio/device.js';
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../src/devices/virtio/queue.js';

export const BASE = 0xd000_0000n;

export interface GuestBuffer {
  addr: number;
  len: number;
  write?: boolean;
}

export interface DriverQueue {
  index: number;
  size: number;
  desc: number;
  avail: number;
  used: number;
  availIdx: number;
  lastUsed: number;
  nextDesc: number;
}

/** Rings and descriptor chains in guest memory: what a driver does the same on every transport. */
export abstract class RingDriver {
  readonly mem: GuestMemory;
  readonly logs: string[] = [];
  private heap = 0x1_0000;
  readonly queues: DriverQueue[] = [];

  constructor(memBytes: number) {
    this.mem = GuestMemory.allocate(memBytes);
  }

  abstract kick(q: DriverQueue): void;

  /** Guest memory for rings and buffers, page aligned, zeroed. */
  alloc(len: number, align = 4096): number {
    const at = Math.ceil(this.heap / align) * align;
    this.heap = at + len;
    if (this.heap > this.mem.size) throw new Error('test driver out of memory');
    this.mem.fill(at, len, 0);
    return at;
  }

  writeDesc(q: DriverQueue, i: number, addr: number, len: number, flags: number, next: number): void {
    const at = q.desc + 16 * i;
    this.mem.writeU64(at, BigInt(addr));
    this.mem.writeU32(at + 8, len);
    this.mem.writeU16(at + 12, flags);
    this.mem.writeU16(at + 14, next);
  }

  /** Chains `buffers` into fresh descriptors and makes the chain available; returns the head. */
  add(q: DriverQueue, buffers: GuestBuffer[]): number {
    const head = q.nextDesc % q.size;
    buffers.forEach((b, k) => {
      const i = (q.nextDesc + k) % q.size;
      const last = k === buffers.length - 1;
      this.writeDesc(q, i, b.addr, b.len, (b.write ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT), last ? 0 : (i + 1) % q.size);
    });
    q.nextDesc += buffers.length;
    this.publish(q, head);
    return head;
  }

  publish(q: DriverQueue, head: number): void {
    this.mem.writeU16(q.avail + 4 + 2 * (q.availIdx % q.size), head);
    q.availIdx = (q.availIdx + 1) & 0xffff;
    this.mem.writeU16(q.avail + 2, q.availIdx);
  }

  /** Used elements the device returned since the last call. */
  takeUsed(q: DriverQueue): Array<{ id: number; len: number }> {
    const out: Array<{ id: number; len: number }> = [];
    const idx = this.mem.readU16(q.used + 2);
    while (q.lastUsed !== idx) {
      const at = q.used + 4 + 8 * (q.lastUsed % q.size);
      out.push({ id: this.mem.readU32(at), len: this.mem.readU32(at + 4) });
      q.lastUsed = (q.lastUsed + 1) & 0xffff;
    }
    return out;
  }

  /** Polls the used ring (letting the event loop run) until `n` elements came or `ms` passed. */
  async waitUsed(q: DriverQueue, n: number, ms = 5000): Promise<Array<{ id: number; len: number }>> {
    const got: Array<{ id: number; len: number }> = [];
    const until = Date.now() + ms;
    while (got.length < n && Date.now() < until) {
      got.push(...this.takeUsed(q));
      if (got.length < n) await new Promise((r) => setTimeout(r, 1));
    }
    return got;
  }

  /** A buffer in guest memory holding `bytes` (or `len` zeros). */
  buffer(bytesOrLen: Uint8Array | number, write = false): GuestBuffer {
    const len = typeof bytesOrLen === 'number' ? bytesOrLen : bytesOrLen.length;
    const addr = this.alloc(len, 16);
    if (typeof bytesOrLen !== 'number') this.mem.write(addr, bytesOrLen);
    return { addr, len, write };
  }
}

/** A virtio-mmio driver: RingDriver over an MmioTransport's registers. */
export class TestDriver extends RingDriver {
  readonly transport: MmioTransport;
  interrupts = 0;

  constructor(device: VirtioDevice, memBytes = 8 << 20) {
    super(memBytes);
    this.transport = new MmioTransport(device, this.mem, BASE, { interrupt: () => this.interrupts++, log: (l) => this.logs.push(l) });
  }

  r(off: number): number {
    const d = new Uint8Array(4);
    this.transport.read(BASE + BigInt(off), d);
    return new DataView(d.buffer).getUint32(0, true);
  }

  w(off: number, v: number): void {
    const d = new Uint8Array(4);
    new DataView(d.buffer).setUint32(0, v >>> 0, true);
    this.transport.write(BASE + BigInt(off), d);
  }

  /** Reset, ACKNOWLEDGE, DRIVER, features (default: everything offered), FEATURES_OK. */
  negotiate(features?: bigint): boolean {
    this.w(REG.Status, 0);
    this.w(REG.Status, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    this.w(REG.DeviceFeaturesSel, 0);
    let offered = BigInt(this.r(REG.DeviceFeatures));
    this.w(REG.DeviceFeaturesSel, 1);
    offered |= BigInt(this.r(REG.DeviceFeatures)) << 32n;
    const f = features ?? (offered | TRANSPORT_FEATURES);
    this.w(REG.DriverFeaturesSel, 0);
    this.w(REG.DriverFeatures, Number(f & 0xffff_ffffn));
    this.w(REG.DriverFeaturesSel, 1);
    this.w(REG.DriverFeatures, Number(f >> 32n));
    this.w(REG.Status, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
    return (this.r(REG.Status) & STATUS_FEATURES_OK) !== 0;
  }

  setupQueue(index: number, size: number): DriverQueue {
    const q: DriverQueue = { index, size, desc: this.alloc(16 * size), avail: this.alloc(6 + 2 * size), used: this.alloc(6 + 8 * size), availIdx: 0, lastUsed: 0, nextDesc: 0 };
    this.w(REG.QueueSel, index);
    this.w(REG.QueueNum, size);
    this.w(REG.QueueDescLow, q.desc);
    this.w(REG.QueueDescHigh, 0);
    this.w(REG.QueueDriverLow, q.avail);
    this.w(REG.QueueDriverHigh, 0);
    this.w(REG.QueueDeviceLow, q.used);
    this.w(REG.QueueDeviceHigh, 0);
    this.w(REG.QueueReady, 1);
    this.queues[index] = q;
    return q;
  }

  driverOk(): void {
    this.w(REG.Status, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
  }

  /** Negotiates, sets up every queue with `size`, and sets DRIVER_OK. */
  start(queues: number, size = 16): void {
    if (!this.negotiate()) throw new Error('FEATURES_OK refused');
    for (let i = 0; i < queues; i++) this.setupQueue(i, size);
    this.driverOk();
  }

  kick(q: DriverQueue): void {
    this.w(REG.QueueNotify, q.index);
  }
}
