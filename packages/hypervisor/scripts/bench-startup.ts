/**
 * Process start to first KVM_RUN: `kvm-cli run --json` (the built CLI) reports when its first vCPU
 * thread entered KVM_RUN, counted from Node's time origin (set as the process starts). For context,
 * the same spawn of a bare `node -e 0` (Node's own start-up, which kvm-ts cannot shorten).
 *
 * usage: npx tsx scripts/bench-startup.ts [RUNS]   (build first: npm run build)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const RUNS = Number(process.argv[2] ?? 7);
const BIN = fileURLToPath(new URL('../../cli/bin/kvm-cli.js', import.meta.url));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const first: number[] = [];
const wall: number[] = [];
const bare: number[] = [];
for (let i = 0; i < RUNS; i++) {
  let t0 = performance.now();
  execFileSync(process.execPath, ['-e', '0']);
  bare.push(performance.now() - t0);
  t0 = performance.now();
  const r = spawnSync(process.execPath, [BIN, 'run', '--json', '-p', 'memtest=0'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  wall.push(performance.now() - t0);
  if (r.status !== 0) throw new Error(`kvm-cli run failed (${r.status}): ${r.stderr.trim()}`);
  first.push(JSON.parse(r.stdout).firstKvmRunMs);
  console.log(`run ${i + 1}: first KVM_RUN at ${first[i].toFixed(1)} ms; whole run ${wall[i].toFixed(1)} ms; bare node ${bare[i].toFixed(1)} ms`);
}
console.log(
  JSON.stringify({
    runs: RUNS,
    medianFirstKvmRunMs: +median(first).toFixed(1),
    minFirstKvmRunMs: +Math.min(...first).toFixed(1),
    medianWholeRunMs: +median(wall).toFixed(1),
    medianBareNodeMs: +median(bare).toFixed(1),
    loadAverage: (await import('node:os')).loadavg().map((x) => +x.toFixed(2)),
  }),
);
