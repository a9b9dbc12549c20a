/**
 * The benchmark scripts behind docs/benchmarks.md, run at a tiny size so they cannot rot unnoticed
 * (bench-virtio stopped ending its guest runs once the built-in guest exited through the debug-exit
 * port). Only that each still runs to its JSON result is checked here: the numbers are the scripts'
 * business, measured on a quiet machine, never asserted in a test.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { kvmTests, scaled } from './helpers/kvm.js';

const PACKAGE = fileURLToPath(new URL('..', import.meta.url));

function runScript(script: string, args: string[]): { code: number | null; last: unknown; output: string } {
  const r = spawnSync(process.execPath, ['--import=tsx', '--conditions=kvm-ts-source', `scripts/${script}`, ...args], {
    cwd: PACKAGE,
    encoding: 'utf8',
    timeout: scaled(90_000),
    killSignal: 'SIGKILL',
  });
  const output = `${r.stdout}${r.stderr}`;
  // Each script ends with one JSON document (pretty-printed or on one line).
  const start = r.stdout.lastIndexOf('\n{') + 1;
  let last: unknown;
  try {
    last = JSON.parse(r.stdout.slice(start));
  } catch {
    last = undefined;
  }
  return { code: r.status, last, output: output.slice(-2000) };
}

const positive = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x > 0;

const bench = kvmTests('benchmark scripts', { serial: false });
bench('bench-virtio.ts 8 MiB, 20 reads, 1 round: guest and host sides both measured, both notification paths counted', (t) => {
  const r = runScript('bench-virtio.ts', ['8', '20', '1']);
  t.is(r.code, 0, r.output);
  type Side = { guestMBps: number; hostMBps: number };
  const j = r.last as { seqWrite: Side; seqRead: Side; randRead4k: { guestIops: number; hostPreadIops: number }; countsPerMiB: Array<{ paths: string }> };
  // The figures, not their rounded ratios: on a loaded machine 46 guest IOPS over 152k host ones rounds to 0.
  const measured = [j?.seqWrite?.guestMBps, j?.seqWrite?.hostMBps, j?.seqRead?.guestMBps, j?.seqRead?.hostMBps, j?.randRead4k?.guestIops, j?.randRead4k?.hostPreadIops];
  t.true(measured.every(positive), r.output);
  t.deepEqual(j.countsPerMiB.map((c) => c.paths), ['ioeventfd+irqfd', 'mmio+irq-line']);
});

bench('bench-pio.ts 1000 exits, 1 round: C loop and kvm-ts both timed', (t) => {
  const r = runScript('bench-pio.ts', ['1000', '1']);
  t.is(r.code, 0, r.output);
  const j = r.last as { wall: { medianRatio: number }; threadCpu: { medianRatio: number } };
  t.true(positive(j?.wall?.medianRatio) && positive(j.threadCpu.medianRatio), r.output);
});

bench('bench-startup.ts 1 run: the first KVM_RUN and the whole run timed', (t) => {
  const r = runScript('bench-startup.ts', ['1']);
  t.is(r.code, 0, r.output);
  const j = r.last as { medianFirstKvmRunMs: number; medianWholeRunMs: number };
  t.true(positive(j?.medianFirstKvmRunMs) && positive(j.medianWholeRunMs), r.output);
});
