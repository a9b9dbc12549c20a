/**
 * `mode=socket,path=P[,listen]`: Ethernet frames in QEMU's stream framing (stream.ts) over a UNIX
 * stream socket, to connect two VMs (one listens, one connects) or a VM and a test peer: no
 * privileges, no daemon. The listening side takes one peer at a time (a second is turned away while
 * one is connected) and removes its socket file when it closes; frames sent while no peer is
 * connected are dropped and counted, as a cable without a far end would. The connecting side does
 * not reconnect: once its peer is gone, its frames are dropped.
 *
 * Only this user's (or root's) processes are let in: the listening socket is 0600 whatever the
 * umask, and both ends check the other's uid with SO_PEERCRED. `peer-uid=UID` lets that one other
 * user in instead (the socket is then 0666, the uid check alone keeps everyone else out).
 */
import { chmodSync, existsSync, lstatSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { listenPrivate, peerUid } from '../../../control/unix-peer.js';
import { NetError, type NetBackend } from '../net.js';
import { FramedConnection, streamCounters } from './stream.js';

export interface SocketBackendOptions {
  path: string;
  listen?: boolean;
  /** The one other uid let in besides this user and root. */
  peerUid?: number;
  log: (line: string) => void;
}

/** Who may be at the far end: this user, root, and the one uid peer-uid= names. */
function allowedPeers(allowed: number | undefined): string {
  return `uid ${process.geteuid!()}, root${allowed !== undefined ? ` or uid ${allowed}` : ''}`;
}

/** The far end's uid when it is not allowed ('unknown' when SO_PEERCRED says nothing), else undefined. */
function refusedPeer(sock: Socket, allowed: number | undefined): number | 'unknown' | undefined {
  const uid = peerUid(sock);
  if (uid === undefined) return 'unknown';
  return uid === process.geteuid!() || uid === 0 || uid === allowed ? undefined : uid;
}

/** Resolves with the connected socket, or rejects with the connect error. */
function dial(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

function code(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}

export class SocketBackend implements NetBackend {
  readonly vnetHeader = false;
  readonly name: string;
  private readonly counts = { ...streamCounters(), peers: 0, refusedPeers: 0 };
  private receive: ((frame: Uint8Array) => void) | undefined;
  private conn: FramedConnection | undefined;
  private closed = false;

  private constructor(
    private readonly opts: SocketBackendOptions,
    private readonly server: Server | undefined,
    socket: Socket | undefined,
  ) {
    this.name = `socket ${opts.path}${opts.listen ? ', listening' : ''}`;
    if (socket) this.attach(socket);
    server?.on('connection', (s) => {
      const stranger = refusedPeer(s, opts.peerUid);
      if (stranger !== undefined || this.closed || (this.conn && !this.conn.closed)) {
        this.counts.refusedPeers++;
        if (stranger !== undefined) opts.log(`${this.name}: refused a peer of uid ${stranger} (allowed: ${allowedPeers(opts.peerUid)}; peer-uid=UID allows another)`);
        s.destroy();
        return;
      }
      this.attach(s);
    });
  }

  /** Listens at `path` (replacing a stale socket, never another file) or connects to it: one line on failure. */
  static async open(opts: SocketBackendOptions): Promise<SocketBackend> {
    const { path } = opts;
    if (!opts.listen) {
      let sock: Socket;
      try {
        sock = await dial(path);
      } catch (err) {
        const why = code(err) === 'ENOENT' ? 'no such socket' : code(err) === 'ECONNREFUSED' ? 'nobody is listening there' : code(err);
        throw new NetError(`socket ${path}: cannot connect (${why}); start the listening side first (mode=socket,path=${path},listen)`);
      }
      const stranger = refusedPeer(sock, opts.peerUid);
      if (stranger !== undefined) {
        sock.destroy();
        throw new NetError(`socket ${path}: the listener is uid ${stranger} (allowed: ${allowedPeers(opts.peerUid)}); add peer-uid=UID to connect to another user's VM`);
      }
      return new SocketBackend(opts, undefined, sock);
    }
    if (existsSync(path)) {
      if (!lstatSync(path).isSocket()) throw new NetError(`socket ${path}: the path exists and is not a socket`);
      try {
        (await dial(path)).destroy();
        throw new NetError(`socket ${path}: something is already listening there`);
      } catch (err) {
        if (err instanceof NetError) throw err;
        unlinkSync(path); // a stale socket nobody listens on
      }
    }
    const server = createServer();
    try {
      await listenPrivate(server, path);
    } catch (err) {
      throw new NetError(`socket ${path}: cannot listen (${code(err)})`);
    }
    // Accept errors (EMFILE, …) must not end the VMM.
    server.on('error', () => {});
    if (opts.peerUid !== undefined) chmodSync(path, 0o666);
    return new SocketBackend(opts, server, undefined);
  }

  private attach(socket: Socket): void {
    this.counts.peers++;
    this.conn = new FramedConnection(
      socket,
      (f) => this.receive?.(f),
      this.counts,
      (len) => this.opts.log(`${this.name}: the peer sent a frame length of ${len} bytes; disconnected`),
      () => undefined,
    );
  }

  start(receive: (frame: Uint8Array) => void): void {
    this.receive = receive;
  }

  send(frame: Uint8Array): boolean {
    if (!this.conn) {
      this.counts.droppedOut++;
      return false;
    }
    return this.conn.send(frame);
  }

  counters(): Record<string, number> {
    return { ...this.counts };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.receive = undefined;
    this.conn?.close();
    if (this.server) {
      await new Promise<void>((resolve) => this.server!.close(() => resolve()));
      // server.close() unlinks the path itself; a path replaced meanwhile is not ours to remove.
    }
  }
}
