import test from 'ava';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { builtinGuestPath } from '../src/guest-image.js';
import { Machine } from '../src/machine.js';
import { STATE_PAUSED } from '../src/vcpu/channel.js';
import { kvmTests, scaled } from './helpers/kvm.js';

const t = kvmTests('KVM tests');

function machine(cpus: number, cmdline: string, out: string[]) {
  return Machine.create({
    kernel: readFileSync(builtinGuestPath()),
    cmdline,
    memBytes: 64 << 20,
    cpus,
    hostDecompress: true,
    debugExit: true,
    console: (b) => out.push(Buffer.from(b).toString('latin1')),
    log: () => {},
    timeoutMs: scaled(60_000),
  });
}

t('the built-in guest sees 4 CPUs in the MP table and exits 0 with every vCPU thread stopped', async (tt) => {
  const out: string[] = [];
  const summary = await machine(4, 'console=ttyS0 memtest=1', out).runToEnd();
  const text = out.join('');
  tt.is(summary.status, 0, text);
  tt.is(summary.kind, 'guest-exit');
  tt.regex(text, /cpus: 4 \(MP table/);
  tt.regex(text, /self-test: PASS/);
});

t('a guest spinning at CPL3 on 3 vCPUs pauses, resumes and stops promptly', async (tt) => {
  const out: string[] = [];
  const m = machine(3, 'console=ttyS0 memtest=0 spin', out);
  const run = m.start();
  try {
    while (!out.join('').includes('self-test: PASS')) await sleep(20);
    const t0 = performance.now();
    await run.pause();
    tt.true(performance.now() - t0 < scaled(1000), 'pause took over a second (scaled)');
    tt.deepEqual(run.states(), [STATE_PAUSED, STATE_PAUSED, STATE_PAUSED]);
    await run.resume();
    const t1 = performance.now();
    const summary = await run.stop('test done');
    tt.true(performance.now() - t1 < scaled(1000), 'stop took over a second (scaled)');
    tt.is(summary.kind, 'stopped');
  } finally {
    m.close();
  }
});
