/**
 * virtio-net (virtio 1.x §5.1): one receive and one transmit queue in front of a NetBackend (a tap,
 * passt, or a UNIX stream socket; net-backends/). Offers VIRTIO_NET_F_MAC, F_STATUS (link up),
 * F_MRG_RXBUF, and checksum offload (F_CSUM, F_GUEST_CSUM) only where the backend carries a vnet
 * header. Everything the driver hands over is untrusted: headers are checked (no GSO is offered, so
 * none is accepted), frames shorter than an Ethernet header or longer than MAX_FRAME are dropped and
 * counted, and received frames wait in a bounded backlog while the driver posts no buffers — past it
 * they are dropped, never queued without bound.
 */
import { createHash } from 'node:crypto';
import { bit, NextTurn, VIRTIO_ID_NET, type VirtioContext, type VirtioDevice } from './device.js';
import { gather, type Chain, type SplitQueue } from './queue.js';

export { NetError, formatMac, parseMac } from './net-backends/spec.js';

export const VIRTIO_NET_F_CSUM = 0;
export const VIRTIO_NET_F_GUEST_CSUM = 1;
export const VIRTIO_NET_F_MAC = 5;
export const VIRTIO_NET_F_MRG_RXBUF = 15;
export const VIRTIO_NET_F_STATUS = 16;
export const VIRTIO_NET_S_LINK_UP = 1;
/** struct virtio_net_hdr_v1: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers. */
export const NET_HDR_LEN = 12;
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;
export const RX_QUEUE = 0;
export const TX_QUEUE = 1;
export const QUEUE_SIZE = 256;
const ETH_HLEN = 14;
/** The largest frame either way: an MTU of 65535 plus the Ethernet header (no GSO is offered). */
export const MAX_FRAME = 65535 + ETH_HLEN;
/** Received frames held while the driver has no buffers posted; past this they are dropped. */
export const RX_BACKLOG = 256;
/** Chains handled before yielding to the event loop. */
const BATCH = 256;
/** mac[6], status, max_virtqueue_pairs, mtu (§5.1.4). */
const CONFIG_SIZE = 12;

/** What a backend is to the device: frames out, frames in, and its own counters. */
export interface NetBackend {
  /** For logs: "tap tap0", "passt", "socket /run/vm.sock". */
  readonly name: string;
  /** Frames carry a virtio_net_hdr_v1 first (a tap with IFF_VNET_HDR): checksum offload can pass through. */
  readonly vnetHeader: boolean;
  /** Starts delivering received frames (header first when vnetHeader) to `receive`. */
  start(receive: (frame: Uint8Array) => void): void;
  /** A frame from the guest (header first when vnetHeader); false when the backend dropped it. */
  send(frame: Uint8Array): boolean;
  /** The driver's receive checksum choice (a tap's TUNSETOFFLOAD). */
  setOffload?(guestCsum: boolean): void;
  counters(): Record<string, number>;
  close(): Promise<void>;
}

/** A stable, locally administered unicast MAC for device `index` of the VM called `vmName`. */
export function defaultMac(vmName: string, index: number): Uint8Array {
  const h = createHash('sha256').update(`kvm-ts virtio-net ${vmName} ${index}`).digest();
  const mac = Uint8Array.from(h.subarray(0, 6));
  mac[0] = (mac[0] & 0xfc) | 0x02;
  return mac;
}

/** What the device counts beyond its queues' chains and bytes (`stat`, the run summary). */
export interface NetCounters {
  rxFrames: number;
  /** Dropped on receive: the backlog was full (the driver posted no buffers) or the driver was not running. */
  rxDropped: number;
  /** Dropped on receive: shorter than an Ethernet header, longer than MAX_FRAME, or more than the driver's buffers can ever hold. */
  rxBadLength: number;
  /** Dropped on receive: a backend header the driver did not negotiate (GSO, or NEEDS_CSUM without GUEST_CSUM). */
  rxBadHeader: number;
  txFrames: number;
  /** Transmitted chains shorter than the header and an Ethernet header, or longer than MAX_FRAME. */
  txBadLength: number;
  /** Transmitted headers with GSO, unknown flags, or NEEDS_CSUM not negotiated or out of the frame. */
  txBadHeader: number;
  /** Frames the backend did not take (its peer gone, or its buffer full). */
  txDropped: number;
}

