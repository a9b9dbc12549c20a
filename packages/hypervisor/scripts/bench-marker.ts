/**
 * A per-vCPU-thread port for benchmarks: the first two writes are timestamped in the thread that
 * handles the exit, and reported as one JSON log line, so start-up is not part of the measurement.
 * Besides wall time it records the thread's CPU time (/proc/thread-self/schedstat, ns: user and
 * kernel, which includes the host's emulation of the guest), which host load does not inflate.
 */
import { readFileSync } from 'node:fs';
import type { DeviceHost, PioDevice } from '../src/devices/device.js';

export class BenchMarker implements PioDevice {
  readonly name = 'bench-marker';
  readonly ports: ReadonlyArray<readonly [number, number]>;
  private readonly marks: number[] = [];
  private readonly cpu: number[] = [];

  constructor(
    private readonly host: DeviceHost,
    options: { port: number },
  ) {
    this.ports = [[options.port, 1]];
  }

  read(): number {
    return 0;
  }

  write(): void {
    if (this.marks.length >= 2) return;
    this.marks.push(performance.now());
    this.cpu.push(Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]));
    if (this.marks.length === 2) {
      this.host.log(JSON.stringify({ benchNs: Math.round((this.marks[1] - this.marks[0]) * 1e6), cpuNs: this.cpu[1] - this.cpu[0] }));
    }
  }
}
