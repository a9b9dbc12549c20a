/**
 * A control-socket client: requests with ids, replies validated against the protocol's schemas,
 * and the console upgrade. `kvm-cli list/pause/resume/stop/stat/debug/console` are thin layers
 * over this; an orchestrator can use it as it is.
 */
import { lstatSync, readdirSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { LineSplitter, TOO_LONG } from './lines.js';
import { controlDir, SOCKET_SUFFIX } from './paths.js';
import { ControlError, controlSchemas, firstIssue, PROTOCOL_VERSION, type InfoResult, type MethodName, type Params, type Result } from './protocol.js';

/** Replies can be larger than requests (a debug dump of many vCPUs). */
const MAX_REPLY_BYTES = 16 << 20;
const DEFAULT_TIMEOUT_MS = 10_000;

/** The socket could not be reached, or the connection broke. `code`: the errno name, if any. */
export class ConnectError extends Error {
  override name = 'ConnectError';
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

interface Pending {
  method: MethodName;
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class ControlClient {
  private readonly lines = new LineSplitter(MAX_REPLY_BYTES);
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private broken: Error | undefined;
  /** Set while a console upgrade waits for its reply: everything after that line is raw. */
  private upgrade: { id: number; resolve(rest: Buffer): void } | undefined;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => this.fail(new ConnectError(`control socket: ${err.message}`, err.code)));
    socket.on('close', () => this.fail(new ConnectError('the VM closed the connection')));
  }

  static connect(path: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const sock = net.connect(path);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new ConnectError(`${path}: no answer within ${timeoutMs} ms`, 'ETIMEDOUT'));
      }, timeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.removeAllListeners('error');
        resolve(new ControlClient(sock));
      });
      sock.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const why = err.code === 'ENOENT' ? 'no such socket' : err.code === 'ECONNREFUSED' ? 'nobody is listening (a stale socket)' : err.message;
        reject(new ConnectError(`${path}: ${why}`, err.code));
      });
    });
  }

  request<M extends MethodName>(method: M, params?: Params<M>, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Result<M>> {
    return this.send(method, params, timeoutMs) as Promise<Result<M>>;
  }

  private send(method: MethodName, params: unknown, timeoutMs: number): Promise<unknown> {
    if (this.broken) return Promise.reject(this.broken);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ConnectError(`no reply to '${method}' within ${timeoutMs} ms`, 'ETIMEDOUT'));
      }, timeoutMs);
      this.pending.set(id, { method, resolve, reject, timer });
      this.socket.write(`${JSON.stringify({ v: PROTOCOL_VERSION, id, method, params: params ?? {} })}\n`);
    });
  }

  /**
   * Turns this connection into the guest console: resolves with the bytes that already followed
   * the reply; from then on `socket` (paused: resume it after adding a 'data' listener) carries
   * raw console bytes both ways.
   */
  async console(backlog = true, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Buffer> {
    const id = this.nextId;
    const rest = new Promise<Buffer>((resolve) => (this.upgrade = { id, resolve }));
    await this.send('console', { backlog }, timeoutMs);
    return rest;
  }

  private receive(chunk: Buffer): void {
    if (this.broken) return;
    this.lines.push(chunk);
    for (;;) {
      const text = this.lines.next();
      if (text === undefined) return;
      if (text === TOO_LONG) return this.fail(new ConnectError(`a reply longer than ${MAX_REPLY_BYTES} bytes`), true);
      const upgraded = this.upgrade;
      const answered = this.settle(text);
      if (upgraded && answered?.id === upgraded.id) {
        this.upgrade = undefined;
        if (answered.ok) {
          // The caller reads the raw stream from here on (and resumes the socket).
          this.socket.removeAllListeners('data');
          this.socket.pause();
          upgraded.resolve(this.lines.take());
          return;
        }
      }
    }
  }

  /** One reply line: validated, then handed to the request it answers (whose id it returns). */
  private settle(text: string): { id: number; ok: boolean } | undefined {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      this.fail(new ConnectError(`the VM sent a line that is not JSON: ${text.slice(0, 80)}`), true);
      return undefined;
    }
    const s = controlSchemas();
    const err = s.errorReply.safeParse(json);
    if (err.success) {
      const { id, error } = err.data;
      const p = typeof id === 'number' ? this.pending.get(id) : undefined;
      const e = new ControlError(error.code, error.message);
      if (!p) {
        // An error about no request of ours (forbidden, busy, …): the server ends the connection.
        this.fail(e, true);
        return undefined;
      }
      this.finish(id as number, p);
      p.reject(e);
      return { id: id as number, ok: false };
    }
    const ok = s.resultReply.safeParse(json);
    const p = ok.success && typeof ok.data.id === 'number' ? this.pending.get(ok.data.id) : undefined;
    if (!ok.success || !p) {
      this.fail(new ConnectError(`the VM sent an unexpected reply: ${text.slice(0, 80)}`), true);
      return undefined;
    }
    const result = s.methods[p.method].result.safeParse(ok.data.result);
    this.finish(ok.data.id as number, p);
    if (!result.success) {
      p.reject(new ConnectError(`the reply to '${p.method}' does not match its schema: ${firstIssue(result.error, 'result')}`));
      return { id: ok.data.id as number, ok: false };
    }
    p.resolve(result.data);
    return { id: ok.data.id as number, ok: true };
  }

  private finish(id: number, p: Pending): void {
    clearTimeout(p.timer);
    this.pending.delete(id);
  }

  private fail(err: Error, destroy = false): void {
    if (!this.broken) this.broken = err;
    for (const [id, p] of this.pending) {
      this.finish(id, p);
      p.reject(err);
    }
    if (destroy) this.socket.destroy();
  }

  /** Resolves once the server has closed its end (after a `stop`, when the VMM is gone). */
  closedByPeer(): Promise<void> {
    if (this.socket.closed) return Promise.resolve();
    return new Promise((r) => this.socket.once('close', () => r()));
  }

  close(): void {
    this.socket.destroy();
  }
}

