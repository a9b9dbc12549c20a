/**
 * Who is at the other end of a UNIX socket, and a listener only its owner can connect to: what
 * the control socket and socket cables both rely on. The peer's uid is SO_PEERCRED (the shim),
 * read from the connected socket itself, so a path swapped after connect() changes nothing.
 */
import type { Server, Socket } from 'node:net';
import { native } from '../kvm/native.js';

/** The uid of the process that connected (or listened) at the other end, or undefined if unknown. */
export function peerUid(sock: Socket): number | undefined {
  const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
  try {
    return typeof fd === 'number' && fd >= 0 ? native().peerCredentials(fd).uid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * listen(path) with the socket file 0600 from its first moment, whatever the process umask: the
 * bind happens inside listen(), under a umask that lets only the owner in.
 */
export function listenPrivate(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    const old = process.umask(0o177);
    try {
      server.listen(path, () => {
        server.off('error', onError);
        resolve();
      });
    } finally {
      process.umask(old);
    }
  });
}
