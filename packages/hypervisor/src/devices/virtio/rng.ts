/**
 * virtio-rng (virtio 1.x §5.4): fills the driver's writable buffers with bytes from the host's
 * CSPRNG (getrandom through node:crypto). A token bucket bounds bytes and requests per second, so
 * a guest that asks without pause costs the host a bounded amount of work: once the bucket is
 * empty the queue waits for a timer, not for the next notification.
 */
import { randomFillSync } from 'node:crypto';
import { VIRTIO_ID_RNG, type VirtioContext, type VirtioDevice } from './device.js';

export const QUEUE_SIZE = 64;

export interface RngOptions {
  /** Bytes per second the guest may draw (default 1 MiB/s). */
  bytesPerSecond?: number;
  /** What the bucket holds when full (default 64 KiB): the burst a guest gets at once. */
  burstBytes?: number;
  /** Every request costs at least this many bytes of budget, so empty requests are not free (default 64). */
  requestCost?: number;
  /** Milliseconds since some fixed point (default performance.now). */
  now?: () => number;
}

export class VirtioRng implements VirtioDevice {
  readonly type = VIRTIO_ID_RNG;
  readonly name = 'virtio-rng';
  readonly features = 0n;
  readonly queueSizes = [QUEUE_SIZE];
  readonly configSize = 0;
  private ctx: VirtioContext | undefined;
  private readonly rate: number;
  private readonly burst: number;
  private readonly cost: number;
  private readonly now: () => number;
  private tokens: number;
  private last: number;
  private timer: NodeJS.Timeout | undefined;
  /** Times the guest had to wait for the bucket to refill. */
  throttled = 0;

  constructor(opts: RngOptions = {}) {
    this.rate = opts.bytesPerSecond ?? 1 << 20;
    this.burst = opts.burstBytes ?? 64 << 10;
    this.cost = opts.requestCost ?? 64;
    this.now = opts.now ?? (() => performance.now());
    this.tokens = this.burst;
    this.last = this.now();
  }

  readConfig(): void {}
  writeConfig(): void {}

  activate(ctx: VirtioContext): void {
    this.ctx = ctx;
    this.serve();
  }

  notify(): void {
    this.serve();
  }

  reset(): void {
    this.ctx = undefined;
    this.cancelTimer();
  }

  close(): Promise<void> {
    this.reset();
    return Promise.resolve();
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.rate) / 1000);
    this.last = t;
  }

  private serve(): void {
    const ctx = this.ctx;
    const q = ctx?.queue(0);
    if (!ctx || !q || this.timer) return;
    this.refill();
    let served = false;
    for (;;) {
      if (this.tokens < this.cost) {
        this.throttled++;
        this.waitForTokens();
        break;
      }
      const chain = q.next();
      if (!chain) break;
      let budget = Math.floor(this.tokens);
      let written = 0;
      for (const v of chain.writable) {
        if (budget <= 0) break;
        const n = Math.min(v.length, budget);
        randomFillSync(v, 0, n);
        written += n;
        budget -= n;
      }
      this.tokens -= Math.max(written, this.cost);
      q.push(chain.head, written);
      ctx.count(0, written);
      served = true;
    }
    if (served) ctx.used(0);
  }

  private waitForTokens(): void {
    const ms = Math.max(1, Math.ceil(((this.cost - this.tokens) * 1000) / this.rate));
    const ctx = this.ctx;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      ctx?.guard(() => this.serve());
    }, ms);
    this.timer.unref();
  }

  private cancelTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