export class VirtioNet implements VirtioDevice {
  readonly type = VIRTIO_ID_NET;
  readonly name: string;
  readonly features: bigint;
  readonly queueSizes = [QUEUE_SIZE, QUEUE_SIZE];
  readonly configSize = CONFIG_SIZE;
  readonly mac: Uint8Array;
  readonly stats: NetCounters = { rxFrames: 0, rxDropped: 0, rxBadLength: 0, rxBadHeader: 0, txFrames: 0, txBadLength: 0, txBadHeader: 0, txDropped: 0 };
  private ctx: VirtioContext | undefined;
  private backlog: Uint8Array[] = [];
  /** Receive chains taken for the frame at the head of the backlog, not yet returned. */
  private held: Chain[] = [];
  private heldBytes = 0;
  /** Per queue: a batch that filled its quota goes on next turn (one queue's wait never hides the other's). */
  private readonly txTurn = new NextTurn();
  private readonly rxTurn = new NextTurn();
  private closed = false;

  constructor(
    private readonly backend: NetBackend,
    mac: Uint8Array,
    index = 0,
  ) {
    this.name = `virtio-net eth${index} (${backend.name})`;
    this.mac = Uint8Array.from(mac);
    const offload = backend.vnetHeader ? bit(VIRTIO_NET_F_CSUM) | bit(VIRTIO_NET_F_GUEST_CSUM) : 0n;
    this.features = bit(VIRTIO_NET_F_MAC) | bit(VIRTIO_NET_F_STATUS) | bit(VIRTIO_NET_F_MRG_RXBUF) | offload;
    backend.start((frame) => this.fromBackend(frame));
  }

  readConfig(offset: number, data: Uint8Array): void {
    const cfg = new Uint8Array(CONFIG_SIZE);
    const v = new DataView(cfg.buffer);
    cfg.set(this.mac, 0);
    v.setUint16(6, VIRTIO_NET_S_LINK_UP, true);
    v.setUint16(8, 1, true); // max_virtqueue_pairs (meaningful with F_MQ only)
    v.setUint16(10, 1500, true); // mtu (meaningful with F_MTU only)
    data.set(cfg.subarray(offset, offset + data.length));
  }

  /** The MAC is read-only in virtio 1.x (VIRTIO_NET_F_CTRL_MAC_ADDR is not offered). */
  writeConfig(): void {}

  activate(ctx: VirtioContext): void {
    this.ctx = ctx;
    this.backend.setOffload?.(this.negotiated(VIRTIO_NET_F_GUEST_CSUM));
    this.transmit();
    this.fill();
  }

  notify(i: number): void {
    if (i === TX_QUEUE) this.transmit();
    else this.fill();
  }

  reset(): void {
    this.ctx = undefined;
    this.backlog = [];
    this.held = [];
    this.heldBytes = 0;
  }

  close(): Promise<void> {
    this.reset();
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return this.backend.close();
  }

  counters(): Record<string, number> {
    const own = { ...this.stats } as Record<string, number>;
    for (const [k, v] of Object.entries(this.backend.counters())) own[`backend.${k}`] = v;
    return own;
  }

  private negotiated(feature: number): boolean {
    return this.ctx !== undefined && (this.ctx.features & bit(feature)) !== 0n;
  }

  // ---- receive: backend -> guest ----

  private fromBackend(frame: Uint8Array): void {
    const ctx = this.ctx;
    if (!ctx || this.backlog.length >= RX_BACKLOG) {
      this.stats.rxDropped++;
      return;
    }
    const header = this.receiveHeader(frame);
    if (!header) return;
    this.backlog.push(header);
    ctx.guard(() => this.fill());
  }

  /**
   * The frame as the guest will see it: a header of its own (the backend's checked, or zeros)
   * followed by the frame; undefined when it is dropped.
   */
  private receiveHeader(frame: Uint8Array): Uint8Array | undefined {
    const hdr = this.backend.vnetHeader ? NET_HDR_LEN : 0;
    const len = frame.length - hdr;
    if (len < ETH_HLEN || len > MAX_FRAME) {
      this.stats.rxBadLength++;
      return undefined;
    }
    const out = new Uint8Array(NET_HDR_LEN + len);
    out.set(frame.subarray(hdr), NET_HDR_LEN);
    if (hdr) {
      const flags = frame[0];
      const gso = frame[1];
      const guestCsum = this.negotiated(VIRTIO_NET_F_GUEST_CSUM);
      if (gso !== 0 || flags & ~(VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID) || (flags & VIRTIO_NET_HDR_F_NEEDS_CSUM && !guestCsum)) {
        this.stats.rxBadHeader++;
        return undefined;
      }
      if (guestCsum) out.set(frame.subarray(0, 10), 0); // num_buffers is ours to fill
    }
    return out;
  }

