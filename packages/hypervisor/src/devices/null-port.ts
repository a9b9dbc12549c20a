/**
 * Ports that accept writes and read as zero, handled inside each vCPU thread: the benchmark's
 * doorbell, and port 0x80 (Linux's I/O delay) when nobody wants its values.
 */
import type { DeviceHost, PioDevice } from './device.js';
import type { LocalDevice } from '../runner.js';
import { moduleUrl } from '../vcpu/pool.js';

export interface NullPortOptions {
  ports: Array<[number, number]>;
}

export class NullPort implements PioDevice {
  readonly name = 'null-port';
  readonly ports: ReadonlyArray<readonly [number, number]>;
  constructor(_host: DeviceHost, options: NullPortOptions) {
    this.ports = options.ports;
  }
  read(): number {
    return 0;
  }
  write(): void {}
}

export function nullPorts(ports: Array<[number, number]>): LocalDevice {
  return { spec: { module: moduleUrl('devices/null-port'), exportName: 'NullPort', options: { ports } }, ports };
}
