/**
 * QEMU's stream framing of Ethernet frames, as passt speaks it on its --fd socket and as kvm-ts's
 * `mode=socket` speaks it between two VMs: each frame preceded by its length, 4 bytes big-endian,
 * and no vnet header. Frames out are dropped (and counted) once MAX_PENDING bytes wait for the peer,
 * so a peer that stops reading never makes the VMM buffer without bound; a length past MAX_FRAME is
 * a broken peer, and the connection is closed.
 */
import type { Socket } from 'node:net';
import { MAX_FRAME } from '../net.js';

/** Bytes written but not yet taken by the peer, past which frames are dropped. */
export const MAX_PENDING = 1 << 20;

export interface StreamCounters {
  framesIn: number;
  framesOut: number;
  /** Frames not sent: no peer, or MAX_PENDING bytes already waiting for it. */
  droppedOut: number;
  /** Connections closed for a frame length past MAX_FRAME. */
  badFrames: number;
}

/** Splits a byte stream into frames; `onFrame` gets each whole frame (a view it may keep). */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  constructor(
    private readonly onFrame: (frame: Uint8Array) => void,
    private readonly onBad: (len: number) => void,
  ) {}

  /** Feeds bytes; false once a bad length was seen (the caller closes the stream). */
  push(chunk: Buffer): boolean {
    const buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let at = 0;
    while (buf.length - at >= 4) {
      const len = buf.readUInt32BE(at);
      if (len > MAX_FRAME) {
        this.pending = Buffer.alloc(0);
        this.onBad(len);
        return false;
      }
      if (buf.length - at - 4 < len) break;
      if (len > 0) this.onFrame(buf.subarray(at + 4, at + 4 + len));
      at += 4 + len;
    }
    // Copied, so a small remainder does not pin a large chunk.
    this.pending = at === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(at));
    return true;
  }
}

/** One framed connection: reads frames into `receive`, writes frames with back-pressure by dropping. */
export class FramedConnection {
  private readonly reader: FrameReader;
  closed = false;

  constructor(
    readonly socket: Socket,
    receive: (frame: Uint8Array) => void,
    private readonly counters: StreamCounters,
    onBad: (len: number) => void,
    onClose: () => void,
  ) {
    this.reader = new FrameReader(
      (f) => {
        counters.framesIn++;
        receive(f);
      },
      (len) => {
        counters.badFrames++;
        onBad(len);
      },
    );
    socket.on('data', (chunk: Buffer) => {
      if (!this.closed && !this.reader.push(chunk)) socket.destroy();
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.closed = true;
      onClose();
    });
  }

  send(frame: Uint8Array): boolean {
    if (this.closed || this.socket.writableLength > MAX_PENDING) {
      this.counters.droppedOut++;
      return false;
    }
    const out = Buffer.allocUnsafe(4 + frame.length);
    out.writeUInt32BE(frame.length, 0);
    out.set(frame, 4);
    this.socket.write(out);
    this.counters.framesOut++;
    return true;
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }
}

export function streamCounters(): StreamCounters {
  return { framesIn: 0, framesOut: 0, droppedOut: 0, badFrames: 0 };
}
