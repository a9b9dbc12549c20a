/**
 * The words of `-n/--network` and what is checked before anything is opened: the modes and their
 * keys, MAC addresses, port forwards, tap names. Light on purpose (no node:crypto, no shim): the
 * CLI checks its flags with it before the hypervisor loads (`@kvm-ts/hypervisor/net-spec`).
 */

export class NetError extends Error {
  override name = 'NetError';
}

export function formatMac(mac: Uint8Array): string {
  return Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join(':');
}

/** "52:54:00:12:34:56" (or with dashes); refuses multicast and all-zero addresses. */
export function parseMac(text: string): Uint8Array {
  const m = /^([0-9a-f]{2})([:-])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i.exec(text);
  if (!m) throw new NetError(`'${text}' is not a MAC address (xx:xx:xx:xx:xx:xx)`);
  const mac = Uint8Array.from([m[1], m[3], m[4], m[5], m[6], m[7]].map((x) => parseInt(x, 16)));
  if (mac[0] & 1) throw new NetError(`${text} is a multicast address, not a station's`);
  if (mac.every((b) => b === 0)) throw new NetError(`${text} is not a usable address`);
  return mac;
}

export interface Hostfwd {
  proto: 'tcp' | 'udp';
  hostPort: number;
  guestPort: number;
}

/** "tcp:HOSTPORT:GUESTPORT" (or udp:…), as QEMU spells a forward without addresses. */
export function parseHostfwd(text: string): Hostfwd {
  const m = /^(tcp|udp):(\d{1,5}):(\d{1,5})$/.exec(text);
  const port = (s: string) => Number(s) >= 1 && Number(s) <= 65535;
  if (!m || !port(m[2]) || !port(m[3])) throw new NetError(`hostfwd '${text}' is not tcp:HOSTPORT:GUESTPORT or udp:HOSTPORT:GUESTPORT (ports 1-65535)`);
  return { proto: m[1] as 'tcp' | 'udp', hostPort: Number(m[2]), guestPort: Number(m[3]) };
}

/** linux/if.h; the shim's tun.IFNAMSIZ, which a test compares (this module loads no shim). */
export const IFNAMSIZ = 16;

/** Interface names the kernel takes (dev_valid_name), kept to the portable characters. */
export function tapNameProblem(name: string): string | undefined {
  if (name.length === 0 || name.length >= IFNAMSIZ) return `tap name '${name}' must be 1 to ${IFNAMSIZ - 1} characters`;
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || name === '.' || name === '..') return `tap name '${name}' may hold only letters, digits, '_', '.' and '-'`;
  return undefined;
}

export type NetworkSpec =
  | { mode: 'tap'; tapif: string; mac?: string }
  | { mode: 'user'; mac?: string; hostfwd?: string[] }
  | { mode: 'socket'; path: string; listen?: boolean; mac?: string };

export const NETWORK_SYNTAX = 'mode=tap,tapif=NAME[,mac=…] | mode=user[,mac=…][,hostfwd=tcp:HOSTPORT:GUESTPORT] | mode=socket,path=P[,listen]';

/** Checks a spec without opening anything (a bad MAC or forward is a NetError). */
export function checkNetworkSpec(spec: NetworkSpec): void {
  if (spec.mac !== undefined) parseMac(spec.mac);
  if (spec.mode === 'user') for (const f of spec.hostfwd ?? []) parseHostfwd(f);
}

