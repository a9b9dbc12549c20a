/**
 * Reading a file the user named (a --config file, a kernel, an initrd): what is checked is the
 * opened descriptor, not the path, so a FIFO, a device or a symlink to one swapped in after a
 * check is refused all the same, and never more than a bound is read. The open itself cannot
 * block: O_NONBLOCK (a FIFO with no writer), O_NOCTTY (a terminal).
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

/** Why a file cannot be read; `reason` is the words after the path ("not a regular file (a FIFO)"). */
export class FileRefusal extends Error {
  override name = 'FileRefusal';
  constructor(
    readonly reason: string,
    /** Set when the file is over the bound: its size, or as much of it as was read. */
    readonly size?: number,
  ) {
    super(reason);
  }
}

function kind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a file';
}

/** The whole of the regular file at `path`, at most `maxBytes` long; anything else is a FileRefusal. */
export function readRegularFile(path: string, maxBytes: number): Buffer {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new FileRefusal(code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : `cannot read it (${code})`);
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new FileRefusal('is a directory');
    if (!st.isFile()) throw new FileRefusal(`not a regular file (${kind(st)})`);
    if (st.size > maxBytes) throw new FileRefusal(`larger than ${maxBytes} bytes`, st.size);
    // Read to the end, but never past the bound: the file may grow while it is read.
    const buf = Buffer.alloc(Math.min(st.size, maxBytes) + 1);
    let n = 0;
    for (;;) {
      if (n === buf.length) throw new FileRefusal(`larger than ${maxBytes} bytes`, n);
      const got = readSync(fd, buf, n, buf.length - n, n);
      if (got === 0) break;
      n += got;
    }
    return buf.subarray(0, n);
  } catch (err) {
    if (err instanceof FileRefusal) throw err;
    throw new FileRefusal(`cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  } finally {
    closeSync(fd);
  }
}
