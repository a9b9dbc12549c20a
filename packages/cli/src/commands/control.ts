/**
 * The verbs over running VMs' control sockets (docs/control.md): list, pause, resume, stop, stat,
 * debug and console. Each is a thin client of @kvm-ts/hypervisor/control.
 */
import { lstatSync, rmSync } from 'node:fs';
import type { ListedVm, MethodName, Params, Result, StatResult } from '@kvm-ts/hypervisor/control';
import { parse } from '../args.js';
import { usageLine, type CommandSpec, type OptionSpec } from '../usage.js';
import { GuestConsole } from '../console.js';
import { CliError, UsageError } from '../errors.js';
import { sizeText as size } from '../run-options.js';

type Ctl = typeof import('@kvm-ts/hypervisor/control');
const control = (): Promise<Ctl> => import('@kvm-ts/hypervisor/control');

/** How long a `stop` waits for the VMM to be gone after it answered. */
const STOP_GONE_MS = 15_000;

const JSON_OPTION: OptionSpec = { flag: 'json', kind: 'boolean', help: 'the answer as one JSON line' };

/** A command on one named VM: its name, or `help` when --help was answered. */
function oneName(argv: string[], spec: CommandSpec) {
  const usage = usageLine(spec);
  const args = parse(argv, spec);
  if (!args) return { help: true as const, values: {}, name: '' };
  const { values, positionals } = args;
  if (positionals.length !== 1) throw new UsageError(positionals.length ? `unexpected argument '${positionals[1]}' (usage: ${usage})` : `a VM name is needed (usage: ${usage})`);
  return { help: false as const, values, name: positionals[0] };
}

function socketOf(ctl: Ctl, name: string): string {
  const problem = ctl.nameProblem(name);
  if (problem) throw new UsageError(problem);
  return ctl.socketPath(name);
}

/** A connection failure or an error reply as one line about `name`. */
function explain(ctl: Ctl, name: string, socket: string, err: unknown): Error {
  if (err instanceof ctl.ConnectError && err.code === 'ENOENT') return new CliError(`no VM named '${name}' (no ${socket})`);
  if (err instanceof ctl.ConnectError && err.code === 'ECONNREFUSED') {
    // Connecting to a file that is not a socket is refused too: only a socket is ever removed.
    let isSocket = false;
    try {
      isSocket = lstatSync(socket).isSocket();
    } catch {
      // gone meanwhile
    }
    if (!isSocket) return new CliError(`no VM named '${name}' (${socket} is not a socket; left alone)`);
    rmSync(socket, { force: true });
    return new CliError(`no VM named '${name}' (its socket was stale and has been removed)`);
  }
  if (err instanceof ctl.ControlError) return new CliError(`${name}: ${err.message}`);
  return new CliError(`${name}: ${err instanceof Error ? err.message : String(err)}`);
}

async function request<M extends MethodName>(ctl: Ctl, name: string, method: M, params: Params<M>): Promise<Result<M>> {
  const socket = socketOf(ctl, name);
  try {
    return await ctl.call(socket, method, params);
  } catch (err) {
    throw explain(ctl, name, socket, err);
  }
}

function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(1)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Resident memory, rounded to MiB. */
function rss(bytes: number): string {
  return `${Math.round(bytes / (1024 * 1024))}M`;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ')).join('\n') + '\n';
}

export const LIST: CommandSpec = {
  name: 'list',
  summary: 'the running VMs: name, pid, state, vCPUs, memory, uptime, control socket',
  options: [{ flag: 'json', kind: 'boolean', help: 'one JSON array, an object per VM' }],
};
const LIST_USAGE = usageLine(LIST);

