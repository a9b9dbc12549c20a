/**
 * A raw disk image file behind virtio-blk: checked and locked before the guest starts, then read and
 * written only off the event loop (node:fs's asynchronous calls and the shim's fallocate run on
 * the libuv threadpool). Zero-copy: requests move bytes between the file and guest RAM directly,
 * except with O_DIRECT where an unaligned guest buffer goes through an aligned bounce buffer.
 */
import { closeSync, constants as fsc, fstatSync, fdatasync, openSync, readv, writev, close as closeFd } from 'node:fs';
import { basename } from 'node:path';
import { errnoName, native } from '../../kvm/native.js';

export const SECTOR = 512;
/** O_DIRECT alignment kvm-ts keeps to: the largest logical block size in common use. */
const DIRECT_ALIGN = 4096;

/** A disk the user asked for cannot be used; the message is one line naming the file. */
export class DiskError extends Error {
  override name = 'DiskError';
}

export interface DiskOptions {
  path: string;
  readOnly?: boolean;
  /** O_DIRECT: bypass the host page cache. */
  direct?: boolean;
}

/** What virtio-blk needs from its storage; tests may provide one in memory. */
export interface BlockBackend {
  readonly size: number;
  readonly readOnly: boolean;
  /** DISCARD can free blocks (fallocate punch-hole works on this file). */
  readonly canDiscard: boolean;
  /** The 20-byte serial GET_ID reports (from the file name). */
  readonly serial: string;
  read(views: Uint8Array[], offset: number): Promise<void>;
  write(views: Uint8Array[], offset: number): Promise<void>;
  /** Resolves after fdatasync. */
  flush(): Promise<void>;
  discard(offset: number, length: number): Promise<void>;
  /** Zeros `length` bytes; `unmap` allows freeing the blocks. */
  writeZeroes(offset: number, length: number, unmap: boolean): Promise<void>;
  close(): Promise<void>;
}

function errnoOf(err: unknown): string {
  return (err as NodeJS.ErrnoException)?.code ?? String(err);
}

function sysFailure(what: string, result: number): Error {
  const code = errnoName(-result);
  return Object.assign(new Error(`${what} failed: ${code}`), { code });
}

const ioDone = (resolve: () => void, reject: (e: unknown) => void) => (err: NodeJS.ErrnoException | null) => (err ? reject(err) : resolve());

/** readv/writev until every byte moved: a short transfer continues where it stopped. */
function transfer(kind: 'read' | 'write', fd: number, views: Uint8Array[], offset: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (left: Uint8Array[], pos: number) => {
      if (left.length === 0) return resolve();
      const cb = (err: NodeJS.ErrnoException | null, n: number) => {
        if (err) return reject(err);
        if (n === 0) return reject(Object.assign(new Error(`${kind} reached the end of the file at ${pos}`), { code: 'EIO' }));
        let rest = n;
        const next: Uint8Array[] = [];
        for (const v of left) {
          if (rest >= v.length) rest -= v.length;
          else {
            next.push(rest > 0 ? v.subarray(rest) : v);
            rest = 0;
          }
        }
        step(next, pos + n);
      };
      if (kind === 'read') readv(fd, left, pos, cb);
      else writev(fd, left, pos, cb);
    };
    step(views, offset);
  });
}

