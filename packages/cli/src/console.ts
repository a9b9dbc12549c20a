/**
 * The guest console on the user's terminal. On a tty: raw mode (keys go to the guest, Ctrl-A x
 * quits, Ctrl-A Ctrl-A sends one Ctrl-A), and the terminal is restored on every way out. Without
 * a tty: no raw mode; bytes from a pipe or file on stdin are fed to the guest.
 */
import { fstatSync } from 'node:fs';

const CTRL_A = 0x01;
const QUIT_KEY = 'x'.charCodeAt(0);

export interface ConsoleOptions {
  /** Bytes for the guest; false when its input queue is full (stdin pauses until `whenRoom` calls back). */
  input: (bytes: Uint8Array) => boolean;
  /** Calls back once when the guest's input queue has room again. */
  whenRoom: (resume: () => void) => void;
  /** The user asked to quit (Ctrl-A x). */
  quit: () => void;
}

export class GuestConsole {
  private readonly stdin = process.stdin;
  private raw = false;
  private escape = false;
  private reading = false;
  private readonly restoreOnExit = () => this.restore();
  private readonly onData = (chunk: Buffer) => this.receive(chunk);

  constructor(private readonly opts: ConsoleOptions) {
    if (this.stdin.isTTY) {
      this.stdin.setRawMode(true);
      this.raw = true;
      // 'exit' runs synchronously on every normal or process.exit() ending.
      process.on('exit', this.restoreOnExit);
      this.startReading();
    } else if (stdinIsData()) {
      this.startReading();
    }
  }

  private startReading(): void {
    this.reading = true;
    this.stdin.on('data', this.onData);
    this.stdin.resume();
  }

  private receive(chunk: Buffer): void {
    if (!this.raw) {
      this.give(chunk);
      return;
    }
    const out: number[] = [];
    for (const b of chunk) {
      if (this.escape) {
        this.escape = false;
        if (b === QUIT_KEY) {
          this.opts.quit();
          return;
        }
        if (b === CTRL_A) out.push(CTRL_A);
        continue;
      }
      if (b === CTRL_A) this.escape = true;
      else out.push(b);
    }
    if (out.length) this.give(Uint8Array.from(out));
  }

  /** A guest that does not read fills its queue: stop reading stdin (the writer blocks) until it has room. */
  private give(bytes: Uint8Array): void {
    if (this.opts.input(bytes)) return;
    this.stdin.pause();
    this.opts.whenRoom(() => {
      if (this.reading) this.stdin.resume();
    });
  }

  /** Leaves the terminal as it was; safe to call more than once. */
  restore(): void {
    if (this.reading) {
      this.stdin.off('data', this.onData);
      this.stdin.pause();
      // A paused pipe or tty still holds the event loop open; the guest is gone, so let go.
      if ('unref' in this.stdin && typeof this.stdin.unref === 'function') this.stdin.unref();
      this.reading = false;
    }
    if (this.raw) {
      this.raw = false;
      try {
        this.stdin.setRawMode(false);
      } catch {
        // the terminal went away (SIGHUP): nothing left to restore
      }
      process.off('exit', this.restoreOnExit);
    }
  }
}

/** stdin is a pipe or a regular file (CI's /dev/null or a closed stdin is neither). */
function stdinIsData(): boolean {
  try {
    const st = fstatSync(0);
    return st.isFIFO() || st.isFile() || st.isSocket();
  } catch {
    return false;
  }
}
