/**
 * Named VMs and their control sockets on /dev/kvm, through the real CLI and through raw socket
 * clients: list, pause (every vCPU verifiably out of KVM_RUN), resume, stat, debug and stop;
 * bad requests, disconnects, concurrent clients; name clashes, stale sockets, the socket gone on
 * every way out; detach, console and Ctrl-A x. Each test has its own XDG_RUNTIME_DIR.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { call, ControlClient, type MethodName, type Params, type StatResult } from '@kvm-ts/hypervisor/control';
import { kvmTests, scaled } from './helpers/kvm.js';

const BIN = fileURLToPath(new URL('../bin/kvm-cli.js', import.meta.url));
const kvm = kvmTests('control socket');
const SPIN = 'spin memtest=0';
/** The client's own 10 s, scaled: in the testbed a VMM answers ~10× slower. */
const REPLY_MS = scaled(10_000);
/** One request on a fresh connection, with the scaled reply limit. */
const query = <M extends MethodName>(path: string, method: M, params: Params<M> = {} as Params<M>) => call(path, method, params, REPLY_MS);

interface Env {
  runtime: string;
  dir: string;
  env: NodeJS.ProcessEnv;
  sock(name: string): string;
  cli(...args: string[]): { status: number | null; stdout: string; stderr: string };
}

/** A fresh XDG_RUNTIME_DIR, and every child started through `track` killed at the end. */
function setup(t: ExecutionContext, children: ChildProcess[] = []): Env {
  const runtime = mkdtempSync(join(tmpdir(), 'kvm-ts-xdg-'));
  const env = { ...process.env, XDG_RUNTIME_DIR: runtime };
  const dir = join(runtime, 'kvm-ts');
  t.teardown(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    // Detached VMs are not our children: stop whatever is still listed.
    spawnSync(process.execPath, [BIN, 'stop', '--all'], { env, timeout: scaled(30_000) });
    rmSync(runtime, { recursive: true, force: true });
  });
  return {
    runtime,
    dir,
    env,
    sock: (name) => join(dir, `${name}.sock`),
    cli: (...args) => {
      const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env, timeout: scaled(60_000), stdio: ['ignore', 'pipe', 'pipe'] });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    },
  };
}

interface Running {
  child: ChildProcess;
  exited: Promise<number | null>;
  out: () => string;
  err: () => string;
}

/** `kvm-cli run ARGS` in the background, resolved once its control socket answers. */
async function startVm(t: ExecutionContext, e: Env, children: ChildProcess[], name: string, args: string[]): Promise<Running> {
  const child = spawn(process.execPath, [BIN, 'run', '--name', name, ...args], { env: e.env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code))); // 'close': its output is all read
  const deadline = Date.now() + scaled(30_000);
  for (;;) {
    if (child.exitCode !== null) t.fail(`the VM exited early (${child.exitCode}): ${err}`);
    try {
      await call(e.sock(name), 'info', {}, 2000);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`VM ${name} did not come up: ${err}`);
      await sleep(20);
    }
  }
  return { child, exited, out: () => out, err: () => err };
}

/** The syscall a thread is blocked in (/proc/PID/task/TID/syscall: its number, or 'running'). */
function syscallOf(pid: number, tid: number): string {
  return readFileSync(`/proc/${pid}/task/${tid}/syscall`, 'utf8').trim().split(' ')[0];
}