/** One request on a fresh connection. */
export async function call<M extends MethodName>(path: string, method: M, params?: Params<M>, timeoutMs?: number): Promise<Result<M>> {
  const client = await ControlClient.connect(path, timeoutMs);
  try {
    return await client.request(method, params, timeoutMs);
  } finally {
    client.close();
  }
}

export interface ListedVm {
  name: string;
  socket: string;
  /** What the VM said about itself; absent when it did not answer (`error` says why). */
  info?: InfoResult;
  error?: string;
}

/**
 * Every VM with a socket in `dir`, asked for its `info` in parallel. Sockets nobody listens on are
 * stale (their VMM was killed) and are removed, as `lkvm list` does.
 */
export async function listVms(dir = controlDir(), timeoutMs = 3000): Promise<ListedVm[]> {
  let names: string[];
  try {
    names = readdirSync(dir).filter((f) => f.endsWith(SOCKET_SUFFIX));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out = await Promise.all(
    names.sort().map(async (file): Promise<ListedVm | undefined> => {
      const socket = join(dir, file);
      const name = file.slice(0, -SOCKET_SUFFIX.length);
      try {
        if (!lstatSync(socket).isSocket()) return undefined;
        return { name, socket, info: await call(socket, 'info', {}, timeoutMs) };
      } catch (err) {
        if (err instanceof ConnectError && err.code === 'ECONNREFUSED') {
          try {
            unlinkSync(socket);
          } catch {
            // someone else cleaned it
          }
          return undefined;
        }
        if (err instanceof ConnectError && err.code === 'ENOENT') return undefined;
        return { name, socket, error: err instanceof Error ? err.message : String(err) };
      }
    }),
  );
  return out.filter((v): v is ListedVm => v !== undefined);
}
