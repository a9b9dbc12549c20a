/** A test virtio device, the same on every transport. */
import type { VirtioContext, VirtioDevice } from '../../src/devices/virtio/device.js';

/** A device that echoes: every chain's readable bytes are copied into its writable part. */
export class Echo implements VirtioDevice {
  readonly type = 0x2a;
  readonly name = 'echo';
  readonly features = 1n << 3n;
  readonly queueSizes = [16, 8];
  readonly configSize = 8;
  ctx: VirtioContext | undefined;
  resets = 0;
  config = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
  throwOnNotify = false;
  readConfig(offset: number, data: Uint8Array): void {
    data.set(this.config.subarray(offset, offset + data.length));
  }
  writeConfig(offset: number, data: Uint8Array): void {
    this.config.set(data, offset);
  }
  activate(ctx: VirtioContext): void {
    this.ctx = ctx;
  }
  notify(i: number): void {
    if (this.throwOnNotify) throw new Error('device bug');
    const q = this.ctx!.queue(i)!;
    for (let c = q.pop(); c; c = q.pop()) {
      const bytes = new Uint8Array(c.readableBytes);
      let at = 0;
      for (const v of c.readable) bytes.set(v, (at += v.length) - v.length);
      let n = 0;
      for (const v of c.writable) {
        const k = Math.min(v.length, bytes.length - n);
        v.set(bytes.subarray(n, n + k));
        n += k;
      }
      q.push(c.head, n);
      this.ctx!.count(i, n);
    }
    this.ctx!.used(i);
  }
  reset(): void {
    this.resets++;
    this.ctx = undefined;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
