/**
 * The words of `-n/--network` and what is checked before anything is opened: the modes and their
 * keys, MAC addresses, port forwards, tap names. Light on purpose (no node:crypto, no shim): the
 * CLI checks its flags with it before the hypervisor loads (`@kvm-ts/hypervisor/net-spec`).
 */
import { isIPv6 } from 'node:net';

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
  /** The host address the forward listens on: loopback unless one is written out. */
  hostAddr: string;
  hostPort: number;
  guestPort: number;
}

/** Where a forward without a host address listens: this machine only (0.0.0.0 or [::] must be asked for). */
export const HOSTFWD_DEFAULT_ADDR = '127.0.0.1';
const HOSTFWD_SYNTAX =
  "tcp:HOSTPORT:GUESTPORT, tcp:HOSTADDR:HOSTPORT:GUESTPORT or QEMU's tcp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT (or udp:…; ports 1-65535; an IPv6 address in brackets)";
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
// An IPv6 address in brackets, checked loosely here and exactly by the caller.
const ADDR = String.raw`(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\])`;
const OURS = new RegExp(String.raw`^(tcp|udp):(?:${ADDR}:)?(\d{1,5}):(\d{1,5})$`);
const QEMU = new RegExp(String.raw`^(tcp|udp):${ADDR}?:(\d{1,5})-${ADDR}?:(\d{1,5})$`);

/** "127.0.0.1" or "[::1]" as written → the address, or undefined when it is none. */
function hostAddress(text: string): string | undefined {
  if (text.startsWith('[')) {
    const inner = text.slice(1, -1);
    return isIPv6(inner) ? inner : undefined;
  }
  return IPV4.test(text) ? text : undefined;
}

/**
 * A forward as this project spells it (`tcp:[HOSTADDR:]HOSTPORT:GUESTPORT`) or as QEMU does
 * (`tcp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT`). No host address means loopback.
 */
export function parseHostfwd(text: string): Hostfwd {
  const ours = OURS.exec(text);
  const qemu = ours ? undefined : QEMU.exec(text);
  const bad = () => new NetError(`hostfwd '${text}' is not ${HOSTFWD_SYNTAX}`);
  const m = ours ? [ours[1], ours[2], ours[3], undefined, ours[4]] : qemu ? [qemu[1], qemu[2], qemu[3], qemu[4], qemu[5]] : undefined;
  if (!m) throw bad();
  const [proto, host, hostPort, guest, guestPort] = m;
  const port = (s: string | undefined) => Number(s) >= 1 && Number(s) <= 65535;
  if (!port(hostPort) || !port(guestPort)) throw bad();
  const hostAddr = host === undefined ? HOSTFWD_DEFAULT_ADDR : hostAddress(host);
  if (hostAddr === undefined) throw new NetError(`hostfwd '${text}': '${host}' is not an IPv4 address or a bracketed IPv6 one`);
  if (guest !== undefined) throw new NetError(`hostfwd '${text}': passt forwards to the guest's own address; leave GUESTADDR empty`);
  return { proto: proto as 'tcp' | 'udp', hostAddr, hostPort: Number(hostPort), guestPort: Number(guestPort) };
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
  | { mode: 'socket'; path: string; listen?: boolean; mac?: string; peerUid?: number };

export const NETWORK_SYNTAX = 'mode=tap,tapif=NAME[,mac=…] | mode=user[,mac=…][,hostfwd=tcp:[HOSTADDR:]HOSTPORT:GUESTPORT] | mode=socket,path=P[,listen][,peer-uid=UID]';

/** Checks a spec without opening anything (a bad MAC or forward is a NetError). */
export function checkNetworkSpec(spec: NetworkSpec): void {
  if (spec.mac !== undefined) parseMac(spec.mac);
  if (spec.mode === 'user') for (const f of spec.hostfwd ?? []) parseHostfwd(f);
}