/** Opens, checks and locks a raw image; every refusal is a one-line DiskError. */
export class DiskImage implements BlockBackend {
  readonly size: number;
  readonly readOnly: boolean;
  readonly canDiscard: boolean;
  readonly serial: string;
  private readonly direct: boolean;
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly fd: number,
    opts: DiskOptions,
  ) {
    this.readOnly = opts.readOnly ?? false;
    this.direct = opts.direct ?? false;
    this.size = fstatSync(fd).size;
    this.serial = basename(path).slice(0, 20);
    this.canDiscard = !this.readOnly && native().fallocateSync(fd, 'punch-hole', this.size, DIRECT_ALIGN) === 0;
  }

  static open(opts: DiskOptions): DiskImage {
    const { path } = opts;
    // Checked on the opened fd, not the path: a FIFO or device swapped in after a stat gets no
    // further. O_NONBLOCK keeps the open of a FIFO from waiting for a writer (a regular file
    // ignores it). libuv opens every file close-on-exec.
    const flags = (opts.readOnly ? fsc.O_RDONLY : fsc.O_RDWR) | (opts.direct ? fsc.O_DIRECT : 0) | fsc.O_NOCTTY;
    let fd: number;
    try {
      fd = openSync(path, flags | fsc.O_NONBLOCK);
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT') throw new DiskError(`${path}: no such file`);
      if (code === 'EISDIR') throw new DiskError(`${path} is a directory, not a disk image`);
      if (opts.direct && code === 'EINVAL') throw new DiskError(`${path}: its file system does not support direct I/O (drop ',direct')`);
      if (!opts.readOnly && (code === 'EACCES' || code === 'EROFS' || code === 'EPERM')) {
        throw new DiskError(`${path} cannot be opened for writing (${code}); add ',ro' to attach it read-only`);
      }
      throw new DiskError(`${path} cannot be opened (${code})`);
    }
    const refuse = (message: string): never => {
      closeSync(fd);
      throw new DiskError(message);
    };
    const st = fstatSync(fd);
    if (st.isDirectory()) refuse(`${path} is a directory, not a disk image`);
    if (!st.isFile()) refuse(`${path} is not a regular file`);
    if (st.size % SECTOR !== 0) refuse(`${path}: size ${st.size} bytes is not a multiple of ${SECTOR}`);
    // Offsets travel as JavaScript numbers: beyond 2^53 they are no longer exact.
    if (!Number.isSafeInteger(st.size + DIRECT_ALIGN)) {
      refuse(`${path}: size ${fstatSync(fd, { bigint: true }).size} bytes is more than kvm-ts can address (at most 2^53 bytes)`);
    }
    const locked = native().lockFile(fd, !opts.readOnly);
    if (locked !== 0) {
      closeSync(fd);
      const held = opts.readOnly ? 'open for writing' : 'open';
      throw new DiskError(`${path} is in use: another VM holds it ${held} (its lock)${opts.readOnly ? '' : "; two VMs may share an image only with ',ro'"}`);
    }
    try {
      return new DiskImage(path, fd, opts);
    } catch (err) {
      closeSync(fd);
      throw new DiskError(`${path}: ${errnoOf(err)}`);
    }
  }

  read(views: Uint8Array[], offset: number): Promise<void> {
    if (!this.direct || this.aligned(views, offset)) return transfer('read', this.fd, views, offset);
    const len = views.reduce((n, v) => n + v.length, 0);
    const bounce = alignedBuffer(len);
    return transfer('read', this.fd, [bounce], offset).then(() => {
      let at = 0;
      for (const v of views) {
        v.set(bounce.subarray(at, at + v.length));
        at += v.length;
      }
    });
  }

  write(views: Uint8Array[], offset: number): Promise<void> {
    if (this.readOnly) return Promise.reject(Object.assign(new Error('read-only disk'), { code: 'EROFS' }));
    if (!this.direct || this.aligned(views, offset)) return transfer('write', this.fd, views, offset);
    const len = views.reduce((n, v) => n + v.length, 0);
    const bounce = alignedBuffer(len);
    let at = 0;
    for (const v of views) {
      bounce.set(v, at);
      at += v.length;
    }
    return transfer('write', this.fd, [bounce], offset);
  }

  private aligned(views: Uint8Array[], offset: number): boolean {
    if (offset % DIRECT_ALIGN !== 0) return false;
    const shim = native();
    return views.every((v) => v.length % DIRECT_ALIGN === 0 && Number(shim.address(v) % BigInt(DIRECT_ALIGN)) === 0);
  }

  flush(): Promise<void> {
    return new Promise((resolve, reject) => fdatasync(this.fd, ioDone(resolve, reject)));
  }

  discard(offset: number, length: number): Promise<void> {
    return this.fallocate('punch-hole', offset, length);
  }

  async writeZeroes(offset: number, length: number, unmap: boolean): Promise<void> {
    if (unmap && this.canDiscard) return this.fallocate('punch-hole', offset, length);
    try {
      await this.fallocate('zero-range', offset, length);
    } catch (err) {
      if (errnoOf(err) !== 'EOPNOTSUPP' && errnoOf(err) !== 'ENOTSUP') throw err;
      // No zero-range here: write zeros, a bounded buffer at a time.
      const chunk = alignedBuffer(Math.min(length, 1 << 20));
      for (let done = 0; done < length; done += chunk.length) {
        await transfer('write', this.fd, [chunk.subarray(0, Math.min(chunk.length, length - done))], offset + done);
      }
    }
  }

  private fallocate(op: 'punch-hole' | 'zero-range', offset: number, length: number): Promise<void> {
    if (this.readOnly) return Promise.reject(Object.assign(new Error('read-only disk'), { code: 'EROFS' }));
    return new Promise((resolve, reject) =>
      native().fallocate(this.fd, op, offset, length, (r) => (r === 0 ? resolve() : reject(sysFailure(`fallocate ${op}`, r)))),
    );
  }

  /** Closes the file (and so releases the lock); the device waits for its requests first. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => closeFd(this.fd, () => resolve()));
  }
}

/** A zeroed buffer whose first byte is DIRECT_ALIGN-aligned in host memory (what O_DIRECT needs). */
function alignedBuffer(len: number): Uint8Array {
  const raw = new Uint8Array(len + DIRECT_ALIGN);
  const misalign = Number(native().address(raw) % BigInt(DIRECT_ALIGN));
  const skip = misalign === 0 ? 0 : DIRECT_ALIGN - misalign;
  return raw.subarray(skip, skip + len);
}
