/**
 * `-n/--network mode=…` (repeatable) as a flag's text or a config file's object, checked the same
 * way either way: which keys each mode takes, which it needs, and the hypervisor's own checks of a
 * MAC and a forward. Opening the backend (a tap, passt, a socket) comes later, in `run`.
 */
import { resolve } from 'node:path';
import { NETWORK_SYNTAX as NETWORK_USAGE, NetError, parseHostfwd, parseMac, tapNameProblem, type NetworkSpec } from '@kvm-ts/hypervisor/net-spec';
import { OptionError, type Origin } from './run-options.js';

/** The config file's spelling of one network. */
export interface NetworkEntry {
  mode: 'tap' | 'user' | 'socket';
  tapif?: string;
  mac?: string;
  path?: string;
  listen?: boolean;
  hostfwd?: string[];
  /** mode=socket: the one other uid let in (flag: peer-uid=UID). */
  peerUid?: number;
}

const KEYS: Record<NetworkEntry['mode'], ReadonlyArray<keyof NetworkEntry>> = {
  tap: ['tapif', 'mac'],
  user: ['mac', 'hostfwd'],
  socket: ['path', 'listen', 'mac', 'peerUid'],
};

/** "mode=user,hostfwd=tcp:2222:22,hostfwd=udp:5555:7" → its entry (keys as a config file spells them). */
export function parseNetworkFlag(text: string): NetworkEntry {
  const entry: Record<string, unknown> = {};
  for (const part of text.split(',')) {
    if (part === '') throw new OptionError(`empty item in '${text}' (${NETWORK_USAGE})`);
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? undefined : part.slice(eq + 1);
    if (key === 'listen') {
      if (value !== undefined) throw new OptionError(`'listen' takes no value (in '${text}')`);
      entry.listen = true;
    } else if (key === 'peer-uid' && value !== undefined) {
      if (!/^\d{1,10}$/.test(value) || Number(value) > 0xfffffffe) throw new OptionError(`peer-uid '${value}' is not a uid (in '${text}')`);
      entry.peerUid = Number(value);
    } else if (key === 'hostfwd' && value !== undefined) {
      entry.hostfwd = [...((entry.hostfwd as string[] | undefined) ?? []), value];
    } else if (['mode', 'tapif', 'mac', 'path'].includes(key) && value !== undefined) {
      if (entry[key] !== undefined) throw new OptionError(`'${key}' given twice in '${text}'`);
      entry[key] = value;
    } else {
      throw new OptionError(`unknown item '${part}' in '${text}' (${NETWORK_USAGE})`);
    }
  }
  return entry as unknown as NetworkEntry;
}

/** Checks an entry (which keys its mode takes and needs, the MAC, the forwards) and resolves a socket's path. */
export function networkSpec(e: NetworkEntry, origin: Origin, index: number): NetworkSpec {
  const where = (key?: string) => (key ? [index, key] : [index]);
  const mode = e.mode as string | undefined;
  if (mode !== 'tap' && mode !== 'user' && mode !== 'socket') {
    throw new OptionError(mode === undefined ? `no mode (${NETWORK_USAGE})` : `mode must be tap, user or socket, got '${mode}'`, undefined, where('mode'));
  }
  for (const key of Object.keys(e) as Array<keyof NetworkEntry>) {
    if (key !== 'mode' && !KEYS[mode].includes(key)) throw new OptionError(`'${key}' does not go with mode=${mode} (${NETWORK_USAGE})`, undefined, where(key));
  }
  const check = (key: 'mac' | 'hostfwd', fn: () => void) => {
    try {
      fn();
    } catch (err) {
      if (err instanceof NetError) throw new OptionError(err.message, undefined, where(key));
      throw err;
    }
  };
  if (e.mac !== undefined) check('mac', () => parseMac(e.mac!));
  for (const f of e.hostfwd ?? []) check('hostfwd', () => parseHostfwd(f));
  const mac = e.mac !== undefined ? { mac: e.mac } : {};
  if (mode === 'tap') {
    if (!e.tapif) throw new OptionError('mode=tap needs tapif=NAME', undefined, where('tapif'));
    const problem = tapNameProblem(e.tapif);
    if (problem) throw new OptionError(problem, undefined, where('tapif'));
    return { mode, tapif: e.tapif, ...mac };
  }
  if (mode === 'user') return { mode, ...mac, ...(e.hostfwd?.length ? { hostfwd: [...e.hostfwd] } : {}) };
  if (!e.path) throw new OptionError('mode=socket needs path=P', undefined, where('path'));
  const peer = e.peerUid !== undefined ? { peerUid: e.peerUid } : {};
  return { mode, path: resolve(origin.baseDir, e.path), ...(e.listen ? { listen: true } : {}), ...mac, ...peer };
}
