/**
 * VMM resident memory beyond guest memory: the built CLI runs the built-in guest spinning at CPL3;
 * once it is up, /proc/PID/smaps gives the process's RSS and the RSS of the guest RAM mapping
 * (the anonymous mapping of exactly the guest's size); the difference is the VMM's own.
 * Then SIGTERM, which must end the run with status 143. `privateMiB` is the same difference counting
 * only pages private to the process (Private_Clean + Private_Dirty: not the Node binary's text that
 * every node process shares). For scale, the same figures for a bare `node` and for a bare `node`
 * with as many idle worker threads as the VMM has vCPUs: the floor of the one-worker-per-vCPU design.
 *
 * usage: npx tsx scripts/bench-memory.ts   (build first: npm run build)
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../cli/bin/kvm-cli.js', import.meta.url));
const MEM_MIB = 256;

interface Usage {
  totalKiB: number;
  guestKiB: number;
  privateKiB: number;
  guestPrivateKiB: number;
}

function rss(pid: number): Usage {
  const u: Usage = { totalKiB: 0, guestKiB: 0, privateKiB: 0, guestPrivateKiB: 0 };
  let inGuest = false;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (head) {
      inGuest = parseInt(head[2], 16) - parseInt(head[1], 16) === MEM_MIB * 1024 * 1024;
      continue;
    }
    const m = /^(Rss|Private_Clean|Private_Dirty):\s+(\d+) kB/.exec(line);
    if (!m) continue;
    const kib = Number(m[2]);
    if (m[1] === 'Rss') {
      u.totalKiB += kib;
      if (inGuest) u.guestKiB += kib;
    } else {
      u.privateKiB += kib;
      if (inGuest) u.guestPrivateKiB += kib;
    }
  }
  return u;
}

const mib = (k: number) => +(k / 1024).toFixed(1);

/** A bare node with `workers` idle worker threads: what the design costs before any VMM code. */
async function baseline(workers: number): Promise<{ workers: number; rssMiB: number; privateMiB: number }> {
  const code = `const { Worker } = require('node:worker_threads'); for (let i = 0; i < ${workers}; i++) new Worker('setInterval(() => {}, 1000)', { eval: true }); setTimeout(() => console.log('up'), 300); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  await new Promise((r) => setTimeout(r, 500));
  const u = rss(child.pid!);
  child.kill('SIGKILL');
  return { workers, rssMiB: mib(u.totalKiB), privateMiB: mib(u.privateKiB) };
}

async function measure(cpus: number): Promise<{ cpus: number; totalMiB: number; guestMiB: number; vmmMiB: number; privateMiB: number; exitStatus: number | null }> {
  const child = spawn(process.execPath, [BIN, 'run', '-m', `${MEM_MIB}M`, '-c', String(cpus), '-p', 'spin memtest=0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('self-test: PASS')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`kvm-cli exited early (${code}): ${out}`)));
  });
  await new Promise((r) => setTimeout(r, 500));
  const { totalKiB, guestKiB, privateKiB, guestPrivateKiB } = rss(child.pid!);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  const exitStatus = await exited;
  return { cpus, totalMiB: mib(totalKiB), guestMiB: mib(guestKiB), vmmMiB: mib(totalKiB - guestKiB), privateMiB: mib(privateKiB - guestPrivateKiB), exitStatus };
}

for (const cpus of [1, 4]) console.log(JSON.stringify(await measure(cpus)));
for (const workers of [0, 1, 4]) console.log(JSON.stringify({ baseline: 'bare node', ...(await baseline(workers)) }));
