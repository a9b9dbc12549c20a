/**
 * What a virtio device is to its transport (virtio 1.x §2–§4): an id, feature bits, a config
 * space and one handler per queue. Generic on purpose: blk, rng, console and net implement it; the transport (mmio.ts) knows none of them. Numbers here are the virtio
 * specification's, not KVM's.
 */
import type { SplitQueue } from './queue.js';

/** Device status bits (§2.1). */
export const STATUS_ACKNOWLEDGE = 1;
export const STATUS_DRIVER = 2;
export const STATUS_DRIVER_OK = 4;
export const STATUS_FEATURES_OK = 8;
export const STATUS_DEVICE_NEEDS_RESET = 0x40;
export const STATUS_FAILED = 0x80;

/** Transport feature bits (§6) every kvm-ts device offers. */
export const VIRTIO_F_INDIRECT_DESC = 28n;
export const VIRTIO_F_EVENT_IDX = 29n;
export const VIRTIO_F_VERSION_1 = 32n;
export const TRANSPORT_FEATURES = (1n << VIRTIO_F_INDIRECT_DESC) | (1n << VIRTIO_F_EVENT_IDX) | (1n << VIRTIO_F_VERSION_1);

/** Device ids (§5). */
export const VIRTIO_ID_NET = 1;
export const VIRTIO_ID_BLOCK = 2;
export const VIRTIO_ID_CONSOLE = 3;
export const VIRTIO_ID_RNG = 4;

/** InterruptStatus bits (§4.2.2). */
export const INT_USED_BUFFER = 1;
export const INT_CONFIG_CHANGE = 2;

export const bit = (n: number | bigint): bigint => 1n << BigInt(n);

/** Counters of one queue, for `stat` and run summaries. */
export interface QueueStats {
  /** Driver notifications that reached this queue (either path). */
  notifications: number;
  /** Chains the device completed. */
  requests: number;
  /** Payload bytes the device moved (read from or written to guest buffers). */
  bytes: number;
}

/** What an active device may do: reach its queues, hand chains back, and report a misdriving driver. */
export interface VirtioContext {
  /** The features the driver accepted. */
  readonly features: bigint;
  /** Queue `i`, or undefined when the driver did not set it up. */
  queue(i: number): SplitQueue | undefined;
  /** New used entries in queue `i`: interrupts the driver if it asked for one. */
  used(i: number): void;
  /** Counts one completed chain of `bytes` payload bytes on queue `i`. */
  count(i: number, bytes: number): void;
  /** The driver broke the contract: DEVICE_NEEDS_RESET, logged once; the device stops. */
  fail(why: string): void;
  /**
   * Runs device work begun outside a notification (a timer, an I/O completion): whatever it throws
   * (a QueueError from a misdriven ring) becomes fail(), never an exception on the event loop.
   */
  guard(fn: () => void): void;
  /** False once the device was reset or failed: late completions must then be dropped. */
  readonly alive: boolean;
  log(line: string): void;
}

/**
 * Device work deferred to the next event-loop turn, at most once however often asked: a device that
 * handled its batch of chains yields and goes on then (through `ctx.guard`, so a misdriven ring
 * there is DEVICE_NEEDS_RESET, not an exception).
 */
export class NextTurn {
  private pending = false;

  schedule(ctx: VirtioContext | undefined, fn: () => void): void {
    if (this.pending) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      ctx?.guard(fn);
    });
  }
}

export interface VirtioDevice {
  /** Device id (§5): 2 block, 3 console, 4 entropy, … */
  readonly type: number;
  /** For logs: "virtio-blk vda". */
  readonly name: string;
  /** Device-specific feature bits; the transport adds VERSION_1, EVENT_IDX and INDIRECT_DESC. */
  readonly features: bigint;
  /** The largest size of each queue; its length is the number of queues. */
  readonly queueSizes: readonly number[];
  /** Bytes of device config space (read through the transport at offset 0x100). */
  readonly configSize: number;
  readConfig(offset: number, data: Uint8Array): void;
  writeConfig(offset: number, data: Uint8Array): void;
  /** DRIVER_OK: the driver is ready; `ctx` stays valid until reset() or a failure. */
  activate(ctx: VirtioContext): void;
  /** The driver notified queue `i` (new available chains). */
  notify(i: number): void;
  /** Status 0 or a failure: drop queue state; completions still in flight are dropped when they land. */
  reset(): void;
  /** The VMM is stopping: resolves once no request is in flight any more (writes reached the file) and files are closed. */
  close(): Promise<void>;
  /** What the device counts beyond its queues (virtio-net: dropped frames, its backend's counters). */
  counters?(): Record<string, number>;
}
