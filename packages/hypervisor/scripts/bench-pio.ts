/**
 * PIO exit round trip: kvm-ts against a C loop around KVM_RUN (bench/pio-ref.c), both running the
 * same hand-assembled guest, alternating, in one run. The guest writes a marker port, then N times
 * the bench port, then the marker again; each side times the span between the markers where it
 * handles the exits, so VM and thread start-up are excluded.
 *
 * usage: npx tsx scripts/bench-pio.ts [EXITS] [ROUNDS]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IoBus } from '../src/devices/bus.js';
import { DEBUG_EXIT_PORT } from '../src/devices/legacy/debug-exit.js';
import { nullPorts } from '../src/devices/null-port.js';
import { VmRun } from '../src/runner.js';
import { Vm } from '../src/vm.js';
import { asm, loadTinyGuest } from '../tests/helpers/tiny-guest.js';

const EXITS = Number(process.argv[2] ?? 20_000);
const ROUNDS = Number(process.argv[3] ?? 5);
const MARKER_PORT = 0x510;
const BENCH_PORT = 0x80;

const loop = [...asm.outDxAl, ...asm.decEcx];
const code = [
  ...asm.movEdx(MARKER_PORT), ...asm.outDxAl,
  ...asm.movEcx(EXITS), ...asm.movEdx(BENCH_PORT), ...loop, ...asm.jnz(-(loop.length + 2)),
  ...asm.movEdx(MARKER_PORT), ...asm.outDxAl,
  ...asm.movEdx(DEBUG_EXIT_PORT), ...asm.outDxAl, ...asm.hlt,
];
// Exits between the two marker writes: N bench writes plus the second marker.
const timedExits = EXITS + 1;

function buildReference(): string {
  const dir = join(tmpdir(), 'kvm-ts-bench');
  mkdirSync(dir, { recursive: true });
  const exe = join(dir, 'pio-ref');
  const src = fileURLToPath(new URL('../bench/pio-ref.c', import.meta.url));
  execFileSync('gcc', ['-O2', '-Wall', '-o', exe, src], { stdio: 'inherit' });
  return exe;
}

/** Per exit, in ns: wall time, and CPU time of the thread running the vCPU. */
interface PerExit {
  wall: number;
  cpu: number;
}

function runReference(exe: string): PerExit {
  const hex = Buffer.from(code).toString('hex');
  const out = JSON.parse(execFileSync(exe, [hex, String(MARKER_PORT), String(DEBUG_EXIT_PORT)], { encoding: 'utf8' }));
  return { wall: out.ns / timedExits, cpu: out.cpuNs / timedExits };
}

async function runKvmTs(): Promise<PerExit> {
  const vm = Vm.create({ memBytes: 8 << 20, cpus: 1 });
  try {
    vm.setBootRegisters(loadTinyGuest(vm.memory, code));
    let ns = NaN;
    let cpuNs = NaN;
    const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
    const src = (p: string) => new URL(p + ext, import.meta.url).href;
    const run = VmRun.start(vm, {
      bus: new IoBus(),
      localDevices: [
        nullPorts([[BENCH_PORT, 1]]),
        { spec: { module: src('./bench-marker'), exportName: 'BenchMarker', options: { port: MARKER_PORT } }, ports: [[MARKER_PORT, 1]] },
        { spec: { module: src('../src/devices/legacy/debug-exit'), exportName: 'DebugExit', options: { port: DEBUG_EXIT_PORT } }, ports: [[DEBUG_EXIT_PORT, 1]] },
      ],
      log: (line) => {
        if (line.startsWith('{"benchNs"')) ({ benchNs: ns, cpuNs } = JSON.parse(line));
      },
    });
    const summary = await run.done;
    if (summary.status !== 0 || Number.isNaN(ns)) throw new Error(`kvm-ts bench run failed: ${summary.message}`);
    return { wall: ns / timedExits, cpu: cpuNs / timedExits };
  } finally {
    vm.close();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const exe = buildReference();
const rows: Array<{ c: PerExit; ts: PerExit }> = [];
for (let r = 0; r < ROUNDS; r++) {
  // Alternate which goes first, so drift in host load hits both sides alike.
  let c: PerExit;
  let ts: PerExit;
  if (r % 2 === 0) {
    c = runReference(exe);
    ts = await runKvmTs();
  } else {
    ts = await runKvmTs();
    c = runReference(exe);
  }
  rows.push({ c, ts });
  const us = (x: number) => (x / 1000).toFixed(2);
  console.log(
    `round ${r + 1}: wall C ${us(c.wall)} / kvm-ts ${us(ts.wall)} µs/exit (ratio ${(ts.wall / c.wall).toFixed(3)}); ` +
      `thread CPU C ${us(c.cpu)} / kvm-ts ${us(ts.cpu)} µs/exit (ratio ${(ts.cpu / c.cpu).toFixed(3)})`,
  );
}
const med = (f: (row: { c: PerExit; ts: PerExit }) => number) => +median(rows.map(f)).toFixed(3);
console.log(
  JSON.stringify({
    exitsPerRun: timedExits,
    rounds: ROUNDS,
    wall: { medianCUs: med((x) => x.c.wall / 1000), medianKvmTsUs: med((x) => x.ts.wall / 1000), medianRatio: med((x) => x.ts.wall / x.c.wall) },
    threadCpu: { medianCUs: med((x) => x.c.cpu / 1000), medianKvmTsUs: med((x) => x.ts.cpu / 1000), medianRatio: med((x) => x.ts.cpu / x.c.cpu) },
    loadAverage: loadavg().map((x) => +x.toFixed(2)),
  }),
);
