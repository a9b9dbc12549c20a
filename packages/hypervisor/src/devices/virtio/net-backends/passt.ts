/**
 * `mode=user`: unprivileged user-mode networking by passt (Debian package `passt`), the daemon QEMU,
 * libvirt and podman use, run as a child of the VMM on one end of a socketpair (`--fd`), speaking
 * QEMU's length-prefixed framing (stream.ts). passt answers the guest's DHCP, ARP and DNS and NATs
 * its flows to the host's sockets; `hostfwd` maps to its port forwarding (-t/-u). The child is
 * reaped on every way out: close() ends it, and --fd makes passt exit as soon as its socket closes,
 * which also happens when the VMM dies by SIGKILL (the kernel closes the VMM's end).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, chmodSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
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

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** $KVM_TS_PASST, else `passt` on PATH; undefined when neither is there. */
export function findPasst(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const override = env[PASST_ENV];
  if (override) return executable(override) ? override : undefined;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && executable(join(dir, 'passt'))) return join(dir, 'passt');
  }
  return undefined;
}

export function passtMissing(env: NodeJS.ProcessEnv = process.env): string {
  const override = env[PASST_ENV];
  if (override) return `${PASST_ENV}=${override} is not an executable file`;
  return 'passt is not installed (user-mode networking runs it): install the Debian package passt';
}

/** passt's own arguments for the forwards: -t/-u lists, and no UDP forwards it would otherwise infer from TCP ones. */
export function passtArgs(fd: number, pidFile: string, forwards: readonly Hostfwd[]): string[] {
  const list = (proto: 'tcp' | 'udp') => forwards.filter((f) => f.proto === proto).map((f) => `${f.hostPort}:${f.guestPort}`).join(',') || 'none';
  return ['--foreground', '--quiet', '--fd', String(fd), '--pid', pidFile, '--tcp-ports', list('tcp'), '--udp-ports', list('udp')];
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
    const shim = native();
    const [ours, theirs] = shim.socketPair();
    // passt drops root for nobody before it writes its pid file: the directory lets it in, no one list it.
    const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-passt-'));
    let child: ChildProcess | undefined;
    let socket: Socket | undefined;
    try {
      chmodSync(dir, 0o733);
      const pidFile = join(dir, 'pid');
      child = spawn(path, passtArgs(3, pidFile, opts.forwards ?? []), { stdio: ['ignore', 'ignore', 'pipe', theirs] });
      shim.close(theirs);
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-STDERR_KEEP);
      });
      const started = child;
      const outcome = await new Promise<'ready' | string>((resolve) => {
        const deadline = Date.now() + STARTUP_MS;
        const poll = setInterval(() => {
          if (existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '') done('ready');
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
      rmSync(dir, { recursive: true, force: true });
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
