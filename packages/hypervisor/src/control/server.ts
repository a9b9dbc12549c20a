/**
 * The control socket's server: one per VM, at a path of its own (paths.ts). It claims the path
 * (a live owner is a name clash; a socket nobody listens on is stale and replaced), answers only
 * peers of its own uid (SO_PEERCRED through the shim), reads bounded request lines, validates them
 * with the protocol's zod schemas (loaded on the first request) and answers each with a result or
 * an error. Nothing a client sends or fails to send can throw out of here: the VM keeps running.
 */
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { dirname } from 'node:path';
import { LineSplitter, TOO_LONG } from './lines.js';
import { ensurePrivateDir, socketPathProblem } from './paths.js';
import { listenPrivate, peerUid } from './unix-peer.js';
import {
  ControlError,
  controlSchemas,
  firstIssue,
  MAX_LINE_BYTES,
  PROTOCOL_VERSION,
  type ErrorCode,
  type MethodName,
  type Params,
  type Reply,
  type RequestId,
  type Result,
} from './protocol.js';

/** Where an attached console client's bytes go, and how the VM's output reaches it. */
export interface ConsoleSink {
  write(bytes: Uint8Array): void;
  /** Bytes written and not yet taken by the client. */
  readonly buffered: number;
  end(): void;
}

export interface ConsoleSession {
  /** Recent output to send before anything else. */
  backlog: Uint8Array;
  /** Bytes the client typed, for the guest. */
  input(bytes: Uint8Array): void;
  detach(): void;
}

interface ConsoleUpgrade {
  id: RequestId;
  target: ControlTarget;
  backlog: boolean;
}
/** What one request line comes to. */
type Outcome = { reply: Reply } | { console: ConsoleUpgrade };

type Handler<M extends MethodName> = (params: Params<M>) => Result<M> | Promise<Result<M>>;

/** What a control socket drives: one handler per method, and the console. */
export type ControlTarget = { [M in Exclude<MethodName, 'console'>]: Handler<M> } & {
  /** Throws ControlError ('busy', 'unavailable') when the console cannot be attached. */
  attachConsole(sink: ConsoleSink, withBacklog: boolean): ConsoleSession;
};

/** The name is taken: a live VMM answers on the socket. */
export class NameInUseError extends Error {
  override name = 'NameInUseError';
  constructor(readonly path: string) {
    super(`${path} is in use by a running VM`);
  }
}

export interface ListenOptions {
  path: string;
  /** The only uid let in (default: this process's effective uid). */
  uid?: number;
  /** Connections at once; further ones get a `busy` error (default 64). */
  maxConnections?: number;
}

/** A client that stops reading its replies is dropped once this much is queued for it. */
const MAX_PENDING_WRITE = 1 << 20;
/** How long close() lets requests in flight (a `stop`, say) finish and be answered. */
const CLOSE_GRACE_MS = 2000;
/**
 * A connection that has not completed a request line for this long (none in flight, no console
 * attached) is closed: idle clients must not hold the connection limit (docs/control.md).
 */
export const IDLE_TIMEOUT_MS = 5000;

function errorReply(id: RequestId | null, code: ErrorCode, message: string): Reply {
  return { v: PROTOCOL_VERSION, id, error: { code, message } };
}

function line(reply: Reply): string {
  return `${JSON.stringify(reply)}\n`;
}

/** Is anyone listening at `path`? A socket file nobody listens on refuses the connection. */
export function probe(path: string, timeoutMs = 2000): Promise<'alive' | 'stale' | 'gone'> {
  return new Promise((resolve) => {
    const sock = net.connect(path);
    const done = (verdict: 'alive' | 'stale' | 'gone') => {
      clearTimeout(timer);
      sock.destroy();
      resolve(verdict);
    };
    // Connected but silent still means a live listener (one busy starting up, say).
    const timer = setTimeout(() => done('alive'), timeoutMs);
    sock.once('connect', () => done('alive'));
    sock.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ENOENT' ? 'gone' : err.code === 'ECONNREFUSED' ? 'stale' : 'alive'));
  });
}

/** Servers whose socket a process exit (process.exit(), an uncaught exception) must still remove. */
const liveServers = new Set<ControlServer>();
let exitHookInstalled = false;

function removeAtExit(server: ControlServer): void {
  liveServers.add(server);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const s of liveServers) s.removeSocket();
  });
}

export class ControlServer {
  private readonly connections = new Set<Connection>();
  /** Every accepted socket, refused ones too: close() must see each of them closed. */
  private readonly sockets = new Set<net.Socket>();
  private readonly inflight = new Set<Promise<unknown>>();
  private target: ControlTarget | undefined;
  private readonly targetWaiters: Array<() => void> = [];
  private closing = false;
  private closed: Promise<void> | undefined;
  private removed = false;
  readonly uid: number;
  private readonly maxConnections: number;
  private ino = -1;
  private dev = -1;

