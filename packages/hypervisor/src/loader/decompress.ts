/**
 * Decompression of a bzImage's payload on the host. Linux appends the uncompressed size as a
 * little-endian u32 after every payload (gzip's ISIZE plays that role for gzip), so the output size
 * is known up front. It is checked against the budget (docs/limits.md) before anything is
 * allocated: at most what the header's init_size makes plausible, never more than guest RAM. Each
 * decoder then writes into one buffer of exactly that size and is stopped as soon as it produces
 * more, as soon as its first bytes are not an ELF header, or at the load deadline.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Zlib from 'node:zlib';
import { isElf } from './elf.js';
import { ImageError, LoadDeadlineError } from './errors.js';

export type Compression = 'gzip' | 'xz' | 'zstd' | 'bzip2' | 'lzma' | 'lzo' | 'lz4' | 'none' | 'unknown';

/** Identifies a compressed stream by its magic bytes (the same set Linux's decompressors accept). */
export function detectCompression(data: Uint8Array): Compression {
  const b = (i: number) => (i < data.length ? data[i] : -1);
  if (b(0) === 0x1f && (b(1) === 0x8b || b(1) === 0x9e)) return 'gzip';
  if (b(0) === 0xfd && b(1) === 0x37 && b(2) === 0x7a && b(3) === 0x58 && b(4) === 0x5a && b(5) === 0x00) return 'xz';
  if (b(0) === 0x28 && b(1) === 0xb5 && b(2) === 0x2f && b(3) === 0xfd) return 'zstd';
  if (b(0) === 0x42 && b(1) === 0x5a && b(2) === 0x68) return 'bzip2';
  if (b(0) === 0x5d && b(1) === 0x00 && b(2) === 0x00) return 'lzma';
  if (b(0) === 0x89 && b(1) === 0x4c && b(2) === 0x5a && b(3) === 0x4f) return 'lzo';
  if (b(0) === 0x02 && b(1) === 0x21 && b(2) === 0x4c && b(3) === 0x18) return 'lz4';
  if (b(0) === 0x7f && b(1) === 0x45 && b(2) === 0x4c && b(3) === 0x46) return 'none';
  return 'unknown';
}

export interface Decompressed {
  data: Uint8Array;
  compression: Compression;
}

export interface PayloadLimits {
  /** The plausible size from the image's own header (kernelSizeBudget); the RAM cap applies too. */
  plausible?: { bytes: number; why: string };
  /** performance.now() after which decoding stops with a LoadDeadlineError. */
  deadline?: number;
}

/**
 * Decompresses a Linux kernel payload (compressed stream followed by its u32 uncompressed size)
 * to an ELF vmlinux. `cap` (guest RAM) bounds the output; an uncompressed ("none") payload is
 * returned as is.
 */
export function decompressKernelPayload(payload: Uint8Array, cap: number, limits: PayloadLimits = {}): Decompressed {
  const compression = detectCompression(payload);
  switch (compression) {
    case 'none':
      return { data: payload, compression };
    case 'gzip':
    case 'xz':
    case 'zstd':
      break;
    case 'unknown':
      throw new ImageError('unrecognised kernel payload compression (not gzip, xz, zstd, lz4, lzo, bzip2 or lzma)');
    default:
      throw new ImageError(`unsupported compression: ${compression} (supported: gzip, xz, zstd)`);
  }
  if (payload.length < 8) throw new ImageError(`${compression} kernel payload is truncated (${payload.length} bytes)`);
  const size = new DataView(payload.buffer, payload.byteOffset, payload.length).getUint32(payload.length - 4, true);
  if (size === 0) throw new ImageError(`${compression} kernel payload declares an uncompressed size of 0`);
  if (size > cap) {
    throw new ImageError(`kernel is larger than RAM: uncompressed size ${size} bytes exceeds ${cap} bytes`);
  }
  if (limits.plausible && size > limits.plausible.bytes) {
    throw new ImageError(`${compression} kernel payload declares ${size} bytes uncompressed, more than ${limits.plausible.why} allows (${limits.plausible.bytes})`);
  }
  const budget: Budget = { compression, size, deadline: limits.deadline ?? Infinity };
  let data: Uint8Array;
  try {
    if (compression === 'gzip') data = gunzip(payload, budget);
    else if (compression === 'xz') data = unxz(payload.subarray(0, payload.length - 4), budget);
    else data = unzstd(payload.subarray(0, payload.length - 4), budget);
  } catch (e) {
    if (e instanceof ImageError || e instanceof LoadDeadlineError) throw e;
    throw new ImageError(`corrupt ${compression} kernel payload: ${oneLine(e)}`);
  }
  if (data.length !== size) {
    throw new ImageError(`corrupt ${compression} kernel payload: decompressed to ${data.length} bytes, trailer says ${size}`);
  }
  checkDeadline(budget);
  return { data, compression };
}

