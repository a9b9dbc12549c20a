/**
 * virtio-console (virtio 1.x §5.3), one port, no multiport: Linux's hvc0. Transmitted bytes go to
 * a ConsoleSink (stdout, a terminal, or whatever the VMM's console is); received bytes come from
 * feed(). When the sink reports it cannot take more, transmit buffers stay in the ring until it
 * drains, so a stalled stdout slows the guest's console down instead of growing a buffer.
 */
import { NextTurn, VIRTIO_ID_CONSOLE, type VirtioContext, type VirtioDevice } from './device.js';
import { gather, scatter } from './queue.js';

export const RX_QUEUE = 0;
export const TX_QUEUE = 1;
export const QUEUE_SIZE = 64;
/** Bytes taken from one transmit chain; a longer chain's rest is dropped (and counted). */
export const MAX_TX_CHAIN = 64 << 10;
/** Console input handed to the device at a time (rxSpace). */
const RX_CHUNK = 4096;
/** Chains handled before yielding to the event loop. */
const BATCH = 256;
/** cols, rows, max_nr_ports, emerg_wr (§5.3.4); none of the features that give them meaning is offered. */
const CONFIG_SIZE = 12;

/** Where console output goes: the narrow interface the VMM's console implements. */
export interface ConsoleSink {
  write(bytes: Uint8Array): void;
  /** False while output is stalled (stdout not draining). */
  readonly writable: boolean;
  /** Calls `cb` once when output can take more again. */
  onDrain(cb: () => void): void;
}

/** A sink that is always writable (tests, and consoles without flow control). */
export function plainSink(write: (bytes: Uint8Array) => void): ConsoleSink {
  return { write, writable: true, onDrain: (cb) => queueMicrotask(cb) };
}

export class VirtioConsole implements VirtioDevice {
  readonly type = VIRTIO_ID_CONSOLE;
  readonly name = 'virtio-console hvc0';
  readonly features = 0n;
  readonly queueSizes = [QUEUE_SIZE, QUEUE_SIZE];
  readonly configSize = CONFIG_SIZE;
  private ctx: VirtioContext | undefined;
  private backlog: Uint8Array[] = [];
  private waitingForDrain = false;
  /** Per queue: a batch that filled its quota goes on next turn (one queue's wait never hides the other's). */
  private readonly txTurn = new NextTurn();
  private readonly rxTurn = new NextTurn();
  /** Transmitted bytes beyond MAX_TX_CHAIN per chain that were dropped. */
  droppedTx = 0;

  constructor(private readonly sink: ConsoleSink) {}

  readConfig(_offset: number, data: Uint8Array): void {
    data.fill(0);
  }

  writeConfig(): void {}

  activate(ctx: VirtioContext): void {
    this.ctx = ctx;
    this.transmit();
    this.receive();
  }

  notify(i: number): void {
    if (i === TX_QUEUE) this.transmit();
    else this.receive();
  }

  reset(): void {
    this.ctx = undefined;
  }

  close(): Promise<void> {
    this.ctx = undefined;
    return Promise.resolve();
  }

  /**
   * Room for console input (ConsoleReceiver, with feed): one chunk at a time, once the driver runs
   * and took the previous one, so what waits for the guest is bounded by the VMM's ConsoleInput.
   */
  rxSpace(): number {
    return this.ctx && this.backlog.length === 0 ? RX_CHUNK : 0;
  }

  /** Console input for the guest; kept until the driver posts receive buffers. Takes all of `bytes`. */
  feed(bytes: Uint8Array): number {
    if (bytes.length === 0) return 0;
    this.backlog.push(bytes.slice());
    this.ctx?.guard(() => this.receive());
    return bytes.length;
  }

  /** Input bytes not yet taken by the guest. */
  get pendingInput(): number {
    return this.backlog.reduce((n, b) => n + b.length, 0);
  }

  private transmit(): void {
    const ctx = this.ctx;
    const q = ctx?.queue(TX_QUEUE);
    if (!ctx || !q || this.waitingForDrain) return;
    let n = 0;
    for (; n < BATCH; n++) {
      if (!this.sink.writable) {
        this.waitingForDrain = true;
        this.sink.onDrain(() => {
          this.waitingForDrain = false;
          ctx.guard(() => this.transmit());
        });
        break;
      }
      const chain = q.next();
      if (!chain) break;
      const len = Math.min(chain.readableBytes, MAX_TX_CHAIN);
      this.droppedTx += chain.readableBytes - len;
      const bytes = new Uint8Array(len);
      gather(chain.readable, 0, bytes);
      if (len > 0) this.sink.write(bytes);
      q.push(chain.head, 0);
      ctx.count(TX_QUEUE, len);
    }
    if (n > 0) ctx.used(TX_QUEUE);
    if (n === BATCH) this.txTurn.schedule(this.ctx, () => this.transmit());
  }

  private receive(): void {
    const ctx = this.ctx;
    const q = ctx?.queue(RX_QUEUE);
    if (!ctx || !q) return;
    let n = 0;
    while (this.backlog.length > 0 && n < BATCH) {
      const chain = q.next();
      if (!chain) break;
      let written = 0;
      while (this.backlog.length > 0 && written < chain.writableBytes) {
        const head = this.backlog[0];
        const m = scatter(chain.writable, written, head);
        written += m;
        if (m >= head.length) this.backlog.shift();
        else this.backlog[0] = head.subarray(m);
        if (m === 0) break;
      }
      q.push(chain.head, written);
      ctx.count(RX_QUEUE, written);
      n++;
    }
    if (n > 0) ctx.used(RX_QUEUE);
    if (n === BATCH) this.rxTurn.schedule(this.ctx, () => this.receive());
  }

}
