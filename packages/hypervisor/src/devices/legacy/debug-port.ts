/**
 * Port 0x80, the POST-code port. Guests (and Linux's io_delay) write here all the time, so it must
 * always be claimed; when enabled, each write is logged with the time since start, which turns
 * boot milestones written by a guest into a timeline (as cloud-hypervisor's debug port does).
 */
import type { DeviceHost, PioDevice } from '../device.js';

export const DEBUG_PORT = 0x80;

export class DebugPort implements PioDevice {
  readonly name = 'debug-port';
  readonly ports: ReadonlyArray<readonly [number, number]> = [[DEBUG_PORT, 1]];
  private last = 0;
  private writes = 0;

  constructor(private readonly host: DeviceHost, private readonly opts: { enabled?: boolean } = {}) {}

  get enabled(): boolean {
    return this.opts.enabled ?? false;
  }

  /** How many writes this instance saw (each vCPU thread has its own instance; for tests). */
  get writeCount(): number {
    return this.writes;
  }

  /** Reads return the last code written, like a POST card's display. */
  read(port: number, size: number): number {
    void port;
    void size;
    return this.last;
  }

  write(port: number, size: number, value: number): void {
    void port;
    const mask = size >= 4 ? 0xffffffff : (1 << (size * 8)) - 1;
    this.last = (value & mask) >>> 0;
    this.writes++;
    if (!this.enabled) return;
    const ms = this.host.now();
    this.host.log(`debug port 0x80: code 0x${this.last.toString(16).padStart(2, '0')} at ${(ms / 1000).toFixed(6)} s`);
  }
}