export async function list(argv: string[]): Promise<number> {
  const args = parse(argv, LIST);
  if (!args) return 0;
  const { values, positionals } = args;
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}' (usage: ${LIST_USAGE})`);
  const ctl = await control();
  const vms = await ctl.listVms(ctl.controlDir());
  if (values.json) {
    process.stdout.write(`${JSON.stringify(vms.map((v) => (v.info ? v.info : { name: v.name, socket: v.socket, error: v.error })))}\n`);
    return 0;
  }
  if (vms.length === 0) {
    process.stdout.write(`no running VMs (${ctl.controlDir()})\n`);
    return 0;
  }
  const rows = [['NAME', 'PID', 'STATE', 'CPUS', 'MEMORY', 'UPTIME', 'SOCKET']];
  for (const v of vms) {
    const i = v.info;
    rows.push(i ? [i.name, String(i.pid), i.state, String(i.cpus), size(i.memoryBytes), duration(i.uptimeMs), i.socket] : [v.name, '-', `unreachable: ${v.error}`, '-', '-', '-', v.socket]);
  }
  process.stdout.write(table(rows));
  return 0;
}

const DONE: Record<'pause' | 'resume' | 'stop', [string, string]> = {
  pause: ['paused', 'already paused'],
  resume: ['resumed', 'not paused'],
  stop: ['stopped', 'stopped'],
};

const STATE_SUMMARY = { pause: 'park every vCPU of a VM', resume: "let a paused VM's vCPUs run again", stop: 'end a VM (its run exits as the guest would)' };

const stateSpec = (m: 'pause' | 'resume' | 'stop'): CommandSpec => ({
  name: m,
  args: 'NAME',
  summary: STATE_SUMMARY[m],
  options: [{ flag: 'all', kind: 'boolean', help: `${m} every running VM instead of NAME` }],
});
export const STATE_SPECS = { pause: stateSpec('pause'), resume: stateSpec('resume'), stop: stateSpec('stop') };

/** `kvm-cli pause|resume|stop NAME|--all`: every VM is tried; the status is 1 if any failed. */
function stateVerb(method: 'pause' | 'resume' | 'stop') {
  const spec = STATE_SPECS[method];
  const usage = usageLine(spec);
  return async (argv: string[]): Promise<number> => {
    const args = parse(argv, spec);
    if (!args) return 0;
    const { values, positionals } = args;
    if (values.all ? positionals.length > 0 : positionals.length !== 1) {
      throw new UsageError(`name one VM or give --all (usage: ${usage})`);
    }
    const ctl = await control();
    let names: string[];
    if (values.all) {
      const vms: ListedVm[] = await ctl.listVms(ctl.controlDir());
      names = vms.map((v) => v.name);
      if (names.length === 0) {
        process.stdout.write('no running VMs\n');
        return 0;
      }
    } else {
      names = positionals;
      socketOf(ctl, names[0]);
    }
    const outcomes = await Promise.all(names.map((name) => changeState(ctl, name, method)));
    let status = 0;
    for (const o of outcomes) {
      if (o instanceof Error) {
        process.stderr.write(`kvm-cli: ${o.message}\n`);
        status = 1;
      } else process.stdout.write(`${o}\n`);
    }
    return status;
  };
}

async function changeState(ctl: Ctl, name: string, method: 'pause' | 'resume' | 'stop'): Promise<string | Error> {
  const socket = socketOf(ctl, name);
  let client;
  try {
    client = await ctl.ControlClient.connect(socket);
  } catch (err) {
    return explain(ctl, name, socket, err);
  }
  try {
    const result = await client.request(method, {}, method === 'stop' ? 30_000 : 10_000);
    if (method === 'stop') {
      // Back once the VMM has let go of the socket, i.e. is gone or all but gone.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([client.closedByPeer(), new Promise((r) => (timer = setTimeout(r, STOP_GONE_MS)))]);
      clearTimeout(timer);
      return `${name}: stopped`;
    }
    return `${name}: ${'changed' in result && result.changed ? DONE[method][0] : DONE[method][1]}`;
  } catch (err) {
    return explain(ctl, name, socket, err);
  } finally {
    client.close();
  }
}

export const pause = stateVerb('pause');
export const resume = stateVerb('resume');
export const stop = stateVerb('stop');