  /** Hands backlog frames to the driver's receive buffers, as many as it posted. */
  private fill(): void {
    const ctx = this.ctx;
    const q = ctx?.queue(RX_QUEUE);
    if (!ctx || !q) return;
    const mergeable = this.negotiated(VIRTIO_NET_F_MRG_RXBUF);
    let delivered = 0;
    while (this.backlog.length > 0 && delivered < BATCH) {
      const frame = this.backlog[0];
      if (!this.gatherRoom(q, frame.length, mergeable)) break;
      this.backlog.shift();
      const used = this.roomFor(frame.length, mergeable);
      if (used === 0) {
        // No buffers the driver posts can hold it: dropped, the chains kept for the next frame.
        this.stats.rxBadLength++;
        continue;
      }
      this.deliver(q, frame, used);
      ctx.count(RX_QUEUE, frame.length - NET_HDR_LEN);
      this.stats.rxFrames++;
      delivered++;
    }
    if (delivered > 0) ctx.used(RX_QUEUE);
    if (delivered === BATCH) this.rxTurn.schedule(this.ctx, () => this.fill());
  }

  /**
   * Takes receive chains until those held can hold `need` bytes (false: the driver has to post more
   * first). Without MRG_RXBUF one chain must hold the whole frame; with it, the frame may span up to
   * a queue's worth of chains.
   */
  private gatherRoom(q: SplitQueue, need: number, mergeable: boolean): boolean {
    const limit = mergeable ? Math.min(q.size, 0xffff) : 1;
    while (this.heldBytes < need && this.held.length < limit) {
      const chain = q.next();
      if (!chain) return false;
      if (chain.readableBytes > 0 || chain.writableBytes === 0) {
        this.ctx?.fail(`receive chain ${chain.head} has ${chain.readableBytes > 0 ? 'device-readable buffers' : 'no device-writable buffer'}`);
        return false;
      }
      this.held.push(chain);
      this.heldBytes += chain.writableBytes;
    }
    return true;
  }

  /** How many held chains a frame of `need` bytes fills (0: they cannot hold it). */
  private roomFor(need: number, mergeable: boolean): number {
    let room = 0;
    for (let i = 0; i < this.held.length; i++) {
      room += this.held[i].writableBytes;
      if (room >= need) return i + 1;
      if (!mergeable) return 0;
    }
    return 0;
  }

  /** Writes `frame` (header first, num_buffers set) across the first `count` held chains and returns them. */
  private deliver(q: SplitQueue, frame: Uint8Array, count: number): void {
    new DataView(frame.buffer, frame.byteOffset).setUint16(10, count, true);
    let at = 0;
    for (const chain of this.held.splice(0, count)) {
      const start = at;
      for (const v of chain.writable) {
        if (at >= frame.length) break;
        const n = Math.min(v.length, frame.length - at);
        v.set(frame.subarray(at, at + n));
        at += n;
      }
      this.heldBytes -= chain.writableBytes;
      q.push(chain.head, at - start);
    }
  }

  // ---- transmit: guest -> backend ----

  private transmit(): void {
    const ctx = this.ctx;
    const q = ctx?.queue(TX_QUEUE);
    if (!ctx || !q) return;
    let n = 0;
    for (; n < BATCH; n++) {
      const chain = q.next();
      if (!chain) break;
      const len = chain.readableBytes;
      if (len < NET_HDR_LEN + ETH_HLEN || len > NET_HDR_LEN + MAX_FRAME) {
        this.stats.txBadLength++;
      } else {
        const bytes = new Uint8Array(len);
        gather(chain.readable, 0, bytes);
        if (this.txHeaderOk(bytes)) {
          bytes.fill(0, 10, 12); // num_buffers means nothing on transmit
          const sent = this.backend.send(this.backend.vnetHeader ? bytes : bytes.subarray(NET_HDR_LEN));
          if (sent) this.stats.txFrames++;
          else this.stats.txDropped++;
          ctx.count(TX_QUEUE, len - NET_HDR_LEN);
        } else {
          this.stats.txBadHeader++;
        }
      }
      q.push(chain.head, 0);
    }
    if (n > 0) ctx.used(TX_QUEUE);
    if (n === BATCH) this.txTurn.schedule(this.ctx, () => this.transmit());
  }

  /** No GSO (none is offered); NEEDS_CSUM only with F_CSUM and with its field inside the frame. */
  private txHeaderOk(bytes: Uint8Array): boolean {
    const v = new DataView(bytes.buffer, bytes.byteOffset, NET_HDR_LEN);
    const flags = v.getUint8(0);
    if (v.getUint8(1) !== 0 || flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM) return false;
    if (!(flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)) return true;
    if (!this.negotiated(VIRTIO_NET_F_CSUM)) return false;
    const frameLen = bytes.length - NET_HDR_LEN;
    return v.getUint16(6, true) + v.getUint16(8, true) + 2 <= frameLen;
  }

}