/** What one decoding may do: produce exactly `size` bytes of ELF, before `deadline`. */
interface Budget {
  compression: Compression;
  size: number;
  deadline: number;
}

function checkDeadline(b: Budget): void {
  if (performance.now() > b.deadline) throw new LoadDeadlineError(`decompressing the ${b.compression} kernel`);
}

/** A kernel payload is a vmlinux: anything else is refused on its first bytes, not after inflating it. */
function checkElfStart(b: Budget, head: Uint8Array): void {
  if (head.length >= 4 && !isElf(head)) throw new ImageError(`bzImage payload (${b.compression}) does not decompress to an ELF vmlinux`);
}

function oneLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0];
}

/** Compressed bytes inflated to look at the start: deflate expands at most 1032:1, so the probe's output stays under 2 MiB. */
const GZIP_PROBE_BYTES = 1024;

function gunzip(payload: Uint8Array, b: Budget): Uint8Array {
  const z = zlib();
  try {
    // A partial inflate of the first KiB (sync flush: no end-of-stream check) shows the first bytes.
    const probe = payload.subarray(0, Math.min(payload.length, GZIP_PROBE_BYTES));
    checkElfStart(b, z.gunzipSync(probe, { finishFlush: z.constants.Z_SYNC_FLUSH, maxOutputLength: 2 << 20 }));
    // node:zlib stops the moment the output passes maxOutputLength; large chunks keep the copies few.
    return z.gunzipSync(payload, { maxOutputLength: b.size, chunkSize: 1 << 20 });
  } catch (e) {
    if (e instanceof RangeError) throw new ImageError(`corrupt gzip kernel payload: output exceeds the declared ${b.size} bytes`);
    throw e;
  }
}

