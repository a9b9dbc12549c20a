/**
 * Times generating every pinned spec (preprocess → parse → layout → ioctls/constants → JSON).
 * Goal: ≤ 3 s for all of them. Results go in docs/bench-generate.md.
 *
 *   npx tsx scripts/bench-generate.ts [--runs N]
 *
 * Each run is a fresh child process, so the header token cache starts cold as in
 * `npm run generate`; the time excludes Node/tsx start-up. "warm" repeats inside one process.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { serializeSpec, generateSpec } from '../src/generator/index.js';
import { includeRoot } from '../src/headers/index.js';
import { missingCaches, targets } from './generate-all.js';

function generateAllOnce(): { totalMs: number; perTarget: Array<[string, number]> } {
  const perTarget: Array<[string, number]> = [];
  const t0 = performance.now();
  for (const t of targets()) {
    const s = performance.now();
    serializeSpec(generateSpec({ includeDirs: [includeRoot(t.id, t.arch)], arch: t.arch, kernel: t.kernel }));
    perTarget.push([`${t.id}/${t.arch}`, performance.now() - s]);
  }
  return { totalMs: performance.now() - t0, perTarget };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function main(argv: string[]): number {
  if (argv[0] === '--child') {
    const cold = generateAllOnce();
    const warm = [generateAllOnce().totalMs, generateAllOnce().totalMs];
    process.stdout.write(JSON.stringify({ cold, warm }) + '\n');
    return 0;
  }
  const runsArg = argv.indexOf('--runs');
  const runs = runsArg >= 0 ? Number(argv[runsArg + 1]) : 5;
  if (!Number.isInteger(runs) || runs < 1) {
    process.stderr.write('bench-generate: --runs needs a positive integer\n');
    return 2;
  }
  const missing = missingCaches();
  if (missing.length > 0) {
    process.stderr.write(`bench-generate: header cache missing for ${missing.map((m) => `${m.id}/${m.arch}`).join(', ')}: run kvm-cli abi sync\n`);
    return 1;
  }
  const self = fileURLToPath(import.meta.url);
  const cold: number[] = [];
  const warm: number[] = [];
  const per = new Map<string, number[]>();
  for (let i = 0; i < runs; i++) {
    const r = spawnSync(process.execPath, ['--import=tsx', self, '--child'], { encoding: 'utf8' });
    if (r.status !== 0) {
      process.stderr.write(`bench-generate: run ${i + 1} failed: ${r.stderr.trim().split('\n')[0]}\n`);
      return 1;
    }
    const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { cold: ReturnType<typeof generateAllOnce>; warm: number[] };
    cold.push(res.cold.totalMs);
    warm.push(...res.warm);
    for (const [k, ms] of res.cold.perTarget) per.set(k, [...(per.get(k) ?? []), ms]);
  }
  const fmt = (ms: number) => `${ms.toFixed(0)} ms`;
  process.stdout.write(`generate all ${per.size} pinned specs, ${runs} run(s)\n`);
  process.stdout.write(`cold (fresh process): median ${fmt(median(cold))}  [${cold.map(fmt).join(', ')}]\n`);
  process.stdout.write(`warm (same process):  median ${fmt(median(warm))}\n`);
  for (const [k, v] of per) process.stdout.write(`  ${k.padEnd(14)} median ${fmt(median(v))} (cold)\n`);
  process.stdout.write(`goal ≤ 3000 ms: ${median(cold) <= 3000 ? 'met' : 'NOT met'}\n`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
