/** The test-exit port: a write of v ends the VM with exit status v & 0xff (QEMU's isa-debug-exit, minus its shift). */
import type { DeviceHost, PioDevice } from '../device.js';

export const DEBUG_EXIT_PORT = 0x501;

export class DebugExit implements PioDevice {
  readonly name = 'debug-exit';
  readonly ports: ReadonlyArray<readonly [number, number]>;

  constructor(private readonly host: DeviceHost, opts: { port?: number } = {}) {
    this.ports = [[opts.port ?? DEBUG_EXIT_PORT, 1]];
  }

  read(port: number, size: number): number {
    void port;
    void size;
    return 0;
  }

  write(port: number, size: number, value: number): void {
    void port;
    if (size !== 1 && size !== 2 && size !== 4) return;
    this.host.requestExit(value & 0xff, 'debug-exit');
  }
}
