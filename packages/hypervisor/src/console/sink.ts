/**
 * Where guest console bytes go (the UART now, a virtio console later), with back-pressure: bytes
 * are coalesced into one write per event-loop turn, and when the output stops draining the sink
 * says so (`writable` false) so a device can stop taking bytes from the guest — the UART keeps
 * THRE/TEMT clear — instead of the VMM buffering them. A guest that writes regardless is bounded
 * by `limit`: past it bytes are dropped and counted. docs/design-vmm.md, "Console back-pressure".
 */

/** The part of a Node writable stream (process.stdout, a pipe, a file) the sink uses. */
export interface ByteStream {
  write(chunk: Uint8Array): boolean;
  once(event: 'drain', listener: () => void): unknown;
  readonly writableLength?: number;
  destroy?(): void;
}

export interface ConsoleSinkOptions {
  /** Backlog at which `writable` turns false (devices stop reporting their transmitter empty). */
  highWater?: number;
  /** Backlog past which guest bytes are dropped: what a guest that ignores `writable` can make the VMM hold. */
  limit?: number;
}

export const CONSOLE_HIGH_WATER = 64 * 1024;
export const CONSOLE_LIMIT = 1024 * 1024;

export class ConsoleSink {
  private readonly highWater: number;
  private readonly limit: number;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  /** The stream said stop (write returned false) and has not drained yet. */
  private blocked = false;
  private flushScheduled = false;
  private stopped = false;
  private droppedBytes = 0;
  private waiters: Array<() => void> = [];

  /** `out` is a stream, or a function that takes bytes at once (never blocks: tests, in-process users). */
  constructor(
    private readonly out: ByteStream | ((bytes: Uint8Array) => void),
    opts: ConsoleSinkOptions = {},
  ) {
    this.highWater = opts.highWater ?? CONSOLE_HIGH_WATER;
    this.limit = opts.limit ?? CONSOLE_LIMIT;
  }

  /** Guest bytes; copied, so callers may reuse their buffer. */
  write(bytes: Uint8Array): void {
    if (this.stopped || bytes.length === 0) return;
    if (typeof this.out === 'function') {
      this.out(bytes.slice());
      return;
    }
    const room = this.limit - this.pendingBytes;
    if (room < bytes.length) this.droppedBytes += bytes.length - Math.max(room, 0);
    if (room <= 0) return;
    const kept = room < bytes.length ? bytes.subarray(0, room) : bytes;
    this.pending.push(kept.slice());
    this.pendingBytes += kept.length;
    if (!this.flushScheduled && !this.blocked) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** False while the output is not draining: devices should hold off the guest. */
  get writable(): boolean {
    return this.stopped || (!this.blocked && this.pendingBytes < this.highWater);
  }

  /** Calls `listener` once, as soon as `writable` is true (at once if it is). */
  onWritable(listener: () => void): void {
    if (this.writable) queueMicrotask(listener);
    else this.waiters.push(listener);
  }

  /** Bytes dropped so far: past `limit`, after stop(), or not drained by settle(). */
  get dropped(): number {
    return this.droppedBytes;
  }

  /** Nothing takes the output any more (EPIPE): discard from now on, and let the guest run free. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.pending = [];
    this.pendingBytes = 0;
    this.wake();
  }

  /**
   * Waits up to `graceMs` for everything to drain; what is still held then is dropped and the
   * stream destroyed (process.stdout ignores that: the caller must then exit). True if all drained.
   */
  async settle(graceMs: number): Promise<boolean> {
    if (typeof this.out === 'function' || this.stopped) return true;
    const drained = () => this.pendingBytes === 0 && !this.blocked && (this.out as ByteStream).writableLength === 0;
    const until = performance.now() + graceMs;
    while (!drained() && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
    if (drained()) return true;
    this.droppedBytes += this.pendingBytes + ((this.out as ByteStream).writableLength ?? 0);
    this.stop();
    (this.out as ByteStream).destroy?.();
    return false;
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.stopped || this.blocked || this.pendingBytes === 0) return;
    const stream = this.out as ByteStream;
    const chunk = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    if (!stream.write(chunk)) {
      this.blocked = true;
      stream.once('drain', () => {
        this.blocked = false;
        this.flush();
        this.wake();
      });
    } else {
      this.wake();
    }
  }

  private wake(): void {
    if (!this.writable || this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
