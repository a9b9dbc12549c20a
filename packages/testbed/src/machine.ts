/**
 * One run of the emulated machine: QEMU in TCG mode with -cpu max (which emulates SVM and NPT), the
 * host's root shared read-write over virtio-9p, the kernel console in a log file, the command's
 * output on a second serial port streamed to the caller, a wall-time limit that kills QEMU, and a
 * stall limit that kills a machine gone silent (its second stage lists processes every minute).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findOnPath } from '@kvm-ts/abi/debian';
import type { Emulator } from './emulator.js';
import type { TestbedKernel } from './kernel.js';

// Anchored at the line's end only: a command that left a partial line (a spinner) precedes it.
export const EXIT_MARKER = /kvm-ts-testbed: exit=(\d+)\s*$/;
const NOTE = /^kvm-ts-testbed: (.*?)\s*$/;

export interface MachineOptions {
  emulator: Emulator;
  kernel: TestbedKernel;
  initramfs: string;
  /** The command, run in `cwd` inside the machine with exactly `env`. */
  command: string[];
  cwd: string;
  env: Record<string, string>;
  cpus: number;
  memoryMiB: number;
  timeLimitS: number;
  /** Seconds without a byte on either serial port after which the machine counts as frozen. */
  stallLimitS: number;
  consoleLog: string;
  /** The command's output, as it arrives. */
  output: (chunk: string) => void;
  /** The testbed's own lines from inside the machine ("running (kernel …)"). */
  note: (line: string) => void;
}

export type MachineEnd =
  | { kind: 'exited'; status: number; seconds: number }
  | { kind: 'time-limit'; seconds: number }
  | { kind: 'error'; message: string; seconds: number }
  | { kind: 'stalled'; seconds: number }
  | { kind: 'no-status'; qemuStatus: number | null; signal: string | null; panic?: string; seconds: number };

/** The emulated kernel's own last words, when it panicked. */
export function kernelPanic(consoleText: string): string | undefined {
  return /Kernel panic - not syncing: ([^\r\n]*)/.exec(consoleText)?.[1]?.trim();
}

const consoleSize = (path: string) => {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
};

const consoleText = (path: string) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
};

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The script the machine's second stage runs on the host's root. */
export function commandScript(command: string[], cwd: string, env: Record<string, string>): string {
  const runtime = env.XDG_RUNTIME_DIR;
  return [
    '# written by @kvm-ts/testbed for one run; the emulated machine deletes nothing',
    `mkdir -p ${quote(env.TMPDIR)}${runtime ? ` ${quote(runtime)} && chmod 0700 ${quote(runtime)}` : ''} || exit 125`,
    `cd ${quote(cwd)} || exit 125`,
    `exec /usr/bin/env -i ${Object.entries(env).map(([k, v]) => quote(`${k}=${v}`)).join(' ')} ${command.map(quote).join(' ')}`,
    '',
  ].join('\n');
}

export function qemuArgs(o: Pick<MachineOptions, 'emulator' | 'kernel' | 'initramfs' | 'cpus' | 'memoryMiB' | 'consoleLog'>, script: string, root: boolean): string[] {
  return [
    '-nodefaults', '-no-user-config', '-nographic', '-no-reboot',
    ...o.emulator.firmwareDirs.flatMap((d) => ['-L', d]),
    '-machine', 'pc', '-accel', 'tcg,thread=multi', '-cpu', 'max', '-smp', String(o.cpus), '-m', `${o.memoryMiB}M`,
    '-kernel', o.kernel.vmlinuz, '-initrd', o.initramfs,
    // loglevel=7 and print-fatal-signals put a process's death by SIGSEGV or SIGBUS (info level) in the console log.
    '-append', `console=ttyS0 panic=-1 loglevel=7 print-fatal-signals=1 rdinit=/init kvmts_testbed.run=${script}`,
    '-serial', `file:${o.consoleLog}`,
    '-chardev', 'stdio,id=command,signal=off', '-serial', 'chardev:command',
    // passthrough keeps owners and modes, which needs root; as a user, files are created as that user.
    '-fsdev', `local,id=hostroot,path=/,security_model=${root ? 'passthrough' : 'none'},multidevs=remap`,
    '-device', 'virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot',
    '-monitor', 'none',
  ];
}

