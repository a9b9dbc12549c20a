/**
 * The guest console as the control socket offers it (`console` method, `kvm-cli console NAME`):
 * the VM's output is remembered (the last BACKLOG_BYTES) and copied to the one attached client;
 * the client's bytes go to the guest. A client that stops reading loses output (counted and said
 * in the stream), never the VM: the run's own console (terminal or log file) still gets every byte.
 */
import { ControlError } from './protocol.js';
import type { ConsoleSession, ConsoleSink } from './server.js';

export const BACKLOG_BYTES = 16 * 1024;
/** Output queued for a client beyond this is dropped until it catches up. */
const MAX_QUEUED = 1 << 20;

export interface ConsoleHubOptions {
  /** Bytes for the guest. */
  input(bytes: Uint8Array): void;
  /** Why no client may attach (the console is on the run's terminal), or undefined when one may. */
  unavailable?: string;
}

export class ConsoleHub {
  private chunks: Uint8Array[] = [];
  private held = 0;
  private sink: ConsoleSink | undefined;
  private dropped = 0;

  constructor(private readonly opts: ConsoleHubOptions) {}

  get attachable(): boolean {
    return this.opts.unavailable === undefined;
  }

  /** Guest output. */
  write(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.remember(bytes);
    const sink = this.sink;
    if (!sink) return;
    if (sink.buffered > MAX_QUEUED) {
      this.dropped += bytes.length;
      return;
    }
    if (this.dropped > 0) {
      sink.write(new TextEncoder().encode(`\r\n[kvm-ts: ${this.dropped} bytes of console output dropped: the client was not reading]\r\n`));
      this.dropped = 0;
    }
    sink.write(bytes);
  }

  private remember(bytes: Uint8Array): void {
    this.chunks.push(bytes.length > BACKLOG_BYTES ? bytes.slice(bytes.length - BACKLOG_BYTES) : bytes.slice());
    this.held += Math.min(bytes.length, BACKLOG_BYTES);
    while (this.held - this.chunks[0].length >= BACKLOG_BYTES) this.held -= this.chunks.shift()!.length;
  }

  /** The last BACKLOG_BYTES of output (or less, if there was less). */
  backlog(): Uint8Array {
    const all = Buffer.concat(this.chunks);
    return all.length > BACKLOG_BYTES ? all.subarray(all.length - BACKLOG_BYTES) : all;
  }

  attach(sink: ConsoleSink, withBacklog: boolean): ConsoleSession {
    if (this.opts.unavailable !== undefined) throw new ControlError('unavailable', this.opts.unavailable);
    if (this.sink) throw new ControlError('busy', 'another client has the console attached');
    this.sink = sink;
    this.dropped = 0;
    return {
      backlog: withBacklog ? this.backlog() : new Uint8Array(0),
      input: (bytes) => {
        if (this.sink === sink && bytes.length) this.opts.input(bytes);
      },
      detach: () => {
        if (this.sink === sink) this.sink = undefined;
      },
    };
  }

  /** The VM ended: the attached client's connection ends too. */
  close(): void {
    const sink = this.sink;
    this.sink = undefined;
    sink?.end();
  }
}
