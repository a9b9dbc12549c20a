/**
 * `mode=user`: unprivileged user-mode networking by passt (Debian package `passt`), the daemon QEMU,
 * libvirt and podman use, run as a child of the VMM on one end of a socketpair (`--fd`), speaking
 * QEMU's length-prefixed framing (stream.ts). passt answers the guest's DHCP, ARP and DNS and NATs
 * its flows to the host's sockets; `hostfwd` maps to its port forwarding (-t/-u). The child is
 * reaped on every way out: close() ends it, and --fd makes passt exit as soon as its socket closes,
 * which also happens when the VMM dies by SIGKILL (the kernel closes the VMM's end).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { findOnPath } from '@kvm-ts/abi/debian';
import { accessSync, chownSync, closeSync, constants, fstatSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlDir, ensurePrivateDir } from '../../../control/paths.js';
import { native } from '../../../kvm/native.js';
import type { NetBackend } from '../net.js';
import { NetError, type Hostfwd } from './spec.js';
import { FramedConnection, streamCounters } from './stream.js';

/** Where the VMM looks for passt before PATH (the tests point it at the copy the fetch step unpacked). */
export const PASST_ENV = 'KVM_TS_PASST';
const STARTUP_MS = 10_000;
const STOP_MS = 2_000;
/** passt's stderr kept to explain an early exit. */
const STDERR_KEEP = 4096;
/** Who root's passt runs as (passt's own default, "nobody", by number so the directory can be given to it). */
export const PASST_RUNAS = { uid: 65534, gid: 65534 };

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** $KVM_TS_PASST, else `passt` on PATH (absolute entries only); undefined when neither is there. */
export function findPasst(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const override = env[PASST_ENV];
  if (override) return executable(override) ? override : undefined;
  return findOnPath('passt', env);
}

/**
 * A directory for passt's pid file that no other user can write into or replace: a fresh one in
 * the user's private runtime directory (the control sockets' 0700 one). Root's passt drops to
 * PASST_RUNAS before it opens its pid file and cannot reach root's private directory, so root's
 * gets a fresh directory of its own in tmpdir, 0700 and owned by that uid alone.
 */
function helperDir(env: NodeJS.ProcessEnv): { dir: string; runas: string[] } {
  if (process.geteuid!() === 0) {
    const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-passt-'));
    try {
      chownSync(dir, PASST_RUNAS.uid, PASST_RUNAS.gid);
    } catch (err) {
      removeQuietly(dir);
      throw err;
    }
    return { dir, runas: ['--runas', `${PASST_RUNAS.uid}:${PASST_RUNAS.gid}`] };
  }
  const parent = controlDir(env);
  ensurePrivateDir(parent);
  return { dir: mkdtempSync(join(parent, '.passt-')), runas: [] };
}

/** Cleanup must never replace the outcome it follows. */
function removeQuietly(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    // nothing more can be done; the directory is private, so nothing in it is anyone else's
  }
}

