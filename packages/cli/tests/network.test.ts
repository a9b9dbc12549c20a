/**
 * `kvm-cli run -n/--network` as users run it: flag and config errors, two VMs over `mode=socket`
 * pinging each other, a VM and a test peer over a socket (ARP, ICMP echo, UDP echo, a hostile
 * guest under a frame flood), a tap inside a network namespace the test makes (ping from iputils,
 * UDP echoes), and user-mode networking through a real passt (DHCP, a TCP forward, ICMP to passt's
 * gateway inside a namespace, the child reaped after a SIGKILL of the VMM). Traffic stays on
 * loopback, in the test's sockets, or inside the namespaces it creates and removes.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findOnPath } from '@kvm-ts/abi/debian';
import { testPasst, testPing } from '../../hypervisor/src/test-tools.js';
import { NO_NETWORK_LINE } from './helpers/no-network.js';
import { kvmTests, scaled } from './helpers/kvm.js';

const BIN = fileURLToPath(new URL('../bin/kvm-cli.js', import.meta.url));
const ci = process.env.CI === 'true';
const networkRuns = kvmTests('network runs');
const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-net-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const passt = testPasst();
const ping = testPing();
const isRoot = process.getuid?.() === 0;
/** What a test needs that this host lacks, or undefined. */
function lacking(needs: Array<'kvm' | 'passt' | 'root' | 'ip' | 'ping'>): string | undefined {
  for (const n of needs) {
    if (n === 'passt' && !passt) return 'passt is not installed and the fetch step did not unpack it (npm run fetch)';
    if (n === 'root' && !isRoot) return 'network namespaces and taps need root';
    if (n === 'ip' && !findOnPath('ip')) return 'ip (iproute2) is not installed';
    if (n === 'ping' && !ping) return 'ping is neither on PATH nor unpacked by the fetch step (npm run fetch)';
  }
  return undefined;
}
/** Serial, and: fails under CI=true when a prerequisite is missing, skips with the reason elsewhere. */
function needing(needs: Array<'kvm' | 'passt' | 'root' | 'ip' | 'ping'>, title: string, fn: (t: ExecutionContext) => Promise<void> | void): void {
  const missing = lacking(needs);
  if (needs.includes('kvm')) networkRuns(title, fn, missing);
  else if (!missing) test.serial(title, fn);
  else if (ci) test.serial(title, (t) => t.fail(missing));
  else test.skip(`${title} — skipped: ${missing}`, fn);
}

const GUEST = 'memtest=0';
const passtEnv = () => ({ ...process.env, KVM_TS_PASST: passt });

function cli(args: string[], env: NodeJS.ProcessEnv = process.env, timeout = scaled(90_000)) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout, env, stdio: ['ignore', 'pipe', 'pipe'] });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function oneLineError(t: ExecutionContext, r: ReturnType<typeof cli>, pattern: RegExp) {
  t.is(r.status, 2, r.stderr);
  t.is(r.stdout, '', 'nothing from the guest: it never started');
  const lines = r.stderr.trimEnd().split('\n');
  t.is(lines.length, 1, r.stderr);
  t.regex(lines[0], pattern);
  t.notRegex(r.stderr, /\n\s+at /);
}

