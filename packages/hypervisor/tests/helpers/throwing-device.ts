/** A per-vCPU-thread device that fails on every access: what happens when a thread's own device throws. */
import type { DeviceHost, PioDevice } from '../../src/devices/device.js';

export class ThrowingDevice implements PioDevice {
  readonly name = 'throwing';
  readonly ports: ReadonlyArray<readonly [number, number]>;
  constructor(_host: DeviceHost, options: { port: number }) {
    this.ports = [[options.port, 1]];
  }
  read(): number {
    throw new Error('read broke');
  }
  write(): void {
    throw new Error('write broke');
  }
}
