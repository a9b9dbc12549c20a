import test from 'ava';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { IoBus } from '../src/devices/bus.js';
import { VmRun } from '../src/runner.js';
import { STATE_PAUSED, STATE_RUNNING } from '../src/vcpu/channel.js';
import { Vm } from '../src/vm.js';
import { loadTinyGuest } from './helpers/tiny-guest.js';
import { kvmTests, scaled } from './helpers/kvm.js';

const t = kvmTests('KVM tests');

const COUNTER = 0x20000;
/** inc qword [COUNTER]; jmp back: spins forever without an exit. */
const SPIN = [0x48, 0xff, 0x04, 0x25, ...[COUNTER & 0xff, (COUNTER >> 8) & 0xff, (COUNTER >> 16) & 0xff, 0], 0xeb, 0xf6];

/** `p`, or a rejection after `ms` (scaled: inside the testbed everything is slower). */
async function within<T>(unscaledMs: number, p: Promise<T>, what: string): Promise<T> {
  const ms = scaled(unscaledMs);
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, limit]);
  } finally {
    clearTimeout(timer);
  }
}

t('pause parks every vCPU of a spinning guest, resume continues it, stop ends it promptly', async (tt) => {
  const vm = Vm.create({ memBytes: 8 << 20, cpus: 2 });
  try {
    vm.setBootRegisters(loadTinyGuest(vm.memory, SPIN));
    const run = VmRun.start(vm, { bus: new IoBus() });
    while (vm.memory.readU64(COUNTER) === 0n) await sleep(10);

    await within(1000, run.pause(), 'pause');
    tt.deepEqual(run.states(), [STATE_PAUSED, STATE_PAUSED]);
    const frozen = vm.memory.readU64(COUNTER);
    await sleep(100);
    tt.is(vm.memory.readU64(COUNTER), frozen, 'the guest made progress while paused');

    await within(1000, run.resume(), 'resume');
    tt.deepEqual(run.states(), [STATE_RUNNING, STATE_RUNNING]);
    const start = performance.now();
    while (vm.memory.readU64(COUNTER) === frozen && performance.now() - start < 2000) await sleep(10);
    tt.true(vm.memory.readU64(COUNTER) > frozen, 'the guest did not continue after resume');

    const summary = await within(1000, run.stop('test stop'), 'stop');
    tt.is(summary.kind, 'stopped');
    tt.is(summary.status, 0);
    tt.is(summary.message, 'test stop');
  } finally {
    vm.close();
  }
});

t('the timeout ends a guest that never exits, with status 124', async (tt) => {
  const vm = Vm.create({ memBytes: 8 << 20, cpus: 1 });
  try {
    vm.setBootRegisters(loadTinyGuest(vm.memory, SPIN));
    const summary = await within(3000, VmRun.start(vm, { bus: new IoBus(), timeoutMs: 300 }).done, 'timeout');
    tt.is(summary.kind, 'timeout');
    tt.is(summary.status, 124);
    tt.true(summary.wallMs >= 290);
  } finally {
    vm.close();
  }
});

t('a resume or pause racing a stop cannot undo it; a resume racing a pause settles both', async (tt) => {
  const vm = Vm.create({ memBytes: 8 << 20, cpus: 2 });
  try {
    vm.setBootRegisters(loadTinyGuest(vm.memory, SPIN));
    const run = VmRun.start(vm, { bus: new IoBus() });
    while (vm.memory.readU64(COUNTER) === 0n) await sleep(10);

    // Issued without waiting: the pause is overtaken by the resume and must not re-kick forever.
    const paused = run.pause();
    await within(1000, Promise.all([paused, run.resume()]), 'pause overtaken by resume');
    const frozen = vm.memory.readU64(COUNTER);
    const start = performance.now();
    while (vm.memory.readU64(COUNTER) === frozen && performance.now() - start < 2000) await sleep(10);
    tt.true(vm.memory.readU64(COUNTER) > frozen, 'the guest is not running after pause + resume');

    await within(1000, run.pause(), 'pause');
    const stopped = run.stop('test stop');
    await within(1000, Promise.all([run.resume(), run.pause()]), 'resume and pause during a stop');
    const summary = await within(1000, stopped, 'stop');
    tt.is(summary.kind, 'stopped');
    tt.is(summary.message, 'test stop');
  } finally {
    vm.close();
  }
});

t('process.exit() while a guest spins in KVM_RUN ends the process (its vCPU threads are stopped first)', (tt) => {
  // Node joins worker threads on exit, and a join on a thread inside KVM_RUN never returns.
  const src = (rel: string) => JSON.stringify(new URL(`../src/${rel}`, import.meta.url).href);
  const script = [
    `import { readFileSync } from 'node:fs';`,
    `import { builtinGuestPath } from ${src('guest-image.ts')};`,
    `import { Machine } from ${src('machine.ts')};`,
    `const machine = Machine.create({ kernel: readFileSync(builtinGuestPath()), cmdline: 'memtest=0 kvmts.spin=1', memBytes: 64 << 20, cpus: 2, hostDecompress: true, console: () => {}, log: () => {} });`,
    `void machine.runToEnd();`,
    `setTimeout(() => process.exit(3), 1000);`,
  ].join('\n');
  const r = spawnSync(process.execPath, ['--import=tsx', '--conditions=kvm-ts-source', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: scaled(30_000),
    killSignal: 'SIGKILL',
  });
  tt.is(r.signal, null, 'the process hung in exit and was killed');
  tt.is(r.status, 3, r.stderr);
});