  private constructor(
    private readonly server: net.Server,
    readonly path: string,
    opts: ListenOptions,
  ) {
    this.uid = opts.uid ?? process.geteuid!();
    this.maxConnections = opts.maxConnections ?? 64;
    server.on('connection', (sock) => this.accept(sock));
    // Accept errors (EMFILE, …) must not end the VMM; the listener stays.
    server.on('error', () => {});
  }

  /**
   * Creates the socket (and its 0700 directory). A live VMM at the path is a NameInUseError; a
   * socket file nobody answers on is removed and replaced.
   */
  static async listen(opts: ListenOptions): Promise<ControlServer> {
    const tooLong = socketPathProblem(opts.path);
    if (tooLong) throw new Error(tooLong);
    ensurePrivateDir(dirname(opts.path));
    for (let attempt = 0; ; attempt++) {
      const server = net.createServer({ pauseOnConnect: false });
      try {
        await listenPrivate(server, opts.path);
        const cs = new ControlServer(server, opts.path, opts);
        chmodSync(opts.path, 0o600);
        const st = lstatSync(opts.path);
        cs.ino = st.ino;
        cs.dev = st.dev;
        removeAtExit(cs);
        return cs;
      } catch (err) {
        server.close();
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt > 0) throw err;
        const verdict = await probe(opts.path);
        if (verdict === 'alive') throw new NameInUseError(opts.path);
        if (verdict === 'stale') {
          if (!lstatSync(opts.path).isSocket()) throw new Error(`${opts.path} exists and is not a socket`);
          unlinkSync(opts.path);
        }
      }
    }
  }

  /** From now on requests reach `target` (those that came earlier waited for it). */
  serve(target: ControlTarget): void {
    this.target = target;
    for (const w of this.targetWaiters.splice(0)) w();
  }

  private accept(sock: net.Socket): void {
    sock.on('error', () => {}); // a client vanishing mid-request is its own business
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    if (this.closing) return refuse(sock, 'shutting-down', 'the VMM is shutting down');
    if (this.connections.size >= this.maxConnections) return refuse(sock, 'busy', `at most ${this.maxConnections} connections at once`);
    if (peerUid(sock) !== this.uid) return refuse(sock, 'forbidden', `only uid ${this.uid} may use this socket`);
    const conn = new Connection(this, sock);
    this.connections.add(conn);
    sock.on('close', () => {
      this.connections.delete(conn);
      conn.closed();
    });
  }

  private async waitForTarget(): Promise<ControlTarget | undefined> {
    if (!this.target && !this.closing) await new Promise<void>((r) => this.targetWaiters.push(r));
    return this.target;
  }

  /** Validates one request line and runs it: a reply, or the go-ahead for a console upgrade. Never throws. */
  async handle(text: string): Promise<Outcome> {
    let id: RequestId | null = null;
    try {
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (err) {
        return { reply: errorReply(null, 'parse-error', `not JSON: ${(err as Error).message}`) };
      }
      const s = controlSchemas();
      const maybeId = s.id.safeParse((json as { id?: unknown } | null)?.id);
      if (maybeId.success) id = maybeId.data;
      const env = s.envelope.safeParse(json);
      if (!env.success) return { reply: errorReply(id, 'invalid-request', firstIssue(env.error)) };
      const method = env.data.method;
      if (!Object.hasOwn(s.methods, method)) {
        const known = Object.keys(s.methods).join(', ');
        return { reply: errorReply(id, 'unknown-method', `unknown method '${method}' (methods: ${known})`) };
      }
      const m = method as MethodName;
      // The params as sent: the envelope's record schema copies them and silently loses an own `__proto__`.
      const params = s.methods[m].params.safeParse((json as { params?: unknown }).params ?? {});
      if (!params.success) return { reply: errorReply(id, 'invalid-params', firstIssue(params.error, 'params')) };
      const target = await this.waitForTarget();
      if (!target || this.closing) return { reply: errorReply(id, 'shutting-down', 'the VMM is shutting down') };
      const okId = env.data.id;
      if (m === 'console') return { console: { id: okId, target, backlog: (params.data as Params<'console'>).backlog ?? true } };
      const work = Promise.resolve((target[m] as Handler<typeof m>).call(target, params.data as never));
      this.inflight.add(work);
      let result: unknown;
      try {
        result = await work;
      } finally {
        this.inflight.delete(work);
      }
      const checked = s.methods[m].result.safeParse(result);
      if (!checked.success) {
        return { reply: errorReply(id, 'internal-error', `the reply did not match its schema: ${firstIssue(checked.error, 'result')}`) };
      }
      return { reply: { v: PROTOCOL_VERSION, id: okId, result: checked.data } };
    } catch (err) {
      if (err instanceof ControlError) return { reply: errorReply(id, err.code, err.message) };
      const msg = err instanceof Error ? err.message : String(err);
      return { reply: errorReply(id, 'internal-error', msg.split('\n')[0]) };
    }
  }

  /** The socket file, if it is still the one this server created. */
  removeSocket(): void {
    if (this.removed) return;
    this.removed = true;
    try {
      const st = lstatSync(this.path);
      if (st.ino === this.ino && st.dev === this.dev) unlinkSync(this.path);
    } catch {
      // already gone
    }
  }

  /**
   * Stops accepting, removes the socket, lets requests in flight finish (bounded), then ends every
   * connection (attached consoles included). Idempotent.
   */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.closing = true;
      for (const w of this.targetWaiters.splice(0)) w();
      this.removeSocket();
      liveServers.delete(this);
      const listening = new Promise<void>((r) => this.server.close(() => r()));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...this.inflight]), new Promise((r) => (timer = setTimeout(r, CLOSE_GRACE_MS)))]);
      clearTimeout(timer);
      for (const c of this.connections) c.end();
      // A client that does not hang up in time is cut off.
      const deadline = Date.now() + CLOSE_GRACE_MS;
      while (this.sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      for (const sock of this.sockets) sock.destroy();
      await listening;
    })();
    return this.closed;
  }
}

