/**
 * The port-I/O and MMIO buses the exit dispatcher routes to. Registration refuses overlaps;
 * accesses nobody claims read as all-ones, never end the VM and are logged within a budget
 * (unclaimed.ts).
 */
import type { MmioDevice, PioDevice } from './device.js';
import { hex, portName } from '../hex.js';
import { UnclaimedLog, type UnclaimedTotals } from './unclaimed.js';

export const PORT_SPACE = 0x1_0000;

export class BusError extends Error {
  override name = 'BusError';
}

function allOnes(size: number): number {
  return size >= 4 ? 0xffff_ffff : (1 << (size * 8)) - 1;
}

interface MmioRange {
  start: bigint;
  end: bigint;
  device: MmioDevice;
}

export class IoBus {
  /** Device per port (undefined: nobody), so dispatch is one array load. */
  // Filled, not holey: loads from a holey array walk the prototype chain (claimedPorts scans all 64 Ki).
  private readonly ports: Array<PioDevice | undefined> = new Array<PioDevice | undefined>(PORT_SPACE).fill(undefined);
  private readonly mmio: MmioRange[] = [];
  private readonly unclaimedLog: UnclaimedLog;

  constructor(log: (line: string) => void = () => {}) {
    this.unclaimedLog = new UnclaimedLog(log);
  }

  registerPio(device: PioDevice): void {
    for (const [base, length] of device.ports) {
      if (!Number.isInteger(base) || !Number.isInteger(length) || base < 0 || length <= 0 || base + length > PORT_SPACE) {
        throw new BusError(`${device.name}: port range ${hex(base, 4)}+${length} is outside the port space`);
      }
      for (let p = base; p < base + length; p++) {
        const other = this.ports[p];
        if (other) throw new BusError(`${device.name}: port ${hex(p, 4)} is already claimed by ${other.name}`);
      }
    }
    for (const [base, length] of device.ports) this.ports.fill(device, base, base + length);
  }

  registerMmio(device: MmioDevice): void {
    for (const [start, length] of device.ranges) {
      if (start < 0n || length <= 0n) throw new BusError(`${device.name}: MMIO range ${hex(start, 8)}+${length} is invalid`);
      const end = start + length;
      const clash = this.mmio.find((r) => start < r.end && r.start < end);
      if (clash) throw new BusError(`${device.name}: MMIO range ${hex(start, 8)}+${length} overlaps ${clash.device.name}`);
      this.mmio.push({ start, end, device });
    }
    this.mmio.sort((a, b) => (a.start < b.start ? -1 : 1));
  }

  /** Every registered device, port-I/O first, each once, in registration order. */
  devices(): Array<{ bus: 'pio'; device: PioDevice } | { bus: 'mmio'; device: MmioDevice }> {
    const pio = [...new Set(this.ports.filter((d): d is PioDevice => d !== undefined))];
    const mmio = [...new Set(this.mmio.map((r) => r.device))];
    return [...pio.map((device) => ({ bus: 'pio' as const, device })), ...mmio.map((device) => ({ bus: 'mmio' as const, device }))];
  }

  pioDevice(port: number): PioDevice | undefined {
    return this.ports[port];
  }

  /** Every claimed port range, merged per device: what the vCPU threads forward to this bus. */
  claimedPorts(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let p = 0; p < PORT_SPACE; p++) {
      if (!this.ports[p]) continue;
      const last = out[out.length - 1];
      if (last && last[0] + last[1] === p) last[1]++;
      else out.push([p, 1]);
    }
    return out;
  }

  pioRead(port: number, size: number): number {
    const device = this.ports[port];
    if (device) return device.read(port, size);
    this.unclaimed(portName(port), 'read', size);
    return allOnes(size);
  }

  pioWrite(port: number, size: number, value: number): void {
    const device = this.ports[port];
    if (device) device.write(port, size, value);
    else this.unclaimed(portName(port), 'write', size);
  }

  mmioRead(addr: bigint, data: Uint8Array): void {
    const r = this.mmioRange(addr, data.length);
    if (r) r.device.read(addr, data);
    else {
      this.unclaimed(`MMIO ${hex(addr, 8)}`, 'read', data.length);
      data.fill(0xff);
    }
  }

  mmioWrite(addr: bigint, data: Uint8Array): void {
    const r = this.mmioRange(addr, data.length);
    if (r) r.device.write(addr, data);
    else this.unclaimed(`MMIO ${hex(addr, 8)}`, 'write', data.length);
  }

  private mmioRange(addr: bigint, length: number): MmioRange | undefined {
    const end = addr + BigInt(length);
    return this.mmio.find((r) => addr >= r.start && end <= r.end);
  }

  /** An access a vCPU thread answered (and counted) itself: logged within the same budget. */
  reportUnclaimed(where: string, kind: string, size: number): void {
    this.unclaimedLog.record(where, kind, size, false);
  }

  /** Unclaimed accesses so far; `threadAccesses` are those the vCPU threads counted. */
  unclaimedTotals(threadAccesses = 0): UnclaimedTotals {
    return this.unclaimedLog.totals(threadAccesses);
  }

  private unclaimed(where: string, kind: string, size: number): void {
    this.unclaimedLog.record(where, kind, size);
  }
}