/** passt has written its pid: a regular file, opened without following a symlink or waiting on a FIFO. */
function pidWritten(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    if (!fstatSync(fd).isFile()) return false;
    const buf = Buffer.alloc(32);
    return buf.toString('utf8', 0, readSync(fd, buf, 0, buf.length, 0)).trim() !== '';
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

export function passtMissing(env: NodeJS.ProcessEnv = process.env): string {
  const override = env[PASST_ENV];
  if (override) return `${PASST_ENV}=${override} is not an executable file`;
  return 'passt is not installed (user-mode networking runs it): install the Debian package passt';
}

/**
 * passt's own arguments for the forwards: one -t/-u per forward, bound to its host address
 * (ADDR/HOSTPORT:GUESTPORT), and `none` for a protocol without any, so that passt infers no UDP
 * forwards from TCP ones.
 */
export function passtArgs(fd: number, pidFile: string, forwards: readonly Hostfwd[]): string[] {
  const ports = (proto: 'tcp' | 'udp', flag: string) => {
    const list = forwards.filter((f) => f.proto === proto);
    if (list.length === 0) return [flag, 'none'];
    return list.flatMap((f) => [flag, `${f.hostAddr}/${f.hostPort}:${f.guestPort}`]);
  };
  return ['--foreground', '--quiet', '--fd', String(fd), '--pid', pidFile, ...ports('tcp', '--tcp-ports'), ...ports('udp', '--udp-ports')];
}

/** What passt said, less its syslog complaints and the note about dropping root. */
function explanation(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^Failed to send \d+ bytes to syslog/.test(l) && !/^Don't run as root/.test(l));
  return lines.at(-1) ?? 'no message';
}

export class PasstBackend implements NetBackend {
  readonly vnetHeader = false;
  readonly name: string;
  private readonly counts = streamCounters();
  private receive: ((frame: Uint8Array) => void) | undefined;
  private readonly conn: FramedConnection;
  private readonly exited: Promise<void>;
  private running = true;
  private closing = false;

  private constructor(
    private readonly child: ChildProcess,
    socket: Socket,
    log: (line: string) => void,
  ) {
    this.name = `passt pid ${child.pid}`;
    const gone = child.exitCode !== null || child.signalCode !== null;
    this.exited = gone ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
    if (gone) this.running = false;
    child.once('exit', (code, signal) => {
      this.running = false;
      if (!this.closing) log(`${this.name} exited (${signal ?? `status ${code}`}); the guest's network is down`);
    });
    this.conn = new FramedConnection(
      socket,
      (f) => this.receive?.(f),
      this.counts,
      (len) => log(`${this.name}: a frame length of ${len} bytes; connection closed`),
      () => undefined,
    );
  }

  /**
   * Starts passt and waits until it has set up (its pid file appears) or failed (it exits: a port
   * to forward is taken, …): a NetError of one line then, passt's own reason in it.
   */
  static async start(opts: { forwards?: readonly Hostfwd[]; log: (line: string) => void; env?: NodeJS.ProcessEnv }): Promise<PasstBackend> {
    const path = findPasst(opts.env);
    if (!path) throw new NetError(passtMissing(opts.env));
    const { dir, runas } = helperDir(opts.env ?? process.env);
    const shim = native();
    const [ours, theirs] = shim.socketPair();
    let child: ChildProcess | undefined;
    let socket: Socket | undefined;
    try {
      const pidFile = join(dir, 'pid');
      child = spawn(path, [...passtArgs(3, pidFile, opts.forwards ?? []), ...runas], { stdio: ['ignore', 'ignore', 'pipe', theirs] });
      shim.close(theirs);
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-STDERR_KEEP);
      });
      const started = child;
      const outcome = await new Promise<'ready' | string>((resolve) => {
        const deadline = Date.now() + STARTUP_MS;
        const poll = setInterval(() => {
          if (pidWritten(pidFile)) done('ready');
          else if (Date.now() > deadline) done(`did not start within ${STARTUP_MS / 1000} s`);
        }, 10);
        const onExit = (code: number | null, signal: string | null) => setTimeout(() => done(`exited (${signal ?? `status ${code}`}): ${explanation(stderr)}`), 20);
        const onError = (err: Error) => done(`could not be started: ${err.message}`);
        started.once('exit', onExit);
        started.once('error', onError);
        function done(v: string) {
          clearInterval(poll);
          started.off('exit', onExit);
          started.off('error', onError);
          resolve(v);
        }
      });
      if (outcome !== 'ready') throw new NetError(`passt (${path}) ${outcome}`);
      socket = new Socket({ fd: ours, readable: true, writable: true });
      return new PasstBackend(started, socket, opts.log);
    } catch (err) {
      if (!socket) shim.close(ours);
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      throw err;
    } finally {
      removeQuietly(dir);
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  start(receive: (frame: Uint8Array) => void): void {
    this.receive = receive;
  }

  send(frame: Uint8Array): boolean {
    return this.running && this.conn.send(frame);
  }

  counters(): Record<string, number> {
    return { ...this.counts };
  }

  /** Closes the socket (passt exits on that by itself), then makes sure: SIGTERM, and SIGKILL if it lingers. */
  async close(): Promise<void> {
    this.closing = true;
    this.receive = undefined;
    this.conn.close();
    if (this.running) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_MS);
      await this.exited;
      clearTimeout(timer);
    }
  }
}
