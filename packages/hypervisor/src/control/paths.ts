/**
 * Where control sockets live: `$XDG_RUNTIME_DIR/kvm-ts/NAME.sock`, else `~/.kvm-ts/run/NAME.sock`;
 * the directory is the owner's alone (0700), each socket 0600. Also how messages name a place
 * inside a JSON document. Imports nothing heavy: `kvm-cli run` checks names before it starts the VMM.
 */
import { chmodSync, lstatSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

export const SOCKET_SUFFIX = '.sock';
export const LOG_SUFFIX = '.log';
/** Letters, digits, `.`, `_` and `-`, starting with a letter or digit; at most 64 characters. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The directory of this user's control sockets (an XDG_RUNTIME_DIR that is not absolute is ignored, as the spec says). */
export function controlDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg && isAbsolute(xdg)) return join(xdg, 'kvm-ts');
  return join(env.HOME && isAbsolute(env.HOME) ? env.HOME : homedir(), '.kvm-ts', 'run');
}

/**
 * Text from a flag, a config file or a peer as an error line may echo it: control characters
 * (terminal escapes, NUL, newlines) and DEL as \xNN, so nothing echoed can drive the terminal or
 * split the line; at most `max` characters.
 */
export function printable(text: string, max = Infinity): string {
  // eslint-disable-next-line no-control-regex
  const escaped = text.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return escaped.length > max ? `${escaped.slice(0, max)}…` : escaped;
}

/** Why `name` cannot name a VM, or undefined when it can. */
export function nameProblem(name: string): string | undefined {
  if (NAME_RE.test(name)) return undefined;
  return `'${printable(name, 80)}' is not a VM name (1–64 letters, digits, '.', '_' or '-', starting with a letter or digit)`;
}

/** The name of a VM started without --name: unique among running VMs, since it is the VMM's own pid. */
export function defaultName(pid = process.pid): string {
  return `guest-${pid}`;
}

export function socketPath(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(controlDir(env), name + SOCKET_SUFFIX);
}

/** sockaddr_un's sun_path holds 108 bytes with the terminating NUL. */
const MAX_SOCKET_PATH = 107;

/** Why a socket cannot be created at `path`, or undefined. */
export function socketPathProblem(path: string): string | undefined {
  const n = Buffer.byteLength(path);
  return n > MAX_SOCKET_PATH ? `${path} is ${n} bytes long, more than a UNIX socket path may be (${MAX_SOCKET_PATH})` : undefined;
}

/** The directory exists, is a directory, is this user's, and is 0700 (made so if it was not). */
export function ensurePrivateDir(dir: string, uid = process.geteuid!()): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  if (st.uid !== uid) throw new Error(`${dir} belongs to uid ${st.uid}, not to this user (uid ${uid})`);
  if ((st.mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
}

/** The console log of a detached VM, beside its socket. */
export function logPath(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(controlDir(env), name + LOG_SUFFIX);
}

/** A path inside a JSON document as messages print it: `disks[1].path`. */
export function jsonPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}
