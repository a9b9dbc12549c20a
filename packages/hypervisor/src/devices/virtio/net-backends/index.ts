/**
 * What `-n/--network` asks for, checked, and the backend that serves it: tap, passt (`mode=user`)
 * or a UNIX socket. Every refusal — no CAP_NET_ADMIN, a busy tap, passt missing, nobody listening —
 * is a NetError of one line, raised here before the VM exists.
 */
import type { NetBackend } from '../net.js';
import { PasstBackend } from './passt.js';
import { checkNetworkSpec, NetError, NETWORK_SYNTAX, parseHostfwd, type NetworkSpec } from './spec.js';
import { SocketBackend } from './socket.js';
import { TapBackend } from './tap.js';

export async function openNetBackend(spec: NetworkSpec, log: (line: string) => void): Promise<NetBackend> {
  checkNetworkSpec(spec);
  switch (spec.mode) {
    case 'tap':
      return TapBackend.open(spec.tapif, log);
    case 'user':
      return PasstBackend.start({ forwards: (spec.hostfwd ?? []).map(parseHostfwd), log });
    case 'socket':
      return SocketBackend.open({ path: spec.path, listen: spec.listen, peerUid: spec.peerUid, log });
    default:
      throw new NetError(`unknown network mode (${NETWORK_SYNTAX})`);
  }
}

/** Opens every backend; on the first refusal closes those already open and rethrows. */
export async function openNetBackends(specs: readonly NetworkSpec[], log: (line: string) => void): Promise<NetBackend[]> {
  const open: NetBackend[] = [];
  try {
    for (const s of specs) open.push(await openNetBackend(s, log));
    return open;
  } catch (err) {
    await Promise.all(open.map((b) => b.close()));
    throw err;
  }
}