export function runMachine(o: MachineOptions): Promise<MachineEnd> {
  const started = performance.now();
  const seconds = () => Math.round((performance.now() - started) / 100) / 10;
  const scratch = mkdtempSync(join(tmpdir(), 'kvm-ts-testbed-'));
  const script = join(scratch, 'command.sh');
  writeFileSync(script, commandScript(o.command, o.cwd, o.env), { mode: 0o600 });
  return new Promise((resolve) => {
    // setpriv --pdeathsig: QEMU gets SIGKILL when we die, however we die (even by SIGKILL).
    const args = qemuArgs(o, script, process.getuid?.() === 0);
    const setpriv = findOnPath('setpriv');
    const qemu = setpriv
      ? spawn(setpriv, ['--pdeathsig', 'KILL', '--', o.emulator.qemu, ...args], { env: o.emulator.env, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(o.emulator.qemu, args, { env: o.emulator.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let status: number | undefined;
    let error: string | undefined;
    let limited = false;
    let stalled = false;
    let pending = '';
    let stderr = '';
    const limit = setTimeout(() => {
      limited = true;
      qemu.kill('SIGKILL');
    }, o.timeLimitS * 1000);
    let heard = { at: performance.now(), size: 0 };
    const watch = setInterval(() => {
      const size = consoleSize(o.consoleLog);
      if (size !== heard.size) heard = { at: performance.now(), size };
      else if (performance.now() - heard.at > o.stallLimitS * 1000) {
        stalled = true;
        qemu.kill('SIGKILL');
      }
    }, Math.min(5000, o.stallLimitS * 250));
    // The machine must not outlive us: a signal that ends us ends QEMU first.
    const stop = () => qemu.kill('SIGKILL');
    const onSignal = (signal: NodeJS.Signals) => {
      stop();
      process.kill(process.pid, signal);
    };
    const SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
    process.once('exit', stop);
    for (const sig of SIGNALS) process.once(sig, onSignal);
    const line = (l: string) => {
      const marker = EXIT_MARKER.exec(l);
      const note = NOTE.exec(l);
      if (marker) {
        status = Number(marker[1]);
        if (marker.index > 0) o.output(`${l.slice(0, marker.index)}\n`);
      }
      else if (note && note[1].startsWith('error: ')) error = note[1].slice('error: '.length);
      else if (note) o.note(note[1]);
      else o.output(`${l}\n`);
    };
    qemu.stdout.setEncoding('utf8');
    qemu.stdout.on('data', (d: string) => {
      heard.at = performance.now();
      pending += d;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        line(pending.slice(0, nl).replace(/\r$/, ''));
        pending = pending.slice(nl + 1);
      }
    });
    qemu.stderr.on('data', (d: Buffer) => (stderr += d.toString()).length > 65536 && (stderr = stderr.slice(-4096)));
    const finish = (end: MachineEnd) => {
      clearTimeout(limit);
      clearInterval(watch);
      process.removeListener('exit', stop);
      for (const sig of SIGNALS) process.removeListener(sig, onSignal);
      rmSync(scratch, { recursive: true, force: true });
      resolve(end);
    };
    qemu.on('error', (e) => finish({ kind: 'error', message: `cannot start ${o.emulator.qemu}: ${e.message}`, seconds: seconds() }));
    qemu.on('close', (code, signal) => {
      if (pending) line(pending);
      if (limited) finish({ kind: 'time-limit', seconds: seconds() });
      else if (stalled) finish({ kind: 'stalled', seconds: seconds() });
      else if (error !== undefined) finish({ kind: 'error', message: error, seconds: seconds() });
      else if (status !== undefined) finish({ kind: 'exited', status, seconds: seconds() });
      else if (code !== 0 && stderr.trim()) finish({ kind: 'error', message: `QEMU: ${stderr.trim().split('\n').at(-1)}`, seconds: seconds() });
      else finish({ kind: 'no-status', qemuStatus: code, signal, panic: kernelPanic(consoleText(o.consoleLog)), seconds: seconds() });
    });
  });
}
