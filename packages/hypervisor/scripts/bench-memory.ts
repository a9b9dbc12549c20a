/**
 * VMM resident memory beyond guest memory: the built CLI runs the built-in guest spinning at CPL3;
 * once it is up, /proc/PID/smaps gives the process's RSS and the RSS of the guest RAM mapping
 * (the anonymous mapping of exactly the guest's size); the difference is the VMM's own.
 * Then SIGTERM, which must end the run with status 143.
 *
 * usage: npx tsx scripts/bench-memory.ts   (build first: npm run build)
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../cli/bin/kvm-cli.js', import.meta.url));
const MEM_MIB = 256;

function rss(pid: number): { totalKiB: number; guestKiB: number } {
  let totalKiB = 0;
  let guestKiB = 0;
  let inGuest = false;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (head) {
      inGuest = parseInt(head[2], 16) - parseInt(head[1], 16) === MEM_MIB * 1024 * 1024;
      continue;
    }
    const m = /^Rss:\s+(\d+) kB/.exec(line);
    if (m) {
      totalKiB += Number(m[1]);
      if (inGuest) guestKiB += Number(m[1]);
    }
  }
  return { totalKiB, guestKiB };
}

async function measure(cpus: number): Promise<{ cpus: number; totalMiB: number; guestMiB: number; vmmMiB: number; exitStatus: number | null }> {
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
  const { totalKiB, guestKiB } = rss(child.pid!);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  const exitStatus = await exited;
  const mib = (k: number) => +(k / 1024).toFixed(1);
  return { cpus, totalMiB: mib(totalKiB), guestMiB: mib(guestKiB), vmmMiB: mib(totalKiB - guestKiB), exitStatus };
}

for (const cpus of [1, 4]) console.log(JSON.stringify(await measure(cpus)));
