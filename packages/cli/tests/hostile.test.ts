/**
 * The hostile corpus against the real `kvm-cli run` (docs/limits.md): bombs and amplifying images
 * built at test time by the hypervisor's scripts/hostile-corpus.ts, a stdin flood against a guest
 * that never reads, a guest flooding a stdout nobody reads, an MMIO scan, an early SIGUSR1, and
 * closed or full output streams. Each case states its exit status and is measured: wall time and
 * peak RSS of the VMM process from /usr/bin/time -v (or /proc), under bounds generous enough for a
 * noisy 2-core machine (the budgets themselves are orders of magnitude below them).
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cachedTestKernel } from '@kvm-ts/hypervisor';
import { withoutNoNetworkLine } from './helpers/no-network.js';
import { kvmTests, scaled } from './helpers/kvm.js';

const BIN = fileURLToPath(new URL('../bin/kvm-cli.js', import.meta.url));
const CORPUS = fileURLToPath(new URL('../../hypervisor/scripts/hostile-corpus.ts', import.meta.url));
const TIME = '/usr/bin/time';
const MiB = 2 ** 20;
const WALL_S = 15;
const RSS_MIB = 600;

const timeMissing = existsSync(TIME) ? undefined : `no ${TIME} (apt-get install time)`;
const hostileRuns = kvmTests('hostile corpus');

/** Needs /dev/kvm (markKvmMissing says so once) and /usr/bin/time (a failure under CI=true, a visible skip elsewhere). */
function kvm(title: string, fn: (t: import('ava').ExecutionContext) => void | Promise<void>): void {
  hostileRuns(title, fn, timeMissing);
}

const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-hostile-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

interface Measured {
  status: number;
  wallS: number;
  rssMiB: number;
  stderr: string;
}

/** Runs `script` with sh; `$KVM` in it is kvm-cli under /usr/bin/time -v, whose report gives the VMM's figures. */
function measured(script: string, limitMs = 60_000): Measured {
  const stats = join(dir, `time-${Math.random().toString(36).slice(2)}.txt`);
  const kvm = `${TIME} -v -o ${stats} ${process.execPath} ${BIN}`;
  const r = spawnSync('sh', ['-c', script.replaceAll('$KVM', kvm)], { encoding: 'utf8', timeout: scaled(limitMs), cwd: dir });
  const report = existsSync(stats) ? readFileSync(stats, 'utf8') : '';
  const field = (re: RegExp) => re.exec(report)?.[1];
  const elapsed = field(/Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)/) ?? 'NaN';
  const wallS = elapsed.split(':').reduce((s, p) => s * 60 + Number(p), 0);
  return {
    status: Number(field(/Exit status: (\d+)/) ?? field(/Command terminated by signal (\d+)/)?.replace(/^/, '-') ?? NaN),
    wallS,
    rssMiB: Number(field(/Maximum resident set size \(kbytes\): (\d+)/) ?? NaN) / 1024,
    // time -v writes its report to the file; stderr is the VMM's own.
    stderr: withoutNoNetworkLine(r.stderr ?? ''),
  };
}

function bounded(t: import('ava').ExecutionContext, m: Measured, status: number, wallS = WALL_S) {
  t.log(`exit ${m.status}, ${m.wallS.toFixed(2)} s, peak RSS ${m.rssMiB.toFixed(0)} MiB`);
  t.is(m.status, status, m.stderr);
  t.true(m.wallS < scaled(wallS), `wall time ${m.wallS} s`);
  t.true(m.rssMiB < RSS_MIB, `peak RSS ${m.rssMiB} MiB`);
  t.notRegex(m.stderr, /\n\s+at /, 'no stack trace');
}

/** At most what this host has (kvm-cli refuses more than that as a usage error of its own). */
const hostMem = (want: string) => {
  const gib = Number(/^(\d+)G$/.exec(want)?.[1] ?? 0);
  return gib * 1024 * MiB > totalmem() * 0.8 ? `${Math.floor((totalmem() * 0.8) / MiB)}M` : want;
};

