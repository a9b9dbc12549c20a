/**
 * `kvm-cli run --detach`: the same `run` in a background process of its own session (no terminal,
 * console to a log file beside the socket), and back once its control socket answers. A VMM that
 * fails to come up leaves its one-line error here, with its exit status.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { DETACHED_ENV } from './commands/run.js';
import { CliError, UsageError } from './errors.js';

const BIN = fileURLToPath(new URL('../bin/kvm-cli.js', import.meta.url));
/** Loading a large kernel takes a while on a loaded host; a VMM silent for this long is given up on. */
const COME_UP_MS = 60_000;
const POLL_MS = 25;

/** `argv`: the run's arguments as given; `--detach` is dropped, everything else goes to the background run. */
export async function detach(argv: string[], name: string | undefined, json: boolean): Promise<number> {
  const ctl = await import('@kvm-ts/hypervisor/control');
  const dir = ctl.controlDir();
  ctl.ensurePrivateDir(dir);
  if (name !== undefined && (await ctl.probe(ctl.socketPath(name))) === 'alive') {
    throw new UsageError(`--name: a VM named '${name}' is already running (${ctl.socketPath(name)})`);
  }
  // Named once the VM's name is known (a generated one is the VMM's pid), and only if it comes up:
  // a clash must not clobber the running VM's log.
  const starting = join(dir, `.starting-${process.pid}-${randomBytes(4).toString('hex')}${ctl.LOG_SUFFIX}`);
  // Read and append: the VMM rotates it in place (log-rotation.ts), which needs both.
  const fd = openSync(starting, 'a+', 0o600);
  let child;
  try {
    child = spawn(process.execPath, [BIN, 'run', ...argv.filter((a) => a !== '--detach')], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, [DETACHED_ENV]: '1' },
    });
  } finally {
    closeSync(fd);
  }
  const exited = new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0))));
  const spawnFailed = new Promise<Error>((resolve) => child.once('error', resolve));
  const vmName = name ?? ctl.defaultName(child.pid);
  const socket = ctl.socketPath(vmName);

  const deadline = Date.now() + COME_UP_MS;
  let ended: number | Error | undefined;
  void exited.then((code) => (ended ??= code));
  void spawnFailed.then((err) => (ended ??= err));
  let info;
  while (!info) {
    if (ended === 0) {
      // A guest that was done before the first poll: it did start, and its log says what it did.
      const log = ctl.logPath(vmName);
      renameSync(starting, log);
      if (json) process.stdout.write(`${JSON.stringify({ name: vmName, pid: child.pid, socket, log, ended: true })}\n`);
      else process.stdout.write(`VM '${vmName}' ran and already ended with status 0; console log: ${log}\n`);
      return 0;
    }
    if (ended !== undefined) return failed(starting, ended);
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      rmSync(starting, { force: true });
      throw new CliError(`run --detach: VM '${vmName}' did not answer on ${socket} within ${COME_UP_MS / 1000} s`);
    }
    try {
      info = await ctl.call(socket, 'info', {}, 2000);
    } catch {
      await sleep(POLL_MS);
    }
  }
  const log = ctl.logPath(vmName);
  renameSync(starting, log);
  child.unref();
  if (json) process.stdout.write(`${JSON.stringify({ name: vmName, pid: info.pid, socket, log })}\n`);
  else process.stdout.write(`started VM '${vmName}' (pid ${info.pid}); console log: ${log}; control socket: ${socket}\n`);
  return 0;
}

/** The background run ended before its socket answered: its own last error line, and its status. */
function failed(starting: string, ended: number | Error): never {
  let text = '';
  try {
    text = readFileSync(starting, 'utf8');
  } catch {
    // nothing was written
  }
  rmSync(starting, { force: true });
  if (ended instanceof Error) throw new CliError(`run --detach: cannot start ${BIN}: ${ended.message}`);
  const last = text
    .split('\n')
    .filter((l) => l.startsWith('kvm-cli: '))
    .pop();
  const message = last ? last.slice('kvm-cli: '.length) : `run --detach: the VM exited with status ${ended} before its control socket answered`;
  if (ended === 2) throw new UsageError(message);
  throw new CliError(message, ended || 1);
}
