/** A DeviceHost that records everything devices do, for unit tests. */
import type { DeviceHost } from '../../src/devices/device.js';

export class FakeHost implements DeviceHost {
  readonly irqs: Array<[number, boolean]> = [];
  readonly irqLevel = new Map<number, boolean>();
  readonly console: number[] = [];
  readonly exits: Array<{ status: number; reason: string }> = [];
  readonly logs: string[] = [];
  time = 0;

  setIrq(gsi: number, level: boolean): void {
    this.irqs.push([gsi, level]);
    this.irqLevel.set(gsi, level);
  }
  /** Tests set this false to play a console that stopped draining. */
  writable = true;
  private drainWaiters: Array<() => void> = [];
  consoleWrite(bytes: Uint8Array): void {
    this.console.push(...bytes);
  }
  consoleWritable(): boolean {
    return this.writable;
  }
  onConsoleWritable(listener: () => void): void {
    if (this.writable) listener();
    else this.drainWaiters.push(listener);
  }
  /** The console drains again. */
  drain(): void {
    this.writable = true;
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const l of w) l();
  }
  requestExit(status: number, reason: string): void {
    this.exits.push({ status, reason });
  }
  log(line: string): void {
    this.logs.push(line);
  }
  now(): number {
    return this.time;
  }
  consoleText(): string {
    return Buffer.from(this.console).toString('latin1');
  }
}