/** CPU time the thread has had, in ns (/proc/PID/task/TID/schedstat). */
function cpuNs(pid: number, tid: number): bigint {
  return BigInt(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
}

const SYS_IOCTL = '16'; // x86_64: what a thread inside KVM_RUN is blocked in

function oneLine(t: ExecutionContext, r: { status: number | null; stdout: string; stderr: string }, status: number, pattern: RegExp) {
  t.is(r.status, status, r.stderr);
  t.is(r.stdout, '');
  t.is(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  t.regex(r.stderr.trimEnd(), pattern);
  t.notRegex(r.stderr, /\n\s+at /);
}

kvm('a spinning guest is listed, paused out of KVM_RUN, resumed, stat\'ed, debugged and stopped through the CLI', async (t) => {
  const children: ChildProcess[] = [];
  const e = setup(t, children);
  const vm = await startVm(t, e, children, 'spin', ['-c', '2', '-p', SPIN, '--json']);
  const pid = vm.child.pid!;
  t.is(lstatSync(e.dir).mode & 0o777, 0o700);
  t.is(lstatSync(e.sock('spin')).mode & 0o777, 0o600);

  const listed = JSON.parse(e.cli('list', '--json').stdout);
  t.is(listed.length, 1);
  t.like(listed[0], { name: 'spin', pid, cpus: 2, memoryBytes: 256 * 2 ** 20, socket: e.sock('spin'), console: { attachable: true } });
  t.true(['starting', 'running'].includes(listed[0].state));
  t.regex(e.cli('list').stdout, new RegExp(`^NAME +PID +STATE +CPUS +MEMORY +UPTIME +SOCKET\\nspin +${pid} +(running|starting) +2 +256M +[\\d.]+s +${e.sock('spin')}\\n$`));

  const stat = (): StatResult => JSON.parse(e.cli('stat', 'spin', '--json').stdout);
  let s = stat();
  while (s.vcpus.some((v) => v.tid === 0 || v.state === 'starting')) s = (await sleep(20), stat());
  t.deepEqual(s.vcpus.map((v) => v.state), ['running', 'running']);
  t.true(s.exits.byReason.KVM_EXIT_IO > 0, 'the guest printed through the UART');
  t.true(s.devices.find((d) => d.name === 'serial')!.counters.txBytes > 0);
  t.is(s.memory.guestBytes, 256 * 2 ** 20);
  const tids = s.vcpus.map((v) => v.tid);

  t.is(e.cli('pause', 'spin').stdout, 'spin: paused\n');
  t.is(e.cli('pause', 'spin').stdout, 'spin: already paused\n');
  s = stat();
  t.is(s.state, 'paused');
  t.deepEqual(s.vcpus.map((v) => v.state), ['paused', 'paused']);
  // Out of KVM_RUN: each vCPU thread is parked in a futex, gets no CPU, and its registers do not move.
  for (const tid of tids) t.not(syscallOf(pid, tid), SYS_IOCTL, `vCPU thread ${tid} is in an ioctl while paused`);
  for (const tid of tids) t.not(syscallOf(pid, tid), 'running');
  const cpuBefore = tids.map((tid) => cpuNs(pid, tid));
  const dump1 = JSON.parse(e.cli('debug', 'spin', '--json').stdout);
  await sleep(300);
  const dump2 = JSON.parse(e.cli('debug', 'spin', '--json').stdout);
  t.deepEqual(tids.map((tid) => cpuNs(pid, tid)), cpuBefore, 'a paused vCPU thread ran');
  t.deepEqual(dump2.vcpus.map((v: { regs: unknown }) => v.regs), dump1.vcpus.map((v: { regs: unknown }) => v.regs));
  t.deepEqual(stat().exits, s.exits);
  t.is(stat().state, 'paused', 'debug leaves a paused VM paused');

  const text = e.cli('debug', 'spin');
  t.is(text.status, 0, text.stderr);
  for (const i of [0, 1]) t.true(text.stdout.includes(` # vCPU #${i}'s dump:`));
  t.regex(text.stdout, / Registers:\n ----------\n rip: [0-9a-f]{16} {3}rsp: [0-9a-f]{16} flags: [0-9a-f]{16}\n/);
  t.regex(text.stdout, / register {2}selector {2}base {14}limit {5}type {2}p dpl db s l g avl\n cs {8}[0-9a-f]{4} /);
  t.regex(text.stdout, / Code:\n -----\n( [0-9a-f]{2}| <[0-9a-f]{2}>)+\n/, 'the code around RIP of vCPU 0');
  t.true(text.stdout.includes(` <${dump1.vcpus[0].dump.match(/<([0-9a-f]{2})>/)[1]}>`));
  t.regex(text.stdout, / Stack:\n ------\n rsp: \[<[0-9a-f]{16}>\] \n 0x[0-9a-f]{8,}: /);

  t.is(e.cli('resume', 'spin').stdout, 'spin: resumed\n');
  t.is(e.cli('resume', 'spin').stdout, 'spin: not paused\n');
  t.is(stat().state, 'running');
  // vCPU 0 spins at CPL3: once resumed its thread is back in KVM_RUN and gets CPU again.
  const deadline = Date.now() + scaled(20_000);
  while (cpuNs(pid, tids[0]) === cpuBefore[0] && Date.now() < deadline) await sleep(20);
  t.true(cpuNs(pid, tids[0]) > cpuBefore[0], 'vCPU 0 did not run after resume');
  e.cli('debug', 'spin');
  t.is(stat().state, 'running', 'debug resumes a VM it paused');

  t.is(e.cli('stop', 'spin').stdout, 'spin: stopped\n');
  t.is(await vm.exited, 0, vm.err());
  t.like(JSON.parse(vm.out()), { exitReason: 'stopped', status: 0, kind: 'stopped', name: 'spin', cpus: 2 });
  t.false(existsSync(e.sock('spin')), 'the socket is gone');
  t.is(e.cli('list').stdout, `no running VMs (${e.dir})\n`);
  oneLine(t, e.cli('stat', 'spin'), 1, /^kvm-cli: no VM named 'spin' \(no .*spin\.sock\)$/);
  oneLine(t, e.cli('pause', '../x'), 2, /is not a VM name/);
  oneLine(t, e.cli('pause'), 2, /name one VM or give --all/);
});

kvm('raw clients: bad requests, over-long lines, vanishing and concurrent clients leave the VM running; stop over the socket', async (t) => {
  const children: ChildProcess[] = [];
  const e = setup(t, children);
  const vm = await startVm(t, e, children, 'raw', ['-c', '2', '-p', SPIN, '--json']);
  const path = e.sock('raw');
  const c = net.connect(path);
  let buf = '';
  c.on('data', (d: Buffer) => (buf += d.toString()));
  const reply = async () => {
    while (!buf.includes('\n')) await sleep(5);
    const nl = buf.indexOf('\n');
    const line = buf.slice(0, nl);
    buf = buf.slice(nl + 1);
    return JSON.parse(line);
  };
  const ask = async (text: string) => (c.write(`${text}\n`), reply());
  t.is((await ask('{"v":1,"id":1,"method":"info"')).error.code, 'parse-error');
  t.is((await ask('{"v":1,"id":2,"method":"reset","params":{}}')).error.code, 'unknown-method');
  t.like(await ask('{"v":1,"id":3,"method":"debug","params":{"vcpu":-1}}'), { id: 3, error: { code: 'invalid-params' } });
  t.like(await ask('{"v":1,"id":4,"method":"debug","params":{"vcpu":2}}'), { id: 4, error: { code: 'invalid-params' } });
  t.like(await ask('{"v":1,"id":5,"method":"debug","params":{"vcpu":1}}'), { id: 5, result: { vcpus: [{ index: 1 }] } });
  t.like(await ask('{"v":1,"id":6,"method":"pause"}'), { id: 6, result: { state: 'paused', changed: true } });
  t.like(await ask('{"v":1,"id":7,"method":"resume","params":{}}'), { id: 7, result: { state: 'running', changed: true } });
  c.write(`{"v":1,"id":8,"method":"info","params":{"x":"${'x'.repeat(70_000)}"}}\n`);
  t.like(await reply(), { id: null, error: { code: 'line-too-long' } });
  await new Promise((r) => (c.closed ? r(undefined) : c.once('close', r)));

  // Clients that vanish mid-request: half a line, and a debug (which pauses the VM) nobody waits for.
  for (let i = 0; i < 6; i++) {
    const s = net.connect(path);
    s.on('error', () => {});
    await new Promise((r) => s.once('connect', r));
    s.write(i % 2 ? '{"v":1,"id":1,"meth' : '{"v":1,"id":1,"method":"debug"}\n');
    s.destroy();
  }
  // Several clients at once, each with a mix of requests.
  const clients = await Promise.all(Array.from({ length: 6 }, () => ControlClient.connect(path, REPLY_MS)));
  const all = await Promise.all(
    clients.flatMap((cl, i) => [cl.request('stat', {}, REPLY_MS), cl.request('debug', { vcpu: i % 2 }, REPLY_MS), cl.request(i % 3 ? 'pause' : 'resume', {}, REPLY_MS), cl.request('info', {}, REPLY_MS)]),
  );
  t.is(all.length, 24);
  for (const cl of clients) cl.close();
  await query(path, 'resume');
  const info = await query(path, 'info');
  t.is(info.state, 'running');
  t.is(info.pid, vm.child.pid!);

  const stopped = await call(path, 'stop', {}, scaled(30_000));
  t.deepEqual(stopped, { state: 'stopped', exitReason: 'stopped', status: 0 });
  t.is(await vm.exited, 0, vm.err());
  t.like(JSON.parse(vm.out()), { exitReason: 'stopped', status: 0 });
  t.false(existsSync(path));
});

kvm('a name clash is one line and exit 2; a killed VMM\'s stale socket is cleaned; the socket goes on every way out', async (t) => {
  const children: ChildProcess[] = [];
  const e = setup(t, children);
  const first = await startVm(t, e, children, 'taken', ['-p', SPIN]);
  oneLine(t, e.cli('run', '--name', 'taken'), 2, /^kvm-cli: --name: a VM named 'taken' is already running \(.*taken\.sock\)$/);
  t.is((await query(e.sock('taken'), 'info')).pid, first.child.pid!, 'the running VM is untouched');

  // SIGKILL leaves the socket behind, with nobody listening.
  first.child.kill('SIGKILL');
  await first.exited;
  t.true(lstatSync(e.sock('taken')).isSocket());
  const again = e.cli('run', '--name', 'taken');
  t.is(again.status, 0, again.stderr);
  t.regex(again.stdout, /self-test: PASS/);
  t.false(existsSync(e.sock('taken')), 'gone after a normal exit');

  const term = await startVm(t, e, children, 'term', ['-p', SPIN]);
  term.child.kill('SIGTERM');
  t.is(await term.exited, 143);
  t.false(existsSync(e.sock('term')), 'gone after SIGTERM');
  const timeout = e.cli('run', '--name', 'late', '-p', SPIN, '--timeout', '1');
  t.is(timeout.status, 124);
  t.false(existsSync(e.sock('late')), 'gone after --timeout');
  const fatal = e.cli('run', '--name', 'bad', '-p', 'exit=300');
  t.is(fatal.status, 300 & 0xff);
  t.false(existsSync(e.sock('bad')));
  t.deepEqual(readdir(e.dir), []);
});

function readdir(dir: string): string[] {
  return spawnSync('ls', ['-A', dir], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
}

const hasScript = spawnSync('script', ['--version']).status === 0;

kvm('--detach returns once the socket answers; console attaches and Ctrl-A x detaches, leaving the VM running; stop ends it', async (t) => {
  if (!hasScript) return t.fail('util-linux script(1) is needed to give the console a terminal');
  const e = setup(t);
  const r = e.cli('run', '--detach', '--name', 'bg', '-p', SPIN);
  if (r.status !== 0) return t.fail(`run --detach: status ${r.status}: ${r.stderr}`);
  const log = join(e.dir, 'bg.log');
  const listed = e.cli('list', '--json');
  const vms = JSON.parse(listed.stdout) as { pid?: number }[];
  if (vms.length !== 1 || vms[0].pid === undefined) return t.fail(`list --json after --detach: ${listed.stdout} ${listed.stderr}`);
  t.is(r.stdout, `started VM 'bg' (pid ${vms[0].pid}); console log: ${log}; control socket: ${e.sock('bg')}\n`);
  t.is(lstatSync(log).mode & 0o777, 0o600);
  const info = await query(e.sock('bg'), 'info');
  t.like(info, { name: 'bg', console: { attachable: true, log } });
  while (!readFileSync(log, 'utf8').includes('spin: looping')) await sleep(20);
  oneLine(t, e.cli('run', '--detach', '--name', 'bg'), 2, /a VM named 'bg' is already running/);

  // script(1) gives the console client a terminal, so it is raw and Ctrl-A x is the escape.
  const child = spawn('script', ['-qfec', `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} console bg`, '/dev/null'], {
    env: e.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  let seen = '';
  child.stdout.on('data', (d: Buffer) => (seen += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code))); // 'close': its output is all read
  const deadline = Date.now() + scaled(20_000);
  while (!seen.includes('spin: looping') && Date.now() < deadline) await sleep(20);
  t.true(seen.includes('Ctrl-A x detaches'), seen);
  t.true(seen.includes('spin: looping at CPL3'), 'the backlog came first');
  child.stdin.write('hello');
  const serial = async () => (await query(e.sock('bg'), 'stat')).devices.find((d) => d.name === 'serial')!.counters;
  while ((await serial()).rxBytes < 5 && Date.now() < deadline) await sleep(20);
  t.is((await serial()).rxBytes, 5, 'typed bytes reached the UART');
  child.stdin.write('\x01x');
  t.is(await exited, 0, seen);
  t.regex(seen, /detached from bg \(it keeps running\)/);
  t.is((await query(e.sock('bg'), 'info')).state, 'running');

  const detachedPid = info.pid;
  t.is(e.cli('stop', 'bg').stdout, 'bg: stopped\n');
  while (alive(detachedPid)) await sleep(20);
  t.false(existsSync(e.sock('bg')));
  t.regex(readFileSync(log, 'utf8'), /"exitReason":"stopped"|self-test: PASS/);
});

kvm('--detach of a VM that cannot start gives its one-line error and status', (t) => {
  const e = setup(t);
  oneLine(t, e.cli('run', '--detach', '-c', '100000'), 2, /^kvm-cli: --cpus: cpus must be between 1 and \d+/);
  oneLine(t, e.cli('run', '--detach', '-k', '/nonexistent'), 2, /^kvm-cli: --kernel: \/nonexistent: no such file$/);
  t.deepEqual(readdir(e.dir), [], 'no log or socket is left');
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
