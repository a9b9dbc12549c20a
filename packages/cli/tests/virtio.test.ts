/**
 * `kvm-cli run` with virtio devices, as users run it: disks (-d), entropy (--rng), the virtio
 * console, the built-in guest's checks of each, data safety across a SIGKILL, and a hostile guest.
 */
import test from 'ava';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { withoutNoNetworkLine } from './helpers/no-network.js';
import { kvmTests, scaled } from './helpers/kvm.js';

const BIN = fileURLToPath(new URL('../bin/kvm-cli.js', import.meta.url));
const kvm = kvmTests('virtio runs');

const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-cli-virtio-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, bytes: Uint8Array | number) => {
  const path = join(dir, name);
  if (typeof bytes === 'number') {
    const fd = openSync(path, 'w');
    ftruncateSync(fd, bytes);
    closeSync(fd);
  } else writeFileSync(path, bytes);
  return path;
};

function cli(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: scaled(90_000), input, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function oneLineError(t: import('ava').ExecutionContext, r: ReturnType<typeof cli>, pattern: RegExp) {
  t.is(r.status, 2, r.stderr);
  t.is(r.stdout, '', 'nothing from the guest: it never started');
  const lines = r.stderr.trimEnd().split('\n');
  t.is(lines.length, 1, r.stderr);
  t.regex(lines[0], pattern);
}

/** A VM left running (`spin`), for tests that need one holding a disk. */
async function running(args: string[], until: RegExp): Promise<{ kill: (sig: NodeJS.Signals) => Promise<void>; out: () => string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`guest did not get there: ${out} ${err}`)), scaled(60_000));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (until.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', () => reject(new Error(`VM ended early: ${out} ${err}`)));
  });
  return {
    kill: async (sig) => {
      child.kill(sig);
      await exited;
    },
    out: () => out,
  };
}

test('disks the VMM cannot use are one line before the guest starts, exit 2', (t) => {
  oneLineError(t, cli(['run', '-d', join(dir, 'missing.img')]), /^kvm-cli: --disk: .*missing\.img: no such file$/);
  mkdirSync(join(dir, 'adir'), { recursive: true });
  oneLineError(t, cli(['run', '-d', join(dir, 'adir')]), /--disk: .*adir is a directory/);
  oneLineError(t, cli(['run', '-d', file('odd.img', 1000)]), /--disk: .*odd\.img: size 1000 bytes is not a multiple of 512/);
  oneLineError(t, cli(['run', '-d', `${file('opt.img', 512)},fast`]), /--disk: unknown option 'fast'/);
  // Unwritable even for root: the immutable attribute (chmod does not stop root).
  const frozen = file('frozen.img', 4096);
  const root = process.getuid?.() === 0;
  if (root) execFileSync('chattr', ['+i', frozen]);
  else chmodSync(frozen, 0o444);
  try {
    oneLineError(t, cli(['run', '-d', frozen]), /--disk: .*frozen\.img cannot be opened for writing/);
  } finally {
    if (root) execFileSync('chattr', ['-i', frozen]);
  }
  oneLineError(t, cli(['run', '--console', 'bogus']), /--console: 'serial' or 'virtio', got 'bogus'/);
});

kvm('a disk another VM holds open for writing is refused: one line, exit 2', async (t) => {
  const shared = file('shared.img', 1 << 20);
  const first = await running(['run', '-d', shared, '-p', 'spin memtest=0'], /self-test: PASS/);
  try {
    oneLineError(t, cli(['run', '-d', shared]), /--disk: .*shared\.img is in use: another VM holds it open/);
    oneLineError(t, cli(['run', '-d', `${shared},ro`]), /is in use: another VM holds it open for writing/);
  } finally {
    await first.kill('SIGTERM');
  }
  t.is(cli(['run', '-d', `${shared},ro`, '-p', 'memtest=0']).status, 0, 'free again once that VM is gone');
});

