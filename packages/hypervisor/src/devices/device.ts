/**
 * The contract between the VMM's exit dispatcher (bus.ts) and the emulated devices (one file each).
 * Devices are plain TypeScript: no KVM, no native code, unit-testable on any machine.
 */

/** What the VMM lends a device: an interrupt line, a console, and a way to end the run. */
export interface DeviceHost {
  /** Drive an irqchip input (GSI) to a level; edge devices pulse it (true then false). */
  setIrq(gsi: number, level: boolean): void;
  /** Bytes the guest wrote to the console (a ConsoleSink: coalesced, bounded). */
  consoleWrite(bytes: Uint8Array): void;
  /** False while console output is not draining: a device should stop taking bytes from the guest. */
  consoleWritable(): boolean;
  /** Calls `listener` once, when console output drains again (at once if it is writable). */
  onConsoleWritable(listener: () => void): void;
  /** End the VM: `status` is the process exit status (0 success); `reason` names why. */
  requestExit(status: number, reason: string): void;
  /** A VMM diagnostic line (unclaimed ports, the 0x80 debug port); the CLI prints it on stderr. */
  log(line: string): void;
  /** Milliseconds since the VM started. */
  now(): number;
}

/** A device on the port-I/O bus. `size` is 1, 2 or 4. Reads return the value zero-extended. */
export interface PioDevice {
  readonly name: string;
  /** Inclusive-exclusive port ranges this device claims: [base, length]. */
  readonly ports: ReadonlyArray<readonly [number, number]>;
  read(port: number, size: number): number;
  write(port: number, size: number, value: number): void;
  /** What the device has done so far (bytes, requests, …), for `kvm-cli stat`; counts only. */
  counters?(): Record<string, number>;
}

/** A device on the MMIO bus. `data` is the access (1..8 bytes); reads fill it. */
export interface MmioDevice {
  readonly name: string;
  readonly ranges: ReadonlyArray<readonly [bigint, bigint]>;
  read(addr: bigint, data: Uint8Array): void;
  write(addr: bigint, data: Uint8Array): void;
  /** What the device has done so far (queue notifications, bytes, requests, …), for `kvm-cli stat`. */
  counters?(): Record<string, number>;
}
