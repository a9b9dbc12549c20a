/**
 * The console log of a detached VM, kept bounded as libvirt's virtlogd keeps its logs: once
 * NAME.log reaches LOG_MAX_BYTES its text moves to NAME.log.1 (NAME.log.1 to NAME.log.2, the
 * oldest dropped) and NAME.log starts again, so at most LOG_FILES × LOG_MAX_BYTES stay on the
 * (often tmpfs) runtime directory. The VMM writes the log through its stdout and stderr, one open
 * file with O_APPEND, so the file is copied and truncated in place rather than renamed.
 */
import { closeSync, constants, fstatSync, ftruncateSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';

export const LOG_MAX_BYTES = 2 * 1024 * 1024;
/** NAME.log and the rotated NAME.log.1, NAME.log.2. */
export const LOG_FILES = 3;

export class LogRotator {
  constructor(
    private readonly fd: number,
    private readonly path: string,
    private readonly maxBytes = LOG_MAX_BYTES,
    private readonly files = LOG_FILES,
  ) {}

  /** After a write to the log: rotates when it is full. Never throws (the log must not end the VM). */
  written(): void {
    try {
      if (fstatSync(this.fd).size >= this.maxBytes) this.rotate();
    } catch {
      // a full disk or a vanished directory: the console output keeps going to the open file
    }
  }

  private rotate(): void {
    rmSync(`${this.path}.${this.files - 1}`, { force: true });
    for (let i = this.files - 2; i >= 1; i--) {
      try {
        renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
      } catch {
        // not there yet
      }
    }
    const size = fstatSync(this.fd).size;
    const text = Buffer.alloc(size);
    let n = 0;
    while (n < size) {
      const got = readSync(this.fd, text, n, size - n, n);
      if (got === 0) break;
      n += got;
    }
    const out = openSync(`${this.path}.1`, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      writeSync(out, text, 0, n);
    } finally {
      closeSync(out);
    }
    ftruncateSync(this.fd, 0);
  }
}

/** Checks the log after every write of this process's stdout and stderr (both are the log when detached). */
export function keepLogBounded(path: string, fd = 1): LogRotator {
  const rotator = new LogRotator(fd, path);
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    stream.write = ((...args: unknown[]) => {
      const ok = write(...args);
      rotator.written();
      return ok;
    }) as typeof stream.write;
  }
  return rotator;
}