kvm('the built-in guest checks each disk: crc32 of the first MiB (zlib), never writing it; a read-only disk refuses writes', (t) => {
  const big = randomBytes(3 << 19); // 1.5 MiB: the first 1 MiB counts
  const small = randomBytes(64 << 10);
  const a = file('a.img', big);
  const b = file('b.img', small);
  const r = cli(['run', '-d', a, '-d', `${b},ro`, '-p', 'memtest=0']);
  t.is(r.status, 0, r.stderr + r.stdout);
  const hex = (v: number) => `0x${(v >>> 0).toString(16).padStart(8, '0')}`;
  t.regex(r.stdout, new RegExp(`virtio-blk: vda: 3072 sectors, crc32 ${hex(crc32(big.subarray(0, 1 << 20)))} of the first 1048576 bytes: ok`));
  t.regex(r.stdout, new RegExp(`virtio-blk: vdb: 128 sectors, ro, crc32 ${hex(crc32(small))} of the first 65536 bytes: ok`));
  t.regex(r.stdout, /virtio-blk: vdb: a write is refused with IOERR on a read-only disk: ok/);
  t.regex(r.stdout, /virtio-rng: .*: ok/);
  t.regex(r.stdout, /self-test: PASS/);
  t.deepEqual(readFileSync(a), big, 'an attached disk is not written by default');
  t.deepEqual(readFileSync(b), small);
});

kvm('data safety: every byte the guest flushed is in the file after the VMM is SIGKILLed (O_DIRECT)', async (t) => {
  const img = file('fill.img', 16 << 20);
  const vm = await running(['run', '-d', `${img},direct`, '-p', 'kvmts.fill=8 spin memtest=0'], /virtio-blk: vda: filled 8 MiB, flushed/);
  await vm.kill('SIGKILL');
  const data = readFileSync(img);
  let bad = -1;
  for (let o = 0; o < 8 << 20 && bad < 0; o++) if (data[o] !== (((o >> 9) * 7 + (o & 511)) & 0xff)) bad = o;
  t.is(bad, -1, `first wrong byte at ${bad}`);
  t.true(data.subarray(8 << 20).every((x) => x === 0), 'nothing past the fill');
}, { testbedGap: "the testbed's TMPDIR is a tmpfs, which has no O_DIRECT before Linux 6.6: left to hosts with /dev/kvm" });

kvm('kvmts.hostile runs to a clean exit; --json records needs-reset counts and the paths taken', (t) => {
  const before = readdirSync(tmpdir()).filter((n) => n.startsWith('kvm-ts-scratch-')).length;
  const r = cli(['run', '--json', '-p', 'kvmts.hostile'], '');
  t.is(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  t.regex(r.stderr, /self-test: PASS/);
  const diagnostics = withoutNoNetworkLine(r.stderr).split('\n').filter((l) => l.startsWith('kvm-cli:'));
  t.true(diagnostics.length <= 6, diagnostics.join('\n'));
  t.deepEqual(summary.virtio.map((d: { name: string }) => d.name), ['virtio-blk vda', 'virtio-rng', 'virtio-console hvc0']);
  for (const d of summary.virtio) {
    t.true(d.needsReset > 0, d.name);
    t.deepEqual(d.paths, { notify: 'ioeventfd', interrupt: 'irqfd' });
  }
  t.is(readdirSync(tmpdir()).filter((n) => n.startsWith('kvm-ts-scratch-')).length, before, 'the scratch disk is gone');
});

kvm('without ioeventfd and irqfd the same devices work through MMIO exits and KVM_IRQ_LINE, and --json says so', (t) => {
  const r = cli(['run', '--json', '--without-cap', 'KVM_CAP_IOEVENTFD,KVM_CAP_IRQFD', '-p', 'memtest=0']);
  t.is(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  for (const d of summary.virtio) {
    t.deepEqual(d.paths, { notify: 'mmio', interrupt: 'irq-line' }, d.name);
    t.true(d.notifications.mmio > 0 && d.notifications.ioeventfd === 0, d.name);
    t.true(d.interruptsBy['irq-line'] > 0 && d.interruptsBy.irqfd === 0, d.name);
  }
  t.regex(r.stderr, /virtio-console: hvc0: .*: ok/);
});

kvm('--console virtio: hvc0 output on stdout, piped stdin reaches the guest through hvc0', (t) => {
  const r = cli(['run', '--console', 'virtio', '-p', 'kvmts.echo memtest=0'], 'ping\n');
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /cmdline: "console=hvc0 /);
  t.regex(r.stdout, /hvc0: hello from the kvm-ts test guest\r\n/);
  t.regex(r.stdout, /virtio-console: hvc0: received 5 bytes: "ping\."/);
});