export const STAT: CommandSpec = { name: 'stat', args: 'NAME', summary: "a VM's state, exits by reason, vCPUs, devices and memory", options: [JSON_OPTION] };

export async function stat(argv: string[]): Promise<number> {
  const a = oneName(argv, STAT);
  if (a.help) return 0;
  const s = await request(await control(), a.name, 'stat', {});
  process.stdout.write(a.values.json ? `${JSON.stringify(s)}\n` : statText(s));
  return 0;
}

function exitsText(e: StatResult['exits']): string {
  const parts = Object.entries(e.byReason)
    .sort((x, y) => y[1] - x[1])
    .map(([k, n]) => `${k.replace(/^KVM_EXIT_/, '')} ${n}`);
  return `${e.total} exits${parts.length ? ` (${parts.join(', ')})` : ''}, ${e.forwarded} forwarded`;
}

function statText(s: StatResult): string {
  const lines = [
    `${s.name}: ${s.state}, up ${duration(s.uptimeMs)}`,
    `memory: ${size(s.memory.guestBytes)} guest (${s.memory.regions.map((r) => `${size(r.bytes)} at ${r.gpa}`).join(', ')}), VMM resident ${rss(s.memory.vmmRssBytes)}`,
    `exits: ${exitsText(s.exits)}`,
    ...s.vcpus.map((v) => `vCPU ${v.index}: ${v.state}, tid ${v.tid}, ${exitsText(v.exits)}`),
    ...s.devices.map((d) => {
      const c = Object.entries(d.counters).map(([k, n]) => `${k} ${n}`);
      return `device ${d.name} (${d.bus})${c.length ? `: ${c.join(', ')}` : ''}`;
    }),
  ];
  return `${lines.join('\n')}\n`;
}

export const DEBUG: CommandSpec = { name: 'debug', args: 'NAME', summary: "each vCPU's registers, code and stack, as lkvm debug prints them", options: [JSON_OPTION] };

export async function debug(argv: string[]): Promise<number> {
  const a = oneName(argv, DEBUG);
  if (a.help) return 0;
  const d = await request(await control(), a.name, 'debug', {});
  process.stdout.write(a.values.json ? `${JSON.stringify(d)}\n` : d.vcpus.map((v) => v.dump).join('\n'));
  return 0;
}

export const CONSOLE: CommandSpec = { name: 'console', args: 'NAME', summary: "attach to a VM's console until Ctrl-A x (the VM keeps running)", options: [] };

/** Attaches to a VM's console until Ctrl-A x (the VM keeps running) or until the VM ends. */
export async function attachConsole(argv: string[]): Promise<number> {
  const a = oneName(argv, CONSOLE);
  if (a.help) return 0;
  const ctl = await control();
  const socket = socketOf(ctl, a.name);
  let client;
  let first: Buffer;
  try {
    client = await ctl.ControlClient.connect(socket);
    first = await client.console(true);
  } catch (err) {
    client?.close();
    throw explain(ctl, a.name, socket, err);
  }
  const sock = client.socket;
  if (process.stdin.isTTY) process.stderr.write(`kvm-cli: attached to ${a.name}'s console; Ctrl-A x detaches\r\n`);
  process.stdout.write(first);
  return new Promise<number>((resolve) => {
    let detached = false;
    const guest = new GuestConsole({
      input: (bytes) => sock.write(bytes),
      whenRoom: (resume) => void sock.once('drain', resume),
      quit: () => {
        detached = true;
        guest.restore();
        sock.end();
        process.stderr.write(`\r\nkvm-cli: detached from ${a.name} (it keeps running)\n`);
        resolve(0);
      },
    });
    sock.on('data', (bytes: Buffer) => process.stdout.write(bytes));
    sock.on('close', () => {
      guest.restore();
      if (!detached) {
        process.stderr.write(`\r\nkvm-cli: ${a.name}: the VM ended\n`);
        resolve(0);
      }
    });
    sock.resume();
  });
}
