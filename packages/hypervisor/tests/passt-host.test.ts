/**
 * passt as the host sees it (#24): what a run creates cannot be written into or replaced by
 * another local user, and forwarded ports listen on loopback unless an address is written out.
 * The attacks need root (to act as a second uid, and as the victim CI is); they skip elsewhere.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseHostfwd } from '../src/devices/virtio/net-backends/spec.js';
import { PasstBackend } from '../src/devices/virtio/net-backends/passt.js';
import { testPasst } from '../src/test-tools.js';
import { testNeeding } from './helpers/prerequisite.js';

const passt = testPasst();
const isRoot = process.geteuid?.() === 0;
const missing = !isRoot ? 'needs root (a second uid plays the attacker)' : !passt ? 'passt is not unpacked (npm run fetch)' : undefined;
/** The second local user: no account needed, root may take any uid. */
const ATTACKER = 42424;

// Our own world-writable, sticky tmpdir (as /tmp is), so the attacker's view of it is the test's.
const shared = mkdtempSync(join(tmpdir(), 'kvm-ts-passt-host-'));
chmodSync(shared, 0o1777);
process.env.TMPDIR = shared;
test.after.always(() => rmSync(shared, { recursive: true, force: true }));

/**
 * Another user watching tmpdir: for `ms`, plants a directory named `pid` in every kvm-ts-passt-*
 * directory it can (so that passt cannot write its pid file there), and reports how often it got in.
 */
function attacker(ms: number): Promise<{ ready: Promise<void>; planted: Promise<number> }> {
  const script = `
    const fs = require('node:fs'), path = require('node:path');
    const dir = ${JSON.stringify(shared)}; let planted = 0; const end = Date.now() + ${ms};
    process.stdout.write('ready\\n');
    while (Date.now() < end) {
      let names = []; try { names = fs.readdirSync(dir); } catch {}
      for (const n of names) if (n.startsWith('kvm-ts-passt-')) { try { fs.mkdirSync(path.join(dir, n, 'pid')); planted++; } catch {} }
    }
    process.stdout.write(planted + '\\n');`;
  const child = spawn(process.execPath, ['-e', script], { uid: ATTACKER, gid: ATTACKER, cwd: '/', stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let readyResolve!: () => void;
  const ready = new Promise<void>((r) => (readyResolve = r));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.startsWith('ready\n')) readyResolve();
  });
  const planted = new Promise<number>((resolve) => child.once('exit', () => resolve(Number(out.split('\n')[1]))));
  return Promise.resolve({ ready, planted });
}

testNeeding(missing, "another user cannot plant passt's pid file: the run starts, and leaves no helper directory", async (t) => {
  const bad = await attacker(3000);
  await bad.ready;
  const lines: string[] = [];
  const backend = await PasstBackend.start({ log: (l) => lines.push(l), env: { ...process.env, KVM_TS_PASST: passt } });
  await backend.close();
  t.is(await bad.planted, 0, 'the second user got into the helper directory');
  t.deepEqual(readdirSync(shared).filter((n) => n.startsWith('kvm-ts-passt-')), [], 'the helper directory was left behind');
  t.deepEqual(lines, []);
});

/** Listening TCP sockets of this network namespace as "ADDR:PORT" (IPv4, /proc/net/tcp). */
function listeningOn(port: number): string[] {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[1]?.endsWith(`:${hex}`) && f[3] === '0A')
    .map((f) => `${f[1].slice(0, 8).match(/../g)!.reverse().map((b) => parseInt(b, 16)).join('.')}:${port}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

testNeeding(passt ? undefined : 'passt is not unpacked (npm run fetch)', 'a forward without an address listens on loopback only; 0.0.0.0 must be written out', async (t) => {
  const env = { ...process.env, KVM_TS_PASST: passt };
  const port = await freePort();
  const local = await PasstBackend.start({ forwards: [parseHostfwd(`tcp:${port}:22`)], log: () => {}, env });
  try {
    t.deepEqual(listeningOn(port), [`127.0.0.1:${port}`]);
  } finally {
    await local.close();
  }
  const all = await PasstBackend.start({ forwards: [parseHostfwd(`tcp:0.0.0.0:${port}-:22`)], log: () => {}, env });
  try {
    t.deepEqual(listeningOn(port), [`0.0.0.0:${port}`]);
  } finally {
    await all.close();
  }
  t.false(existsSync(join(shared, 'pid')));
});

test('hostfwd: both spellings, IPv6 in brackets, loopback by default', (t) => {
  t.deepEqual(parseHostfwd('tcp:2222:22'), { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 2222, guestPort: 22 });
  t.deepEqual(parseHostfwd('tcp:127.0.0.1:2222:22'), { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 2222, guestPort: 22 });
  t.deepEqual(parseHostfwd('tcp:127.0.0.1:2222-:22'), { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 2222, guestPort: 22 });
  t.deepEqual(parseHostfwd('tcp::2222-:22'), { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 2222, guestPort: 22 });
  t.deepEqual(parseHostfwd('udp:[::1]:5353:53'), { proto: 'udp', hostAddr: '::1', hostPort: 5353, guestPort: 53 });
  t.deepEqual(parseHostfwd('tcp:[::]:80-:8080'), { proto: 'tcp', hostAddr: '::', hostPort: 80, guestPort: 8080 });
  t.deepEqual(parseHostfwd('tcp:0.0.0.0:2222:22'), { proto: 'tcp', hostAddr: '0.0.0.0', hostPort: 2222, guestPort: 22 });
  for (const bad of ['tcp:99999:22', 'tcp:1.2.3:22:22', 'tcp:[zz]:1:2', 'tcp:::1:1:2', 'tcp:1:2-3:4', 'sctp:1:2', 'tcp:2222-10.0.2.15:22']) {
    t.throws(() => parseHostfwd(bad), undefined, bad);
  }
  t.throws(() => parseHostfwd('tcp::2222-10.0.2.15:22'), { message: /leave GUESTADDR empty/ });
});
