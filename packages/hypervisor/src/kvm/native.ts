/**
 * The native syscall shim (native/shim.cc), loaded once per thread. It knows Linux system calls,
 * not KVM: request numbers, constants and layouts all come from the spec.
 */
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { fileURLToPath } from 'node:url';

export type IoctlArg = number | bigint | ArrayBuffer | ArrayBufferView;

export interface FdPoll {
  close(): void;
  ref(): void;
  unref(): void;
}

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** Punch a hole (reads back as zeros, frees the blocks) or zero a range (blocks stay allocated). */
export type FallocateOp = 'punch-hole' | 'zero-range';

export interface Shim {
  /** open(path, O_RDWR | O_CLOEXEC). */
  open(path: string): number;
  close(fd: number): void;
  /**
   * The ioctl's non-negative result; throws a SysError otherwise. A request that encodes an
   * argument size needs a buffer at least that long (a number or bigint is refused); `bound`
   * ([countOffset, countSize, entriesOffset, entrySize], counted-arrays.ts) makes it check the
   * buffer also holds every entry its header counts.
   */
  ioctl(fd: number, request: number, arg?: IoctlArg, bound?: readonly [number, number, number, number]): number;
  /** The result, or -errno: for KVM_RUN, where EINTR is routine. */
  ioctlRaw(fd: number, request: number, arg?: IoctlArg, bound?: readonly [number, number, number, number]): number;
  /** Private, zero-filled, MAP_NORESERVE; length page-aligned and ≤ 4 GiB. */
  mmapAnonymous(length: number): ArrayBuffer;
  /** MAP_SHARED of `fd` from offset 0. */
  mmapShared(fd: number, length: number): ArrayBuffer;
  /** Unmaps now and detaches the buffer. */
  munmap(buffer: ArrayBuffer): void;
  /** The host virtual address of the first byte. */
  address(bytes: ArrayBuffer | ArrayBufferView): bigint;
  /** A non-blocking, close-on-exec eventfd. */
  eventfd(initval?: number): number;
  /** Bytes transferred, or -EAGAIN (non-blocking, nothing to do), or -EINTR (kicked). */
  read(fd: number, bytes: ArrayBufferView): number;
  write(fd: number, bytes: ArrayBufferView): number;
  /**
   * An integer passed by value to a request whose number encodes a size all the same (tun's
   * TUNSETOFFLOAD): the result, or -errno. ioctl() refuses numbers for such requests on purpose.
   */
  ioctlValue(fd: number, request: number, value: number): number;
  /** O_NONBLOCK on: read/write then return -EAGAIN instead of waiting. */
  setNonBlocking(fd: number): void;
  /** socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC): two connected, blocking ends. */
  socketPair(): [number, number];
  /** Makes the calling thread kickable; returns its kernel thread id. */
  prepareKick(): number;
  threadId(): number;
  /** Interrupts a blocking syscall in thread `tid` of this process; false if it has ended. */
  kick(tid: number): boolean;
  /** getsockopt(SO_PEERCRED) of a connected UNIX socket: the peer's pid, uid and gid at connect() time. */
  peerCredentials(fd: number): PeerCredentials;
  /**
   * An open-file-description lock over the whole file (F_OFD_SETLK, as QEMU locks images): write
   * lock when `exclusive`, else read lock. 0, or -errno (-EAGAIN/-EACCES: someone else holds one).
   */
  lockFile(fd: number, exclusive: boolean): number;
  /** fallocate(2) by name (both keep the file size), at once: 0 or -errno. For probes at set-up. */
  fallocateSync(fd: number, op: FallocateOp, offset: number, length: number): number;
  /** The same on the libuv threadpool; `done` gets 0 or -errno on the event loop. */
  fallocate(fd: number, op: FallocateOp, offset: number, length: number, done: (result: number) => void): void;
  /** Calls back on the event loop whenever `fd` is readable or hung up. */
  FdPoll: new (fd: number, onReady: (events: number, status: number) => void) => FdPoll;
  readonly pageSize: number;
  /** The signal kick() sends (SIGRTMIN): documented in docs/limits.md. */
  readonly kickSignal: number;
  /** The tun driver's numbers, compiled from linux/if_tun.h and net/if.h. */
  readonly tun: TunConstants;
}

export interface TunConstants {
  readonly TUNSETIFF: number;
  readonly TUNSETOFFLOAD: number;
  readonly TUNSETVNETHDRSZ: number;
  readonly IFF_TAP: number;
  readonly IFF_NO_PI: number;
  readonly IFF_VNET_HDR: number;
  readonly TUN_F_CSUM: number;
  readonly IFNAMSIZ: number;
  /** sizeof(struct ifreq). */
  readonly ifreqSize: number;
  /** offsetof(struct ifreq, ifr_flags). */
  readonly ifreqFlagsOffset: number;
}

/** What the shim throws for a failed system call (same fields as Node's fs errors). */
export interface SysError extends Error {
  code: string;
  errno: number;
  syscall: string;
}

export function isSysError(err: unknown): err is SysError {
  return err instanceof Error && typeof (err as Partial<SysError>).code === 'string' && typeof (err as Partial<SysError>).syscall === 'string';
}

/** "EINTR" for 4: the name of a Linux errno value. */
export function errnoName(errno: number): string {
  const found = Object.entries(osConstants.errno).find(([, v]) => v === errno);
  return found ? found[0] : `errno ${errno}`;
}

let shim: Shim | undefined;

export function native(): Shim {
  if (shim) return shim;
  const path = fileURLToPath(new URL('../../build/Release/kvm_shim.node', import.meta.url));
  try {
    shim = createRequire(import.meta.url)(path) as Shim;
  } catch (err) {
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new Error(`the kvm-ts native shim is not usable (${why}); build it with: cd packages/hypervisor && node scripts/build-native.mjs`);
  }
  return shim;
}
