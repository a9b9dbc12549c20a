/**
 * virtio-net benchmark, one sitting: UDP echo exchanges guest ↔ host over a tap and through passt,
 * each next to the same exchange between two host processes on the same machine.
 *
 * Each path gets a network namespace of its own (created here, removed at the end; no traffic
 * leaves it) with a UDP echo server (a Node process) on port 9000. The guest is the client
 * (`kvmts.udpbench=IP:9000:SIZE:COUNT`: COUNT datagrams of SIZE bytes, 16 in flight), its span
 * timed by `--debug-port` marks 0x20/0x21; the host baseline is a Node client in the same namespace
 * doing the same against the same server over loopback. Small datagrams (64 bytes) measure packets
 * per second, large ones (1400 bytes) payload MB/s (each way). The guest sends to the tap's host
 * side (10.66.0.1) over tap, and to passt's gateway (10.64.0.1, a namespace-local address) in
 * mode=user: passt turns its flow into a host socket's.
 *
 * Needs root, iproute2, /dev/kvm and passt (KVM_TS_PASST or PATH; `npm run fetch` unpacks one).
 * Usage: npx tsx scripts/bench-net.ts [--count N] [--rounds R]
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { testPasst } from '../src/test-tools.js';

const BIN = fileURLToPath(new URL('../../cli/bin/kvm-cli.js', import.meta.url));
const args = process.argv.slice(2);
const flag = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const COUNT = flag('count', 20000);
const ROUNDS = flag('rounds', 3);
const PORT = 9000;
const WINDOW = 16;
const passt = testPasst();
if (!passt) throw new Error('no passt: npm run fetch, or set KVM_TS_PASST');

function sh(cmd: string): void {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
}

const ECHO_SERVER = `
const s = require('node:dgram').createSocket('udp4');
s.on('message', (m, r) => s.send(m, r.port, r.address));
s.bind(${PORT}, '0.0.0.0', () => console.log('ready'));
setTimeout(() => process.exit(0), 600000);`;

const CLIENT = (host: string, size: number, count: number) => `
const s = require('node:dgram').createSocket('udp4');
const buf = Buffer.alloc(${size});
let sent = 0, got = 0, t0;
const pump = () => { while (sent < ${count} && sent - got < ${WINDOW}) { buf.writeUInt32BE(sent, 0); s.send(buf, ${PORT}, '${host}'); sent++; } };
s.on('message', () => { got++; if (got === ${count}) { const ms = performance.now() - t0; console.log(JSON.stringify({ ms, got })); process.exit(0); } pump(); });
setTimeout(() => { console.log(JSON.stringify({ ms: NaN, got })); process.exit(1); }, 120000);
s.bind(0, () => { t0 = performance.now(); pump(); });`;

interface Path {
  name: string;
  ns: string;
  setup: string;
  net: string;
  guestParams: string;
  target: string;
  env?: NodeJS.ProcessEnv;
}

const paths: Path[] = [
  {
    name: 'tap',
    ns: `kvmts-bench-tap-${process.pid}`,
    setup: 'ip link set lo up && ip tuntap add kvt0 mode tap && ip addr add 10.66.0.1/24 dev kvt0 && ip link set kvt0 up',
    net: 'mode=tap,tapif=kvt0',
    guestParams: 'kvmts.ip=10.66.0.2/24',
    target: '10.66.0.1',
  },
  {
    name: 'passt',
    ns: `kvmts-bench-passt-${process.pid}`,
    setup:
      'ip link set lo up && ip link add kvp0 type veth peer name kvp1 && ip addr add 10.64.0.2/24 dev kvp0 && ip addr add 10.64.0.1/24 dev kvp1 && ip link set kvp0 up && ip link set kvp1 up && ip route add default via 10.64.0.1 dev kvp0',
    net: 'mode=user',
    guestParams: '',
    target: '10.64.0.1',
    env: { ...process.env, KVM_TS_PASST: passt },
  },
];

/** The guest's span between marks 0x20 and 0x21, in ms, and how many datagrams came back. */
function guestRun(p: Path, size: number): { ms: number; got: number } {
  const r = spawnSync('ip', ['netns', 'exec', p.ns, process.execPath, BIN, 'run', '-m', '64', '--debug-port', '-n', p.net, '-p', `memtest=0 ${p.guestParams} kvmts.udpbench=${p.target}:${PORT}:${size}:${COUNT}`], {
    encoding: 'utf8',
    env: p.env ?? process.env,
    timeout: 300_000,
  });
  const mark = (code: string) => Number(new RegExp(`debug port 0x80: code 0x${code} at ([\\d.]+) s`).exec(r.stderr)?.[1]);
  const got = Number(/udp benchmark to [\d.:]+: (\d+) of/.exec(r.stdout)?.[1] ?? 0);
  if (r.status !== 0 || !got) throw new Error(`guest run failed (${r.status}): ${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
  return { ms: (mark('21') - mark('20')) * 1000, got };
}

function hostRun(p: Path, size: number): { ms: number; got: number } {
  const r = spawnSync('ip', ['netns', 'exec', p.ns, process.execPath, '-e', CLIENT('127.0.0.1', size, COUNT)], { encoding: 'utf8', timeout: 200_000 });
  if (r.status !== 0) throw new Error(`host client failed: ${r.stdout} ${r.stderr}`);
  return JSON.parse(r.stdout) as { ms: number; got: number };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const rows: string[] = [];
  for (const p of paths) {
    sh(`ip netns add ${p.ns}`);
    const server = spawn('ip', ['netns', 'exec', p.ns, process.execPath, '-e', ECHO_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      sh(`ip netns exec ${p.ns} sh -c '${p.setup}'`);
      await new Promise<void>((resolve) => server.stdout.once('data', () => resolve()));
      for (const size of [64, 1400]) {
        const g: number[] = [];
        const h: number[] = [];
        let gotG = 0;
        for (let round = 0; round < ROUNDS; round++) {
          const gr = guestRun(p, size);
          gotG = gr.got;
          g.push((gr.got / gr.ms) * 1000);
          const hr = hostRun(p, size);
          h.push((hr.got / hr.ms) * 1000);
          process.stderr.write(`${p.name} ${size} B round ${round + 1}: guest ${Math.round(g.at(-1)!)} /s (${gr.got} of ${COUNT}), host ${Math.round(h.at(-1)!)} /s\n`);
        }
        const gp = median(g);
        const hp = median(h);
        const mb = (pps: number) => ((pps * size) / 1e6).toFixed(2);
        rows.push(`| ${p.name} | ${size} | ${Math.round(gp)} | ${mb(gp)} | ${Math.round(hp)} | ${mb(hp)} | ${(gp / hp).toFixed(2)} | ${gotG} of ${COUNT} |`);
      }
    } finally {
      server.kill();
      sh(`ip netns del ${p.ns}`);
    }
  }
  console.log(`UDP echo, ${COUNT} datagrams, ${WINDOW} in flight, median of ${ROUNDS} rounds\n`);
  console.log('| path | datagram bytes | guest echoes/s | guest payload MB/s each way | host-process echoes/s | host-process MB/s | guest / host |  guest datagrams echoed |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
}

await main();