/** Collects decoder output into one preallocated buffer and refuses to grow past it. */
class BoundedSink {
  readonly buf: Uint8Array;
  length = 0;
  constructor(private readonly budget: Budget) {
    // Zero pages until written: a lying trailer costs address space, not memory.
    this.buf = new Uint8Array(budget.size);
  }
  push(chunk: Uint8Array): void {
    if (this.length + chunk.length > this.buf.length) {
      throw new ImageError(`corrupt ${this.budget.compression} kernel payload: output exceeds the declared ${this.buf.length} bytes`);
    }
    this.buf.set(chunk, this.length);
    const before = this.length;
    this.length += chunk.length;
    if (before < 4 && this.length >= 4) checkElfStart(this.budget, this.buf);
    checkDeadline(this.budget);
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

/** node:zlib is loaded only for gzip and xz kernels (~1 MiB RSS and a few ms otherwise paid by every start-up). */
const zlib = (): typeof Zlib => createRequire(import.meta.url)('node:zlib') as typeof Zlib;
const crc32 = (data: Uint8Array): number => zlib().crc32(data);

/** The slice of the WebAssembly JS API we use (lib.dom's typings are not part of this Node build). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** A WebAssembly module a package embeds as base64 in its JS (`pattern`'s first group), compiled once. */
function embeddedWasm(pkg: string, pattern: RegExp): object {
  const js = readFileSync(createRequire(import.meta.url).resolve(pkg), 'latin1');
  const m = pattern.exec(js);
  if (!m) throw new Error(`${pkg} does not embed its WebAssembly decoder where expected`);
  return new wasm.Module(Buffer.from(m[1], 'base64'));
}

// zstd: libzstd's one-shot ZSTD_decompress, compiled to WebAssembly by the zstddec package (whose
// own API is async; we instantiate its module synchronously, as for xz below). One-shot decoding
// writes straight into a destination of the declared size and uses it as its history, so the
// frame's window size never becomes an allocation, and libzstd refuses a frame that would write
// past the destination, truncated or trailing data, or a wrong checksum.
interface ZstdExports {
  memory: { buffer: ArrayBuffer };
  malloc(n: number): number;
  ZSTD_decompress(dst: number, dstCapacity: number, src: number, srcSize: number): number;
  ZSTD_isError(code: number): number;
}

/** ZSTD_ErrorCode values (zstd_errors.h) a kernel payload can provoke, for one-line messages. */
const ZSTD_ERRORS: Record<number, string> = {
  10: 'not a zstd frame',
  12: 'unsupported zstd version',
  14: 'unsupported frame parameter',
  16: 'window larger than the decoder allows',
  20: 'compressed data is corrupt',
  22: 'checksum mismatch',
  24: 'bad literals header',
  30: 'needs a dictionary',
  32: 'needs a dictionary',
  64: 'decoder out of memory',
  70: 'output exceeds the declared size',
  72: 'stream is truncated or has trailing data',
};

let zstdModule: object | undefined;

function unzstd(stream: Uint8Array, b: Budget): Uint8Array {
  zstdModule ??= embeddedWasm('zstddec', /const wasm = "([A-Za-z0-9+/=]+)"/);
  const x = new wasm.Instance(zstdModule, { env: { emscripten_notify_memory_growth: () => {} } }).exports as ZstdExports;
  const src = x.malloc(stream.length);
  const dst = src && x.malloc(b.size);
  if (!dst) throw new ImageError(`zstd kernel payload of ${b.size} bytes does not fit the decoder's memory`);
  new Uint8Array(x.memory.buffer, src, stream.length).set(stream);
  const r = x.ZSTD_decompress(dst, b.size, src, stream.length) >>> 0;
  if (x.ZSTD_isError(r)) {
    const code = 2 ** 32 - r;
    throw new ImageError(`corrupt zstd kernel payload: ${ZSTD_ERRORS[code] ?? `decoder error ${code}`}`);
  }
  const out = new Uint8Array(x.memory.buffer, dst, r);
  checkElfStart(b, out);
  // A view, not a copy: the instance (and its memory) goes when the loader drops the result.
  return out;
}

// xz-decompress only offers an async web-stream API, but loadKernel is synchronous. Its engine is
// xz-embedded compiled to WebAssembly, shipped inside the package as a data: URL; we instantiate that
// module synchronously and drive its small C API directly. That build lacks the x86 BCJ filter which
// Linux's xz_wrap.sh always applies, so for a BCJ+LZMA2 block we hand the decoder the same stream with
// the BCJ entry removed from the block header, undo BCJ here, and verify the block's CRC32 ourselves.
const XZ_OK = 0;
const XZ_STREAM_END = 1;
const XZ_DATA_ERROR = 7;
const XZ_ERRORS: Record<number, string> = {
  2: 'unsupported integrity check',
  3: 'decoder out of memory',
  4: 'dictionary larger than the memory limit',
  5: 'not an xz stream',
  6: 'unsupported xz options or filter',
  7: 'compressed data is corrupt',
  8: 'stream is truncated',
};
const XZ_FILTER_X86 = 0x04;
const XZ_FILTER_LZMA2 = 0x21;
const XZ_CHECK_NONE = 0;
const XZ_CHECK_CRC32 = 1;
const XZ_STREAM_HEADER_SIZE = 12;

interface XzExports {
  memory: { buffer: ArrayBuffer };
  create_context(): number;
  destroy_context(ptr: number): void;
  supply_input(ptr: number, len: number): void;
  get_next_output(ptr: number): number;
}

let xzModule: object | undefined;

function readVarint(buf: Uint8Array, pos: number): { value: number; next: number } {
  let value = 0;
  for (let i = 0; i < 9; i++) {
    if (pos + i >= buf.length) throw new ImageError('corrupt xz kernel payload: truncated block header');
    const b = buf[pos + i];
    value += (b & 0x7f) * 2 ** (7 * i);
    if ((b & 0x80) === 0) return { value, next: pos + i + 1 };
  }
  throw new ImageError('corrupt xz kernel payload: overlong integer in block header');
}

interface BcjPlan {
  patched: Uint8Array;
  /** Offset of the block's integrity check in the stream, and the check type. */
  checkType: number;
  blockStart: number;
}

/**
 * If the first block is BCJ(x86)+LZMA2, returns a copy of the stream whose block header lists LZMA2
 * alone (same header size, fresh header CRC). Returns undefined for streams the decoder takes as is.
 */
function planBcjWorkaround(stream: Uint8Array): BcjPlan | undefined {
  if (stream.length < XZ_STREAM_HEADER_SIZE + 8) return undefined;
  const checkType = stream[7] & 0x0f;
  const blockStart = XZ_STREAM_HEADER_SIZE;
  const headerSize = (stream[blockStart] + 1) * 4;
  if (stream[blockStart] === 0 || blockStart + headerSize > stream.length) return undefined;
  const flags = stream[blockStart + 1];
  const filterCount = (flags & 3) + 1;
  let pos = blockStart + 2;
  const sizes: number[] = [];
  if (flags & 0x40) ({ next: pos } = readVarint(stream, pos)), sizes.push(pos);
  if (flags & 0x80) ({ next: pos } = readVarint(stream, pos)), sizes.push(pos);
  const sizeFields = stream.subarray(blockStart + 2, pos);
  const filters: Array<{ id: number; props: Uint8Array }> = [];
  for (let i = 0; i < filterCount; i++) {
    const id = readVarint(stream, pos);
    const propsLen = readVarint(stream, id.next);
    const end = propsLen.next + propsLen.value;
    if (end > blockStart + headerSize - 4) throw new ImageError('corrupt xz kernel payload: filter list overruns its block header');
    filters.push({ id: id.value, props: stream.subarray(propsLen.next, end) });
    pos = end;
  }
  if (filters.length !== 2 || filters[0].id !== XZ_FILTER_X86 || filters[1].id !== XZ_FILTER_LZMA2) return undefined;
  if (filters[0].props.length !== 0) throw new ImageError('unsupported xz options: BCJ filter with a start offset');
  if (checkType !== XZ_CHECK_NONE && checkType !== XZ_CHECK_CRC32) {
    throw new ImageError(`unsupported xz options: integrity check type ${checkType} with the x86 BCJ filter`);
  }
  const header = new Uint8Array(headerSize);
  header[0] = stream[blockStart];
  header[1] = flags & 0xc0;
  header.set(sizeFields, 2);
  let p = 2 + sizeFields.length;
  header[p++] = XZ_FILTER_LZMA2;
  header[p++] = filters[1].props.length;
  header.set(filters[1].props, p);
  new DataView(header.buffer).setUint32(headerSize - 4, crc32(header.subarray(0, headerSize - 4)), true);
  const patched = stream.slice();
  patched.set(header, blockStart);
  return { patched, checkType, blockStart };
}

/** The first block's stored CRC32, located through the stream index (reached from the footer). */
function storedBlockCrc32(stream: Uint8Array, blockStart: number): number {
  const dv = new DataView(stream.buffer, stream.byteOffset, stream.length);
  const footer = stream.length - 12;
  if (footer < XZ_STREAM_HEADER_SIZE || stream[footer + 10] !== 0x59 || stream[footer + 11] !== 0x5a) {
    throw new ImageError('corrupt xz kernel payload: missing stream footer');
  }
  const indexStart = footer - (dv.getUint32(footer + 4, true) + 1) * 4;
  if (indexStart < blockStart || stream[indexStart] !== 0) throw new ImageError('corrupt xz kernel payload: bad index');
  const records = readVarint(stream, indexStart + 1);
  if (records.value !== 1) throw new ImageError(`unsupported xz options: ${records.value} blocks with the x86 BCJ filter`);
  const unpadded = readVarint(stream, records.next).value;
  // Unpadded size counts header + data + check but not the block padding that precedes the check.
  const checkAt = blockStart + Math.ceil((unpadded - 4) / 4) * 4;
  if (checkAt < blockStart || checkAt + 4 > indexStart) throw new ImageError('corrupt xz kernel payload: bad index record');
  return dv.getUint32(checkAt, true);
}

/** Undoes the x86 BCJ filter in place (xz-embedded's bcj_x86, whole buffer at stream position 0). */
export function bcjX86Decode(buf: Uint8Array): void {
  const allowed = [true, true, true, false, true, false, false, false];
  const bitNum = [0, 1, 2, 2, 3, 3, 3, 3];
  const msbyte = (b: number) => b === 0x00 || b === 0xff;
  if (buf.length <= 4) return;
  const size = buf.length - 4;
  let prevPos = -1;
  let prevMask = 0;
  for (let i = 0; i < size; i++) {
    if ((buf[i] & 0xfe) !== 0xe8) continue;
    const gap = i - prevPos;
    if (gap > 3) {
      prevMask = 0;
    } else {
      prevMask = (prevMask << (gap - 1)) & 7;
      if (prevMask !== 0) {
        const b = buf[i + 4 - bitNum[prevMask]];
        if (!allowed[prevMask] || msbyte(b)) {
          prevPos = i;
          prevMask = (prevMask << 1) | 1;
          continue;
        }
      }
    }
    prevPos = i;
    if (msbyte(buf[i + 4])) {
      let src = (buf[i + 1] | (buf[i + 2] << 8) | (buf[i + 3] << 16) | (buf[i + 4] << 24)) >>> 0;
      let dest: number;
      for (;;) {
        dest = (src - (i + 5)) >>> 0;
        if (prevMask === 0) break;
        const j = bitNum[prevMask] * 8;
        const b = (dest >>> (24 - j)) & 0xff;
        if (!msbyte(b)) break;
        src = (dest ^ (2 ** (32 - j) - 1)) >>> 0;
      }
      dest &= 0x01ffffff;
      if (dest & 0x01000000) dest |= 0xfe000000;
      buf[i + 1] = dest & 0xff;
      buf[i + 2] = (dest >>> 8) & 0xff;
      buf[i + 3] = (dest >>> 16) & 0xff;
      buf[i + 4] = (dest >>> 24) & 0xff;
      i += 4;
    } else {
      prevMask = (prevMask << 1) | 1;
    }
  }
}

function unxz(stream: Uint8Array, b: Budget): Uint8Array {
  const size = b.size;
  const bcj = planBcjWorkaround(stream);
  const sink = new BoundedSink(b);
  const rc = runXzDecoder(bcj ? bcj.patched : stream, sink);
  if (!bcj) {
    if (rc !== XZ_STREAM_END) throw new ImageError(`corrupt xz kernel payload: ${XZ_ERRORS[rc] ?? `decoder error ${rc}`}`);
    return sink.result();
  }
  // Without BCJ the block's CRC32 (taken over the BCJ-decoded bytes) cannot match, so the decoder
  // reports a data error right after the last byte; any other outcome means the data itself is bad.
  if (!((rc === XZ_DATA_ERROR || rc === XZ_STREAM_END) && sink.length === size)) {
    throw new ImageError(`corrupt xz kernel payload: ${XZ_ERRORS[rc] ?? `decoder error ${rc}`}`);
  }
  const out = sink.result();
  bcjX86Decode(out);
  if (bcj.checkType === XZ_CHECK_CRC32 && crc32(out) !== storedBlockCrc32(stream, bcj.blockStart)) {
    throw new ImageError('corrupt xz kernel payload: CRC32 mismatch');
  }
  return out;
}

/** Feeds `stream` to a fresh xz-embedded instance; returns its final status (STREAM_END or an error). */
function runXzDecoder(stream: Uint8Array, sink: BoundedSink): number {
  xzModule ??= embeddedWasm('xz-decompress', /data:application\/wasm;base64,([A-Za-z0-9+/=]+)/);
  const instance = new wasm.Instance(xzModule, {});
  const x = instance.exports as unknown as XzExports;
  const ctx = x.create_context();
  // The context begins with u32 fields: buffer size, input buffer, input position, input size,
  // output buffer, output position (the layout xz-decompress's own wrapper relies on).
  const fields = () => new Uint32Array(x.memory.buffer, ctx, 6);
  const bufSize = fields()[0];
  const inBuf = fields()[1];
  const outBuf = fields()[4];
  let consumed = 0;
  let drainCalls = 0;
  try {
    for (;;) {
      const f = fields();
      if (f[2] === f[3]) {
        if (consumed < stream.length) {
          const n = Math.min(bufSize, stream.length - consumed);
          new Uint8Array(x.memory.buffer, inBuf, n).set(stream.subarray(consumed, consumed + n));
          consumed += n;
          x.supply_input(ctx, n);
        } else {
          // All input is in, but the decoder may still owe output or its end-of-stream checks; it
          // answers XZ_BUF_ERROR by itself once it can make no more progress without input.
          if (++drainCalls > 4) return 8;
          x.supply_input(ctx, 0);
        }
      }
      const rc = x.get_next_output(ctx);
      sink.push(new Uint8Array(x.memory.buffer, outBuf, fields()[5]));
      fields()[5] = 0;
      if (rc !== XZ_OK) return rc;
    }
  } finally {
    x.destroy_context(ctx);
  }
}