/** A VM in the background: its output so far, a wait for a pattern, and its end. */
function start(args: string[], opts: { env?: NodeJS.ProcessEnv; wrap?: string[] } = {}) {
  const argv = [...(opts.wrap ?? []), process.execPath, BIN, ...args];
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    child,
    out: () => out,
    err: () => err,
    done,
    async until(re: RegExp, ms = scaled(60_000)): Promise<void> {
      const deadline = Date.now() + ms;
      while (!re.test(out)) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`no ${re} from the VM: ${out}\n${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

// ---- a peer at the far end of a mode=socket cable ----

const PEER_MAC = Uint8Array.from([0x02, 0x6b, 0x76, 0x6d, 0x74, 0x01]);
const ip4 = (s: string) => Uint8Array.from(s.split('.').map(Number));

function csum(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i + 1 < b.length; i += 2) s += (b[i] << 8) | b[i + 1];
  if (b.length & 1) s += b[b.length - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

function eth(dst: Uint8Array, type: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + payload.length);
  f.set(dst, 0);
  f.set(PEER_MAC, 6);
  f[12] = type >> 8;
  f[13] = type & 0xff;
  f.set(payload, 14);
  return f;
}

function arpRequest(src: string, target: string): Uint8Array {
  const a = new Uint8Array(28);
  a.set([0, 1, 8, 0, 6, 4, 0, 1]);
  a.set(PEER_MAC, 8);
  a.set(ip4(src), 14);
  a.set(ip4(target), 24);
  return eth(new Uint8Array(6).fill(0xff), 0x0806, a);
}

function ipv4(src: string, dst: string, proto: number, l4: Uint8Array): Uint8Array {
  const ip = new Uint8Array(20 + l4.length);
  ip.set([0x45, 0, (ip.length >> 8) & 0xff, ip.length & 0xff, 0, 1, 0x40, 0, 64, proto]);
  ip.set(ip4(src), 12);
  ip.set(ip4(dst), 16);
  const c = csum(ip.subarray(0, 20));
  ip[10] = c >> 8;
  ip[11] = c & 0xff;
  ip.set(l4, 20);
  return ip;
}

function echoRequest(seq: number): Uint8Array {
  const icmp = new Uint8Array(40);
  icmp.set([8, 0, 0, 0, 0x12, 0x34, 0, seq]);
  for (let i = 8; i < 40; i++) icmp[i] = i;
  const c = csum(icmp);
  icmp[2] = c >> 8;
  icmp[3] = c & 0xff;
  return icmp;
}

function udp(sport: number, dport: number, data: Uint8Array): Uint8Array {
  const u = new Uint8Array(8 + data.length);
  u.set([sport >> 8, sport & 0xff, dport >> 8, dport & 0xff, u.length >> 8, u.length & 0xff, 0, 0]);
  u.set(data, 8);
  return u;
}

/** Frames of QEMU's stream framing on a socket. */
class Peer {
  readonly frames: Uint8Array[] = [];
  private pending = Buffer.alloc(0);
  constructor(readonly sock: Socket) {
    sock.on('data', (chunk: Buffer) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      while (this.pending.length >= 4 && this.pending.length >= 4 + this.pending.readUInt32BE(0)) {
        const len = this.pending.readUInt32BE(0);
        this.frames.push(Uint8Array.from(this.pending.subarray(4, 4 + len)));
        this.pending = this.pending.subarray(4 + len);
      }
    });
  }
  send(frame: Uint8Array): void {
    const b = Buffer.alloc(4 + frame.length);
    b.writeUInt32BE(frame.length, 0);
    b.set(frame, 4);
    this.sock.write(b);
  }
  async expect(what: string, match: (f: Uint8Array) => boolean, ms = scaled(10_000)): Promise<Uint8Array> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.frames.findIndex(match);
      if (i >= 0) return this.frames.splice(i, 1)[0];
      if (Date.now() > deadline) throw new Error(`no ${what} from the guest`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

function listen(path: string): Promise<{ server: Server; peer: Promise<Peer> }> {
  return new Promise((resolve) => {
    let got: (p: Peer) => void;
    const peer = new Promise<Peer>((r) => (got = r));
    const server = createServer((s) => got(new Peer(s)));
    server.listen(path, () => resolve({ server, peer }));
  });
}

// ---- flags and config ----

test('bad -n/--network values and config entries are one line and exit 2', (t) => {
  oneLineError(t, cli(['run', '-n', 'mode=bogus']), /^kvm-cli: --network: mode must be tap, user or socket, got 'bogus'$/);
  oneLineError(t, cli(['run', '-n', 'mode=tap']), /--network: mode=tap needs tapif=NAME/);
  oneLineError(t, cli(['run', '-n', 'mode=tap,tapif=this-name-is-far-too-long']), /tap name .* must be 1 to 15 characters/);
  oneLineError(t, cli(['run', '-n', 'mode=user,tapif=x']), /--network: 'tapif' does not go with mode=user/);
  oneLineError(t, cli(['run', '-n', 'mode=user,mac=01:00:5e:00:00:01']), /multicast/);
  oneLineError(t, cli(['run', '-n', 'mode=user,mac=nope']), /'nope' is not a MAC address/);
  oneLineError(t, cli(['run', '-n', 'mode=user,hostfwd=tcp:99999:22']), /hostfwd 'tcp:99999:22' is not tcp:HOSTPORT:GUESTPORT/);
  oneLineError(t, cli(['run', '-n', 'mode=user,bogus=1']), /unknown item 'bogus=1'/);
  oneLineError(t, cli(['run', '-n', 'mode=socket']), /mode=socket needs path=P/);
  oneLineError(t, cli(['run', '-n', 'mode=socket,path=a,listen=yes']), /'listen' takes no value/);
  oneLineError(t, cli(['run', '-n', 'mode=socket,path=a', '-n', 'mode=tap']), /mode=tap needs tapif/);
  const cfg = join(dir, 'net.json');
  writeFileSync(cfg, JSON.stringify({ network: [{ mode: 'user' }, { mode: 'tap' }] }));
  oneLineError(t, cli(['run', '--config', cfg]), /net\.json: network\[1\]\.tapif: mode=tap needs tapif=NAME$/);
  writeFileSync(cfg, JSON.stringify({ network: [{ mode: 'user', port: 1 }] }));
  oneLineError(t, cli(['run', '--config', cfg]), /net\.json: network\[0\]\.port: unknown key$/);
});

test('--print-config spells networks as a config file does, and feeding it back gives the same', (t) => {
  const r = cli(['run', '-n', 'mode=user,hostfwd=tcp:2222:22', '-n', 'mode=socket,path=vm.sock,listen', '--print-config']);
  t.is(r.status, 0, r.stderr);
  const printed = JSON.parse(r.stdout) as { network: unknown[] };
  t.deepEqual(printed.network, [{ mode: 'user', hostfwd: ['tcp:2222:22'] }, { mode: 'socket', path: join(process.cwd(), 'vm.sock'), listen: true }]);
  const cfg = join(dir, 'printed.json');
  writeFileSync(cfg, r.stdout);
  t.deepEqual(JSON.parse(cli(['run', '--config', cfg, '--print-config']).stdout), printed);
});

test('a socket nobody listens on, and passt missing, are one line naming the remedy, exit 2', (t) => {
  oneLineError(t, cli(['run', '-n', `mode=socket,path=${join(dir, 'nobody.sock')}`]), /socket .*nobody\.sock: cannot connect \(no such socket\); start the listening side first/);
  const empty = mkdtempSync(join(dir, 'path-'));
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: empty };
  delete env.KVM_TS_PASST;
  oneLineError(t, cli(['run', '-n', 'mode=user'], env), /^kvm-cli: --network: passt is not installed \(user-mode networking runs it\): install the Debian package passt$/);
  oneLineError(t, cli(['run', '-n', 'mode=user'], { ...process.env, KVM_TS_PASST: join(empty, 'passt') }), /KVM_TS_PASST=.* is not an executable file/);
  const notSocket = join(dir, 'plain-file');
  writeFileSync(notSocket, 'x');
  oneLineError(t, cli(['run', '-n', `mode=socket,path=${notSocket},listen`]), /the path exists and is not a socket/);
});

// ---- mode=socket ----

needing(['kvm'], 'two VMs over mode=socket (one on ioeventfd/irqfd, one on MMIO exits/KVM_IRQ_LINE) ping each other; --json counts the frames', async (t) => {
  const sock = join(dir, 'cable.sock');
  const a = start(['run', '--json', '-m', '64', '-n', `mode=socket,path=${sock},listen`, '-p', `${GUEST} kvmts.ip=10.9.0.1/24 kvmts.serve=${scaled(6)} kvmts.ping=10.9.0.2`]);
  const deadline = Date.now() + scaled(30_000);
  while (!existsSync(sock) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  // The second VM on the fallback paths: doorbells as MMIO exits, interrupts by KVM_IRQ_LINE.
  const b = cli(['run', '-m', '64', '--without-cap', 'KVM_CAP_IOEVENTFD,KVM_CAP_IRQFD', '-n', `mode=socket,path=${sock}`, '-p', `${GUEST} kvmts.ip=10.9.0.2/24 kvmts.serve=${scaled(4)} kvmts.ping=10.9.0.1`]);
  t.is(b.status, 0, b.stderr + b.stdout);
  t.regex(b.stdout, /virtio-net: eth0: [0-9a-f:]{17}, link up, mergeable rx buffers, 1 completion by interrupt: ok/);
  t.regex(b.stdout, /virtio-net: [0-9a-f:]{17}: address 10\.9\.0\.2\/24 \(static\)/);
  t.regex(b.stdout, new RegExp(`virtio-net: serving 10\\.9\\.0\\.2 for ${scaled(4)} s`));
  t.regex(b.stdout, /virtio-net: ping 10\.9\.0\.1: [1-9]\d* of \d+ replies: ok/);
  t.regex(b.stdout, /virtio-net: served [1-9]\d* packets/);
  t.regex(b.stdout, /self-test: PASS/);
  t.is(await a.done, 0, a.err());
  t.regex(a.err(), /virtio-net: ping 10\.9\.0\.2: [1-9]\d* of \d+ replies: ok/);
  const summary = JSON.parse(a.out()) as { virtio: Array<{ name: string; device?: Record<string, number> }> };
  const net = summary.virtio.find((d) => d.name.startsWith('virtio-net'));
  t.truthy(net, 'the net device is in the summary');
  t.true((net!.device!.rxFrames ?? 0) > 0 && (net!.device!.txFrames ?? 0) > 0);
  t.true((net!.device!['backend.framesIn'] ?? 0) > 0);
  t.false(existsSync(sock), 'the listening side removes its socket');
});

needing(['kvm'], 'a test peer over mode=socket gets ARP, ICMP echo and UDP echo answers from the guest', async (t) => {
  const sock = join(dir, 'peer.sock');
  const { server, peer: peerP } = await listen(sock);
  const name = `net-peer-${process.pid}`;
  const vm = start(['run', '--name', name, '-m', '64', '-n', `mode=socket,path=${sock},mac=52:54:00:aa:bb:cc`, '-p', `${GUEST} kvmts.ip=10.8.0.2/24 kvmts.serve=5`]);
  try {
    const peer = await peerP;
    await vm.until(/virtio-net: serving 10\.8\.0\.2 for 5 s/);
    t.regex(vm.out(), /virtio-net: eth0: 52:54:00:aa:bb:cc, link up/, 'the MAC given');
    const guestMac = Uint8Array.from([0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc]);
    peer.send(arpRequest('10.8.0.1', '10.8.0.2'));
    const arp = await peer.expect('ARP reply', (f) => f[12] === 0x08 && f[13] === 0x06 && f[21] === 2);
    t.deepEqual(arp.subarray(22, 28), guestMac, 'the reply says the guest MAC');
    t.deepEqual(arp.subarray(28, 32), ip4('10.8.0.2'));
    for (let seq = 1; seq <= 3; seq++) peer.send(eth(guestMac, 0x0800, ipv4('10.8.0.1', '10.8.0.2', 1, echoRequest(seq))));
    for (let seq = 1; seq <= 3; seq++) {
      const r = await peer.expect(`echo reply ${seq}`, (f) => f[23] === 1 && f[34] === 0 && f[41] === seq);
      t.is(csum(r.subarray(14, 34)), 0, 'IP header checksum');
      t.is(csum(r.subarray(34, 14 + ((r[16] << 8) | r[17]))), 0, 'ICMP checksum');
      t.deepEqual(r.subarray(26, 30), ip4('10.8.0.2'));
    }
    const data = new TextEncoder().encode('kvm-ts udp echo');
    peer.send(eth(guestMac, 0x0800, ipv4('10.8.0.1', '10.8.0.2', 17, udp(40000, 7, data))));
    const u = await peer.expect('UDP echo', (f) => f[23] === 17 && ((f[36] << 8) | f[37]) === 40000);
    t.deepEqual(u.subarray(42, 42 + data.length), data);
    const stat = cli(['stat', name]);
    t.is(stat.status, 0, stat.stderr);
    t.regex(stat.stdout, /^device virtio-net eth0 \(socket .*peer\.sock\) \(mmio\): .*rxFrames [1-9]\d*, .*txFrames [1-9]\d*, .*backend\.framesIn [1-9]/m, 'kvm-cli stat shows the device counters');
    t.is(await vm.done, 0, vm.err());
    t.regex(vm.out(), /virtio-net: served [5-9]\d* packets|virtio-net: served \d{2,} packets/);
    t.regex(vm.out(), /self-test: PASS/);
  } finally {
    vm.child.kill('SIGKILL');
    server.close();
  }
});

needing(['kvm'], 'kvmts.hostile misdrives the net device under a frame flood; it needs a reset, then works; the VM exits 0', async (t) => {
  const sock = join(dir, 'hostile.sock');
  const { server, peer: peerP } = await listen(sock);
  const vm = start(['run', '--json', '-m', '64', '-n', `mode=socket,path=${sock}`, '-p', `${GUEST} kvmts.hostile=7 kvmts.ip=10.7.0.2/24`]);
  let flooding = true;
  try {
    const peer = await peerP;
    // Broadcast frames as fast as the socket takes them, while the guest misdrives its receive queue.
    const frame = arpRequest('10.7.0.1', '10.7.0.99');
    const flood = (async () => {
      for (let i = 0; i < 200_000 && flooding; i++) {
        peer.send(frame);
        if (i % 64 === 0) await new Promise((r) => setImmediate(r));
      }
    })();
    const code = await vm.done;
    flooding = false;
    await flood;
    t.is(code, 0, vm.err());
    t.regex(vm.err(), /virtio: hostile driving of \d+ devices done, each reset/);
    t.regex(vm.err(), /virtio-net: eth0: .*link up.*: ok/);
    t.regex(vm.err(), /self-test: PASS/);
    const summary = JSON.parse(vm.out()) as { virtio: Array<{ name: string; needsReset: number; device?: Record<string, number> }> };
    const net = summary.virtio.find((d) => d.name.startsWith('virtio-net'))!;
    t.true(net.needsReset > 0, 'the misdriven device was set to DEVICE_NEEDS_RESET');
    t.true((net.device!.rxDropped ?? 0) > 0, 'frames the guest had no buffers for were dropped, not queued');
  } finally {
    flooding = false;
    vm.child.kill('SIGKILL');
    server.close();
  }
});

// ---- mode=tap in a network namespace ----

/** Runs `cmd` in namespace `ns`. */
function inNs(ns: string, cmd: string[], input?: string) {
  return spawnSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8', timeout: scaled(30_000), input });
}
function sh(cmd: string): void {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
}

needing(['kvm', 'root', 'ip', 'ping'], 'mode=tap in a namespace: the host side pings the guest and gets UDP echoes; the guest pings back', async (t) => {
  const ns = `kvmts-tap-${process.pid}`;
  sh(`ip netns add ${ns}`);
  try {
    sh(`ip netns exec ${ns} sh -c 'ip link set lo up && ip tuntap add kvt0 mode tap && ip addr add 10.66.0.1/24 dev kvt0 && ip link set kvt0 up'`);
    const vm = start(['run', '-m', '64', '-n', 'mode=tap,tapif=kvt0', '-p', `${GUEST} kvmts.ip=10.66.0.2/24 kvmts.serve=6 kvmts.ping=10.66.0.1`], { wrap: ['ip', 'netns', 'exec', ns] });
    try {
      await vm.until(/virtio-net: serving 10\.66\.0\.2 for 6 s/);
      const pinged = inNs(ns, [ping!, '-c', '3', '-i', '0.2', '-W', '2', '10.66.0.2']);
      t.is(pinged.status, 0, pinged.stdout + pinged.stderr);
      t.regex(pinged.stdout, /3 packets transmitted, 3 received, 0% packet loss/);
      const client = `
        const s = require('node:dgram').createSocket('udp4');
        let got = 0, sent = 0;
        s.on('message', (m) => { if (m.toString() === 'echo ' + got) got++; if (got === 50) { console.log('echoed ' + got); process.exit(0); } else send(); });
        const send = () => { s.send('echo ' + got, 7, '10.66.0.2'); sent++; };
        setTimeout(() => { console.log('echoed ' + got + ' of ' + sent); process.exit(1); }, 10000);
        send();`;
      const u = inNs(ns, [process.execPath, '-e', client]);
      t.is(u.status, 0, u.stdout + u.stderr);
      t.regex(u.stdout, /echoed 50/);
      t.is(await vm.done, 0, vm.err());
      t.regex(vm.out(), /virtio-net: ping 10\.66\.0\.1: [1-9]\d* of \d+ replies: ok/);
      t.regex(vm.out(), /virtio-net: served (5[3-9]|[6-9]\d|\d{3,}) packets/, 'at least 3 pings and 50 echoes answered');
      t.regex(vm.out(), /self-test: PASS/);
    } finally {
      vm.child.kill('SIGKILL');
    }
  } finally {
    sh(`ip netns del ${ns}`);
  }
});

needing(['kvm', 'root', 'ip'], 'a busy tap and a missing CAP_NET_ADMIN are one line each, exit 2', async (t) => {
  const ns = `kvmts-busy-${process.pid}`;
  sh(`ip netns add ${ns}`);
  try {
    sh(`ip netns exec ${ns} ip tuntap add kvb0 mode tap`);
    const holder = start(['run', '-m', '64', '-n', 'mode=tap,tapif=kvb0', '-p', `${GUEST} kvmts.ip=10.65.0.2/24 spin`], { wrap: ['ip', 'netns', 'exec', ns] });
    try {
      await holder.until(/spin: looping/);
      const busy = spawnSync('ip', ['netns', 'exec', ns, process.execPath, BIN, 'run', '-n', 'mode=tap,tapif=kvb0'], { encoding: 'utf8', timeout: scaled(60_000) });
      oneLineError(t, { status: busy.status, stdout: busy.stdout, stderr: busy.stderr }, /^kvm-cli: --network: tap kvb0 is busy: another process has it open$/);
    } finally {
      holder.child.kill('SIGKILL');
      await holder.done;
    }
    // Effective uid nobody, with no capability but CAP_DAC_READ_SEARCH: no CAP_NET_ADMIN (and no
    // /dev/kvm either, but the network is refused first). The real uid stays root and the one
    // capability is kept so the checkout is readable wherever it lives (a 0700 home or temp dir:
    // access(2) checks the real uid). Root with every capability dropped is no substitute: it
    // may attach to a tap nobody owns.
    const nobody = ['--euid=65534', '--egid=65534', '--clear-groups', '--bounding-set=-all,+dac_read_search', '--inh-caps=-all,+dac_read_search', '--ambient-caps=+dac_read_search'];
    const unprivileged = spawnSync('ip', ['netns', 'exec', ns, 'setpriv', ...nobody, process.execPath, BIN, 'run', '-n', 'mode=tap,tapif=kvb0'], {
      encoding: 'utf8',
      timeout: scaled(60_000),
    });
    oneLineError(t, { status: unprivileged.status, stdout: unprivileged.stdout, stderr: unprivileged.stderr }, /^kvm-cli: --network: tap kvb0: .* needs CAP_NET_ADMIN/);
  } finally {
    sh(`ip netns del ${ns}`);
  }
});

// ---- mode=user through passt ----

needing(['kvm', 'passt'], 'mode=user: DHCP through a real passt, and a TCP forward that reaches the guest (its reset closes the host connection)', async (t) => {
  const port = 20000 + (process.pid % 20000);
  const vm = start(['run', '-m', '64', '-n', `mode=user,hostfwd=tcp:${port}:9`, '-p', `${GUEST} kvmts.serve=4`], { env: passtEnv() });
  try {
    await vm.until(/virtio-net: serving \d+\.\d+\.\d+\.\d+ for 4 s/);
    t.regex(vm.out(), /virtio-net: [0-9a-f:]{17}: dhcp ok, address \d+\.\d+\.\d+\.\d+\/\d+ from \d+\.\d+\.\d+\.\d+/);
    const closed = await new Promise<string>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      const timer = setTimeout(() => (s.destroy(), resolve('still open after 5 s')), 5000);
      s.on('error', (e) => (clearTimeout(timer), resolve(`error ${(e as NodeJS.ErrnoException).code}`)));
      s.on('close', () => (clearTimeout(timer), resolve('closed')));
      s.resume();
    });
    t.regex(closed, /^(closed|error ECONNRESET)$/, 'passt forwarded the connection to guest port 9, which reset it');
    t.is(await vm.done, 0, vm.err());
    t.regex(vm.out(), /virtio-net: served [1-9]\d* packets/);
    t.regex(vm.out(), /self-test: PASS/);
  } finally {
    vm.child.kill('SIGKILL');
  }
});

needing(['kvm', 'passt'], 'the no-argument run gets user-mode networking when passt is there, and a SIGKILLed VMM leaves no passt behind', async (t) => {
  const plain = cli(['run', '-m', '64', '-p', GUEST], passtEnv());
  t.is(plain.status, 0, plain.stderr);
  t.regex(plain.stdout, /virtio-net: [0-9a-f:]{17}: dhcp ok, address /);
  t.regex(plain.stdout, /self-test: PASS/);

  const vm = start(['run', '-m', '64', '-p', `${GUEST} spin`], { env: passtEnv() });
  await vm.until(/spin: looping/);
  // A thread or child can end between listing and reading /proc: it reads as empty.
  const proc = (path: string) => {
    try {
      return readFileSync(`/proc/${path}`, 'utf8');
    } catch {
      return '';
    }
  };
  const children = (pid: number) => readdirSync(`/proc/${pid}/task`).flatMap((tid) => proc(`${pid}/task/${tid}/children`).split(' ').filter(Boolean).map(Number));
  const passtPids = children(vm.child.pid!).filter((p) => /passt/.test(proc(`${p}/cmdline`)));
  t.is(passtPids.length, 1, 'passt runs as the VMM\'s child');
  vm.child.kill('SIGKILL');
  await vm.done;
  const deadline = Date.now() + scaled(10_000);
  const alive = () => /^State:\s+[^Z]/m.test(proc(`${passtPids[0]}/status`));
  while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.false(alive(), 'passt exited once the VMM\'s end of its socket closed');
});

needing(['kvm', 'passt', 'root', 'ip'], "mode=user in a namespace: ARP and ICMP echo to passt's gateway get answers", (t) => {
  const ns = `kvmts-passt-${process.pid}`;
  sh(`ip netns add ${ns}`);
  try {
    // A namespace whose default route leads to an address of its own: passt's gateway, reachable without leaving it.
    sh(
      `ip netns exec ${ns} sh -c 'ip link set lo up && ip link add kvp0 type veth peer name kvp1 && ip addr add 10.64.0.2/24 dev kvp0 && ip addr add 10.64.0.1/24 dev kvp1 && ip link set kvp0 up && ip link set kvp1 up && ip route add default via 10.64.0.1 dev kvp0 && sysctl -qw net.ipv4.ping_group_range="0 2147483647"'`,
    );
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, BIN, 'run', '-m', '64', '-n', 'mode=user', '-p', `${GUEST} kvmts.ping=10.64.0.1`], { encoding: 'utf8', timeout: scaled(90_000), env: passtEnv() });
    t.is(r.status, 0, r.stderr + r.stdout);
    t.regex(r.stdout, /dhcp ok, address 10\.64\.0\.2\/24 from 10\.64\.0\.1/);
    t.regex(r.stdout, /virtio-net: ping 10\.64\.0\.1: [1-9]\d* of \d+ replies: ok/);
  } finally {
    sh(`ip netns del ${ns}`);
  }
});


// ---- the default network when it cannot be given ----

/** The no-argument run without its default network: one line saying so, the net self-test skipped, the rest passing. */
function ranWithoutNetwork(t: ExecutionContext, r: { status: number | null; stdout: string; stderr: string }, why: RegExp) {
  t.is(r.status, 0, r.stderr + r.stdout);
  const lines = r.stderr.trimEnd().split('\n');
  t.is(lines.length, 1, r.stderr);
  t.regex(`${lines[0]}\n`, NO_NETWORK_LINE);
  t.regex(lines[0], why);
  t.regex(r.stdout, /^virtio-net: skipped \(no network device\)\r?$/m);
  t.notRegex(r.stdout, /virtio-net: eth\d/);
  t.regex(r.stdout, /self-test: PASS/);
}

needing(['kvm'], 'the no-argument run without passt: no network device, one line saying so, the net self-test skipped', (t) => {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: mkdtempSync(join(dir, 'path-')) };
  delete env.KVM_TS_PASST;
  ranWithoutNetwork(t, cli(['run', '-m', '64', '-p', GUEST], env), /passt is not installed/);
});

needing(['kvm', 'passt', 'root', 'ip'], 'in a namespace with no default route the no-argument run goes on without a network; an explicit -n mode=user still fails', (t) => {
  const ns = `kvmts-offline-${process.pid}`;
  sh(`ip netns add ${ns}`);
  try {
    sh(`ip netns exec ${ns} ip link set lo up`);
    const run = (args: string[]) => {
      const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, BIN, 'run', '-m', '64', ...args], { encoding: 'utf8', timeout: scaled(90_000), env: passtEnv() });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    ranWithoutNetwork(t, run(['-p', GUEST]), /passt \(.*\) exited/);
    oneLineError(t, run(['-n', 'mode=user', '-p', GUEST]), /^kvm-cli: --network: passt \(.*\) exited/);
  } finally {
    sh(`ip netns del ${ns}`);
  }
});