const images = (() => {
  if (timeMissing) return [] as Array<[string, string]>;
  const r = spawnSync(process.execPath, ['--import=tsx', CORPUS, dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`hostile-corpus.ts failed: ${r.stderr}`);
  return r.stdout.trim().split('\n').map((l) => l.split('\t') as [string, string]);
})();

for (const [name, mem] of images) {
  kvm(`hostile image ${name}: one usage-error line, exit 2, within ${WALL_S} s and ${RSS_MIB} MiB`, (t) => {
    const m = measured(`$KVM run -k ${name}.img -m ${hostMem(mem)}`);
    bounded(t, m, 2);
    t.regex(m.stderr, /^kvm-cli: --kernel: [^\n]+\n$/);
  });
}

kvm('a stdin flood against a guest that never reads: stdin is paused, exit 124 at the timeout', (t) => {
  const m = measured('yes | $KVM run -p "spin memtest=0" --timeout 5 >/dev/null');
  bounded(t, m, 124, 5 + 5);
  t.regex(m.stderr, /^kvm-cli: run: timed out after 5 s$/m);
});

for (const mode of ['flood', 'flood=raw']) {
  kvm(`a guest flooding a stdout nobody reads (${mode}) ends within seconds of --timeout, exit 124`, (t) => {
    // fd 3 is a FIFO opened read-write and never read: writes fill it and then wait forever.
    const m = measured(`mkfifo stalled-${mode}; exec 3<>stalled-${mode}; $KVM run -p "${mode} memtest=0" --timeout 4 >&3`);
    bounded(t, m, 124, 4 + 3);
    t.regex(m.stderr, /^kvm-cli: run: timed out after 4 s$/m);
    t.true(m.stderr.split('\n').filter((l) => /bytes dropped/.test(l)).length <= 1, 'dropped output is said at most once');
  });
}

kvm('an MMIO scan of the PCI hole logs at most 32 lines and one summary, and exits 0', (t) => {
  const m = measured('$KVM run -p "mmioscan=20000 memtest=0" >/dev/null');
  bounded(t, m, 0);
  const lines = m.stderr.trimEnd().split('\n');
  t.is(lines.filter((l) => l.includes('unhandled')).length, 32);
  t.deepEqual(lines.filter((l) => l.startsWith('kvm-cli: unclaimed accesses:')), ['kvm-cli: unclaimed accesses: 20000 at 4096+ addresses (32 logged)']);
  t.is(lines.length, 33);
});

kvm('kvmts.hostile: every virtio device misdriven, a few log lines per device, a clean exit within the budgets', (t) => {
  const m = measured('$KVM run -p kvmts.hostile >/dev/null');
  bounded(t, m, 0);
  const lines = m.stderr.trimEnd().split('\n').filter(Boolean);
  // Per device at most one line for a bad register access and one for its first failure.
  for (const dev of ['virtio-blk vda', 'virtio-rng', 'virtio-console hvc0']) t.true(lines.filter((l) => l.startsWith(`kvm-cli: ${dev}:`)).length <= 2, dev);
  t.true(lines.length <= 8, m.stderr);
});

kvm('EPIPE on stdout stops console output and keeps the guest status (exit 9)', (t) => {
  const m = measured('$KVM run -p exit=9 | head -c 20 >/dev/null');
  bounded(t, m, 9);
  t.is(m.stderr, '');
});

kvm('a full stdout (ENOSPC) is one line and exit 1', (t) => {
  const m = measured('$KVM run >/dev/full');
  bounded(t, m, 1);
  t.regex(m.stderr, /^kvm-cli: cannot write to stdout: ENOSPC \(no space left on device\)\n$/);
});

kvm('-c 300 is a usage error before any vCPU starts', (t) => {
  const m = measured('$KVM run -c 300');
  bounded(t, m, 2);
  t.is(m.stderr, "kvm-cli: --cpus: cpus must be between 1 and 254 (the MP table's limit), got 300\n");
});

const kernel = cachedTestKernel();
const noKernel = kernel ? undefined : 'no test kernel (npm run fetch downloads it)';
const slowLoad = (title: string, fn: (t: import('ava').ExecutionContext) => Promise<void>) => {
  hostileRuns(title, fn, noKernel);
};

slowLoad('SIGUSR1 while the kernel loads never opens the inspector', async (t) => {
  // The stock kernel takes a second or more to decompress: the window in which a VMM that took
  // SIGUSR1 only with its first vCPU kick handler left Node's inspector to the signal.
  const started = performance.now();
  const child = spawn(process.execPath, [BIN, 'run', '-k', kernel!, '-m', '128M', '--timeout', '3'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let peakKiB = 0;
  const sample = setInterval(() => {
    try {
      peakKiB = Math.max(peakKiB, Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0));
    } catch {
      // exited
    }
  }, 50);
  // A signal during Node's own start-up is not this test's case (the bin closes what it opened):
  // the signals start once the shim is mapped, i.e. the VMM is running and about to load the kernel.
  const timers: NodeJS.Timeout[] = [];
  const inVmm = setInterval(() => {
    try {
      if (!readFileSync(`/proc/${child.pid}/maps`, 'utf8').includes('kvm_shim.node')) return;
    } catch {
      return;
    }
    clearInterval(inVmm);
    timers.push(...[0, 150, 300, 600].map((ms) => setTimeout(() => child.kill('SIGUSR1'), scaled(ms))));
  }, 5);
  const status = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  clearInterval(sample);
  clearInterval(inVmm);
  timers.forEach(clearTimeout);
  t.true(timers.length > 0, 'the VMM never mapped its shim');
  const wallS = (performance.now() - started) / 1000;
  t.log(`exit ${status}, ${wallS.toFixed(2)} s, peak RSS ${(peakKiB / 1024).toFixed(0)} MiB`);
  t.notRegex(stderr, /Debugger listening|inspector/i);
  t.is(status, 124, stderr);
  t.true(wallS < scaled(3 + 5));
  t.true(peakKiB / 1024 < RSS_MIB);
});

slowLoad('--timeout covers loading: a deadline that passes while the kernel decompresses is exit 124 before any vCPU runs', async (t) => {
  const started = performance.now();
  const r = spawnSync(process.execPath, [BIN, 'run', '-k', kernel!, '-m', '128M', '--timeout', '0.3', '--json'], { encoding: 'utf8', timeout: 60_000 });
  const wallS = (performance.now() - started) / 1000;
  t.log(`exit ${r.status}, ${wallS.toFixed(2)} s`);
  t.is(r.status, 124, r.stderr);
  t.is(r.stderr, 'kvm-cli: run: timed out after 0.3 s\n');
  t.is(r.stdout, '', 'no run summary: the guest never ran');
  t.true(wallS < scaled(0.3 + 5));
});
