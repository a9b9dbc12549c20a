/**
 * `npm run testbed -- COMMAND…`: boots the emulated machine, runs COMMAND in the checkout inside it
 * with a real /dev/kvm, streams its output and exits with its status.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { FetchError } from '@kvm-ts/abi/debian';
import { emulatorPackages, fetchEmulator } from './emulator.js';
import { fetchKernel } from './kernel.js';
import { initramfs } from './initramfs.js';
import { consoleLogPath } from './logs.js';
import { runMachine, type MachineEnd } from './machine.js';

export const TIME_LIMIT_EXIT = 124;
export const SETUP_EXIT = 125;
export const USAGE = `usage: npm run testbed -- [options] [--] COMMAND [ARG...]
Runs COMMAND in this directory inside an emulated x86 machine (QEMU TCG, -cpu max) whose Linux has a
real /dev/kvm (kvm_amd on emulated SVM), and exits with its status.
  --time-limit SECONDS  kill the machine after this long, exit ${TIME_LIMIT_EXIT} (default $KVM_TS_TESTBED_TIME_LIMIT or 3600)
  --cpus N              vCPUs of the emulated machine (default: the host's, at most 4)
  --memory MIB          its memory (default 6144)
  --time-scale N        KVM_TS_TIME_SCALE inside, for test time limits (default $KVM_TS_TESTBED_TIME_SCALE or 10)
  --stall-limit SECONDS a machine silent on both serial ports this long is frozen: killed (default 300)
  --retries N           when the machine itself dies (its kernel panics, it freezes, it ends without
                        COMMAND's status), boot it again and rerun COMMAND, up to N times within the
                        time limit (default 0; for commands that resume, like run-deferred.js)
  --fetch               only download and build what it needs (QEMU, busybox, the kernel), then exit
exit status: COMMAND's; ${TIME_LIMIT_EXIT} at the time limit; ${SETUP_EXIT} when the machine cannot be had or did not report one; 2 usage`;

class UsageError extends Error {}

export interface TestbedArgs {
  command: string[];
  timeLimitS: number;
  cpus: number;
  memoryMiB: number;
  timeScale: number;
  stallLimitS: number;
  retries: number;
  fetchOnly: boolean;
}

function whole(flag: string, raw: string | undefined, min: number, max: number): number {
  const n = Number(raw);
  if (raw === undefined || !/^\d+$/.test(raw) || n < min || n > max) throw new UsageError(`${flag} wants a whole number from ${min} to ${max}, got ${raw ?? 'nothing'}`);
  return n;
}

const positive = (flag: string, raw: string | undefined, max: number) => whole(flag, raw, 1, max);

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = process.env, hostCpus = 2): TestbedArgs {
  const a: TestbedArgs = {
    command: [],
    timeLimitS: positive('KVM_TS_TESTBED_TIME_LIMIT', env.KVM_TS_TESTBED_TIME_LIMIT ?? '3600', 86400),
    cpus: Math.min(4, Math.max(1, hostCpus)),
    memoryMiB: 6144,
    timeScale: positive('KVM_TS_TESTBED_TIME_SCALE', env.KVM_TS_TESTBED_TIME_SCALE ?? '10', 1000),
    stallLimitS: 300,
    retries: 0,
    fetchOnly: false,
  };
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-')) break;
    if (arg === '--time-limit') a.timeLimitS = positive(arg, argv[++i], 86400);
    else if (arg === '--cpus') a.cpus = positive(arg, argv[++i], 64);
    else if (arg === '--memory') a.memoryMiB = positive(arg, argv[++i], 1 << 20);
    else if (arg === '--time-scale') a.timeScale = positive(arg, argv[++i], 1000);
    else if (arg === '--stall-limit') a.stallLimitS = whole(arg, argv[++i], 10, 86400);
    else if (arg === '--retries') a.retries = whole(arg, argv[++i], 0, 10);
    else if (arg === '--fetch') a.fetchOnly = true;
    else if (arg === '--help' || arg === '-h') throw new UsageError('');
    else throw new UsageError(`unknown option ${arg}`);
  }
  a.command = argv.slice(i);
  if (!a.fetchOnly && a.command.length === 0) throw new UsageError('no command to run');
  return a;
}

/** The environment the command sees inside: the caller's, with what must differ in the machine. */
export function innerEnv(env: NodeJS.ProcessEnv, timeScale: number, uid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || /^(TMPDIR|XDG_RUNTIME_DIR|KVM_TS_TESTBED_DEFER|KVM_TS_TEST_LEDGER|KVM_TS_HOST_KVM|KVM_TS_TIME_SCALE)$/.test(k)) continue;
    out[k] = v;
  }
  // The caches are the host's (they are on the shared root); sockets need the tmpfs /run.
  out.XDG_CACHE_HOME = env.XDG_CACHE_HOME ? resolve(env.XDG_CACHE_HOME) : join(env.HOME ?? homedir(), '.cache');
  out.TMPDIR = '/run/kvm-ts-testbed/tmp';
  out.XDG_RUNTIME_DIR = `/run/user/${uid}`;
  out.KVM_TS_TESTBED = '1';
  out.KVM_TS_TIME_SCALE = String(timeScale);
  return out;
}