/** One error line, then the connection ends (whatever the client still sends is read and dropped). */
function refuse(sock: net.Socket, code: ErrorCode, message: string): void {
  sock.resume();
  hangUp(sock, line(errorReply(null, code, message)));
}

/** Ends the connection once what was written is out; a peer that then does not hang up is cut off. */
function hangUp(sock: net.Socket, last?: string): void {
  const cutOff = () => void setTimeout(() => sock.destroy(), 1000).unref();
  if (last === undefined) sock.end(cutOff);
  else sock.end(last, cutOff);
}

/** One client: its lines in order, one request at a time, then possibly a raw console stream. */
class Connection {
  private readonly lines = new LineSplitter(MAX_LINE_BYTES);
  private running = false;
  private ended = false;
  private session: ConsoleSession | undefined;
  private idle: NodeJS.Timeout | undefined;

  constructor(
    private readonly server: ControlServer,
    private readonly sock: net.Socket,
  ) {
    sock.on('data', (chunk: Buffer) => this.receive(chunk));
    this.armIdle();
  }

  /** (Re)starts the idle clock; a request in flight or an attached console stops it. */
  private armIdle(): void {
    clearTimeout(this.idle);
    if (this.ended || this.session) return;
    this.idle = setTimeout(() => (this.running ? this.armIdle() : this.end()), IDLE_TIMEOUT_MS);
    this.idle.unref();
  }

  private receive(chunk: Buffer): void {
    if (this.session) {
      this.session.input(chunk);
      return;
    }
    this.lines.push(chunk);
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (!this.ended && !this.session) {
        const text = this.lines.next();
        if (text === undefined) break;
        if (text === TOO_LONG) {
          this.send(errorReply(null, 'line-too-long', `a request line is at most ${MAX_LINE_BYTES} bytes`));
          this.end();
          break;
        }
        if (text.trim() === '') continue;
        this.armIdle();
        this.sock.pause();
        const outcome = await this.server.handle(text);
        if (this.ended) break;
        if ('console' in outcome) this.attachConsole(outcome.console);
        else this.send(outcome.reply);
        this.armIdle();
        this.sock.resume();
      }
    } finally {
      this.running = false;
    }
  }

  /** The `console` method: after its reply the connection carries raw console bytes both ways. */
  private attachConsole({ id, target, backlog }: ConsoleUpgrade): void {
    const sock = this.sock;
    const sink: ConsoleSink = {
      write: (bytes) => {
        if (!sock.destroyed) sock.write(bytes);
      },
      get buffered() {
        return sock.writableLength;
      },
      end: () => this.end(),
    };
    let session: ConsoleSession;
    try {
      session = target.attachConsole(sink, backlog);
    } catch (err) {
      const code = err instanceof ControlError ? err.code : 'internal-error';
      this.send(errorReply(id, code, err instanceof Error ? err.message : String(err)));
      return;
    }
    this.send({ v: PROTOCOL_VERSION, id, result: { backlogBytes: session.backlog.length } });
    if (session.backlog.length) sock.write(session.backlog);
    this.session = session;
    // Whatever the client sent after its request line is already console input.
    const early = this.lines.take();
    if (early.length) session.input(early);
  }

  private send(reply: Reply): void {
    if (this.ended || this.sock.destroyed) return;
    this.sock.write(line(reply));
    if (this.sock.writableLength > MAX_PENDING_WRITE) this.sock.destroy();
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.idle);
    this.sock.resume(); // so its hang-up is seen
    hangUp(this.sock);
  }

  closed(): void {
    this.ended = true;
    clearTimeout(this.idle);
    this.session?.detach();
    this.session = undefined;
  }
}
