/** Newline-delimited input with a bound on the line length, for both ends of the control socket. */

export const TOO_LONG = Symbol('line too long');

export class LineSplitter {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /**
   * The next complete line (without its `\n` or `\r\n`), undefined until one is complete, or
   * TOO_LONG once the pending line is longer than the bound (with or without its newline yet).
   */
  next(): string | undefined | typeof TOO_LONG {
    const nl = this.buf.indexOf(0x0a);
    if (nl < 0) return this.buf.length > this.maxBytes ? TOO_LONG : undefined;
    let end = nl;
    if (end > 0 && this.buf[end - 1] === 0x0d) end--;
    if (end > this.maxBytes) return TOO_LONG;
    const line = this.buf.toString('utf8', 0, end);
    this.buf = this.buf.subarray(nl + 1);
    return line;
  }

  /** Everything buffered and not yet returned as a line (raw bytes after a console upgrade). */
  take(): Buffer {
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }
}