const say = (line: string) => process.stderr.write(`testbed: ${line}\n`);

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let args: TestbedArgs;
  try {
    const { availableParallelism } = await import('node:os');
    args = parseArgs(argv, env, availableParallelism());
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    if (e.message) process.stderr.write(`testbed: ${e.message}\n`);
    process.stderr.write(`${USAGE}\n`);
    return e.message ? 2 : 0;
  }
  let emulator, kernel, initrd;
  try {
    emulator = await fetchEmulator(say);
    kernel = await fetchKernel(say);
    initrd = initramfs(emulator, kernel);
  } catch (e) {
    if (!(e instanceof FetchError)) throw e;
    const how = e.kind === 'tool-missing' ? '' : e.kind === 'not-found'
      ? " (it comes from Debian's archive as this machine's apt is configured, or from KVM_TS_DEBIAN_MIRROR)"
      : '';
    say(`cannot build the emulated machine (QEMU, busybox, Debian's kernel): ${e.message}${how}`);
    return SETUP_EXIT;
  }
  if (args.fetchOnly) {
    say(`ready: ${emulatorPackages(emulator).join(', ')}, ${kernel.release}`);
    return 0;
  }
  const cwd = resolve(env.INIT_CWD ?? process.cwd());
  const what = args.command.join(' ');
  const started = performance.now();
  for (let attempt = 0; ; attempt++) {
    const consoleLog = consoleLogPath();
    const timeLimitS = Math.round(args.timeLimitS - (performance.now() - started) / 1000);
    const end = await runMachine({
      emulator,
      kernel,
      initramfs: initrd,
      command: args.command,
      cwd,
      env: innerEnv(env, args.timeScale, process.getuid?.() ?? 0),
      cpus: args.cpus,
      memoryMiB: args.memoryMiB,
      timeLimitS,
      stallLimitS: args.stallLimitS,
      consoleLog,
      output: (chunk) => process.stdout.write(chunk),
      note: (line) => say(line),
    });
    const death = machineDeath(end, args.stallLimitS);
    if (death === undefined) return reportEnd(end, what, args.timeLimitS, consoleLog);
    // A new boot costs about a minute before COMMAND does anything.
    const left = args.timeLimitS - (performance.now() - started) / 1000;
    if (attempt < args.retries && left > 120) {
      say(`${death} after ${end.seconds} s (console: ${consoleLog}); booting it again to rerun ${what} (retry ${attempt + 1} of ${args.retries})`);
      continue;
    }
    say(`${death} after ${end.seconds} s, without reporting ${what}'s exit status; its console is in ${consoleLog}`);
    return SETUP_EXIT;
  }
}

/** Why the machine itself, not COMMAND, ended the run; undefined when COMMAND's status came back or the run was cut short on purpose. */
export function machineDeath(end: MachineEnd, stallLimitS: number): string | undefined {
  if (end.kind === 'stalled') return `the machine froze (nothing on its serial ports for ${stallLimitS} s)`;
  if (end.kind !== 'no-status') return undefined;
  return end.panic !== undefined ? `the machine's kernel panicked (${end.panic})` : `the machine ended (QEMU ${end.signal ?? `exit ${end.qemuStatus}`})`;
}

function reportEnd(end: MachineEnd, what: string, timeLimitS: number, consoleLog: string): number {
  switch (end.kind) {
    case 'exited':
      say(`${what}: exit ${end.status} after ${end.seconds} s`);
      return end.status;
    case 'time-limit':
      say(`${what}: killed at the ${timeLimitS} s time limit; the machine's console is in ${consoleLog}`);
      return TIME_LIMIT_EXIT;
    default:
      say(`${end.kind === 'error' ? end.message : end.kind}; the machine's console is in ${consoleLog}`);
      return SETUP_EXIT;
  }
}
