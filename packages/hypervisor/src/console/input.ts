/**
 * Console input on its way to the guest: a bounded queue in front of the UART's 16-byte FIFO. What
 * does not fit waits here; once `limit` bytes wait, push() says stop so the source (stdin) is
 * paused, and room listeners resume it as the guest drains the FIFO. A guest that never reads
 * therefore costs at most `limit` bytes (plus one chunk), not all of stdin.
 */

/** What the queue drains into (the UART: Serial.rxSpace/feed). */
export interface ConsoleReceiver {
  rxSpace(): number;
  feed(bytes: Uint8Array): number;
}

export const CONSOLE_INPUT_LIMIT = 64 * 1024;
/** How often waiting input is offered to the receiver again. */
const RETRY_MS = 2;

export class ConsoleInput {
  /** Oldest first; chunks, not bytes, so a large piped input costs O(n), not O(n²). */
  private backlog: Uint8Array[] = [];
  private backlogBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private roomWaiters: Array<() => void> = [];
  private closed = false;

  constructor(
    private readonly receiver: ConsoleReceiver,
    readonly limit = CONSOLE_INPUT_LIMIT,
  ) {}

  /** Queues `bytes` (copied); false when the queue is full: pause the source until onRoom fires. */
  push(bytes: Uint8Array): boolean {
    if (this.closed) return true;
    if (bytes.length > 0) {
      this.backlog.push(bytes.slice());
      this.backlogBytes += bytes.length;
    }
    this.drain();
    return this.backlogBytes < this.limit;
  }

  /** Calls `listener` once, when the queue has room again (at once if it has). */
  onRoom(listener: () => void): void {
    if (this.closed || this.backlogBytes < this.limit) queueMicrotask(listener);
    else this.roomWaiters.push(listener);
  }

  /** Bytes waiting for the guest. */
  get queued(): number {
    return this.backlogBytes;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.backlog = [];
    this.backlogBytes = 0;
  }

  /** Moves what fits into the receiver; retries on a timer while input waits. */
  private drain(): void {
    while (this.backlog.length > 0) {
      const room = this.receiver.rxSpace();
      if (room === 0) break;
      const head = this.backlog[0];
      const n = this.receiver.feed(head.subarray(0, room));
      if (n >= head.length) this.backlog.shift();
      else this.backlog[0] = head.subarray(n);
      this.backlogBytes -= n;
      if (n === 0) break;
    }
    // Resume the source at half: one pause per half-queue, not one per byte.
    if (this.roomWaiters.length > 0 && this.backlogBytes <= this.limit / 2) {
      const waiters = this.roomWaiters;
      this.roomWaiters = [];
      for (const w of waiters) w();
    }
    if (this.backlog.length > 0 && !this.timer && !this.closed) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.drain();
      }, RETRY_MS);
      this.timer.unref();
    }
  }
}
