/**
 * virtio-blk against the host, in one sitting: the built-in guest writes and then reads M MiB of a
 * raw image sequentially (1 MiB requests, 8 in flight) and does N random 4 KiB reads one at a time,
 * then N more with 8 in flight (`kvmts.bench=M kvmts.iops=N`), marking each phase on port 0x80, whose writes the debug port
 * timestamps on the host; the host then writes, reads and preads the same file the same way (1 MiB
 * writeSync/readSync, 4 KiB preads at the same offsets). Rounds alternate which side goes first;
 * medians of the ratios. Then, per notification/interrupt path (ioeventfd+irqfd, and both masked),
 * sequential runs of M/2 and M MiB give the MMIO exits, notifications and interrupts per MiB moved.
 *
 * usage: npx tsx --conditions=kvm-ts-source scripts/bench-virtio.ts [MiB] [READS] [ROUNDS]
 */
import { closeSync, fdatasyncSync, ftruncateSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskImage } from '../src/devices/virtio/disk-image.js';
import { builtinGuestPath } from '../src/guest-image.js';
import { Machine } from '../src/machine.js';

const MIB = Number(process.argv[2] ?? 128);
const READS = Number(process.argv[3] ?? 20_000);
const ROUNDS = Number(process.argv[4] ?? 3);
const CHUNK = 1 << 20;

const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-bench-virtio-'));
const img = join(dir, 'bench.img');
const kernel = readFileSync(builtinGuestPath());

interface GuestRun {
  writeMs: number;
  readMs: number;
  randMs: number;
  rand8Ms: number;
  mmioExits: number;
  notifications: number;
  interrupts: number;
  /** MiB the disk's queue moved over the whole run. */
  movedMiB: number;
  paths: string;
}

async function guest(without: string[] = [], reads = READS, mib = MIB): Promise<GuestRun> {
  const marks = new Map<number, number>();
  let out = '';
  const machine = Machine.create({
    kernel,
    cmdline: `console=ttyS0 memtest=0 kvmts.bench=${mib} kvmts.iops=${reads}`,
    memBytes: 256 << 20,
    cpus: 1,
    hostDecompress: true,
    debugPort: true,
    // The built-in guest ends through the debug-exit port, as `kvm-cli run` gives it.
    debugExit: true,
    timeoutMs: 600_000,
    console: (b) => (out += Buffer.from(b).toString('latin1')),
    log: (line) => {
      const m = /code 0x([0-9a-f]+) at ([0-9.]+) s/.exec(line);
      if (m) marks.set(parseInt(m[1], 16), Number(m[2]) * 1000);
    },
    mask: { without },
    disks: [DiskImage.open({ path: img })],
  });
  const summary = await machine.runToEnd();
  if (summary.status !== 0 || !/benchmark, sequential .*: ok/.test(out)) throw new Error(`guest run failed: ${summary.message}\n${out}`);
  const span = (a: number, b: number) => marks.get(b)! - marks.get(a)!;
  const [blk] = machine.virtioStats();
  return {
    writeMs: span(0x10, 0x11),
    readMs: span(0x12, 0x13),
    randMs: reads ? span(0x14, 0x15) : 0,
    rand8Ms: reads ? span(0x16, 0x17) : 0,
    mmioExits: summary.exits.byReason.KVM_EXIT_MMIO ?? 0,
    notifications: blk.notifications.ioeventfd + blk.notifications.mmio,
    interrupts: blk.interrupts,
    movedMiB: blk.queues[0].bytes / (1 << 20),
    paths: `${blk.paths.notify}+${blk.paths.interrupt}`,
  };
}

/** The guest's pattern and its pseudo-random offsets, the same on the host. */
function host(): { writeMs: number; readMs: number; randMs: number } {
  const fd = openSync(img, 'r+');
  const buf = Buffer.alloc(CHUNK);
  for (let i = 0; i < CHUNK; i++) buf[i] = (i * 7 + (i >> 9)) & 0xff;
  let t = performance.now();
  for (let off = 0; off < MIB << 20; off += CHUNK) writeSync(fd, buf, 0, CHUNK, off);
  const writeMs = performance.now() - t;
  fdatasyncSync(fd);
  t = performance.now();
  for (let off = 0; off < MIB << 20; off += CHUNK) readSync(fd, buf, 0, CHUNK, off);
  const readMs = performance.now() - t;
  const blocks = BigInt(((MIB + 1) << 20) / 4096); // the guest's: its disk's size in 4 KiB blocks
  let x = 0x9e37_79b9_7f4a_7c15n;
  const mask = (1n << 64n) - 1n;
  t = performance.now();
  for (let i = 0; i < READS; i++) {
    x ^= (x << 13n) & mask;
    x ^= x >> 7n;
    x ^= (x << 17n) & mask;
    readSync(fd, buf, 0, 4096, Number((x % blocks) * 4096n));
  }
  const randMs = performance.now() - t;
  closeSync(fd);
  return { writeMs, readMs, randMs };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mbps = (ms: number) => (MIB * 1.048576) / (ms / 1000);

try {
  const fd = openSync(img, 'w');
  ftruncateSync(fd, (MIB + 1) << 20);
  closeSync(fd);
  host(); // the file's pages in the page cache before anyone is timed
  const rows: Array<{ g: GuestRun; h: ReturnType<typeof host> }> = [];
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2 === 0) {
      const g = await guest();
      rows.push({ g, h: host() });
    } else {
      const h = host();
      rows.push({ g: await guest(), h });
    }
  }
  const ratio = (f: (x: { g: GuestRun; h: ReturnType<typeof host> }) => number) => Math.round(median(rows.map(f)) * 1000) / 1000;
  // Marginal counts per MiB of sequential I/O: a run of 2M MiB minus a run of M MiB, so device
  // set-up, the crc32 read and the one interrupt-driven completion cancel out.
  const paths = [];
  for (const without of [[], ['KVM_CAP_IOEVENTFD', 'KVM_CAP_IRQFD']]) {
    const [a, b] = [await guest(without, 0, MIB / 2), await guest(without, 0, MIB)];
    const moved = b.movedMiB - a.movedMiB;
    const per = (x: number, y: number) => Math.round(((y - x) / moved) * 1000) / 1000;
    paths.push({
      paths: b.paths,
      perMiB: { mmioExits: per(a.mmioExits, b.mmioExits), notifications: per(a.notifications, b.notifications), interrupts: per(a.interrupts, b.interrupts) },
      wholeRun: { movedMiB: Math.round(b.movedMiB), mmioExits: b.mmioExits, notifications: b.notifications, interrupts: b.interrupts },
    });
  }
  console.log(
    JSON.stringify(
      {
        mib: MIB,
        randomReads: READS,
        rounds: ROUNDS,
        seqWrite: { guestMBps: Math.round(median(rows.map((x) => mbps(x.g.writeMs)))), hostMBps: Math.round(median(rows.map((x) => mbps(x.h.writeMs)))), medianRatio: ratio((x) => x.h.writeMs / x.g.writeMs) },
        seqRead: { guestMBps: Math.round(median(rows.map((x) => mbps(x.g.readMs)))), hostMBps: Math.round(median(rows.map((x) => mbps(x.h.readMs)))), medianRatio: ratio((x) => x.h.readMs / x.g.readMs) },
        randRead4k: {
          guestIops: Math.round(median(rows.map((x) => READS / (x.g.randMs / 1000)))),
          guestIopsDepth8: Math.round(median(rows.map((x) => READS / (x.g.rand8Ms / 1000)))),
          hostPreadIops: Math.round(median(rows.map((x) => READS / (x.h.randMs / 1000)))),
          medianRatio: ratio((x) => x.h.randMs / x.g.randMs),
          medianRatioDepth8: ratio((x) => x.h.randMs / x.g.rand8Ms),
        },
        countsPerMiB: paths,
        perRound: rows.map(({ g, h }) => ({
          guestMs: [g.writeMs, g.readMs, g.randMs, g.rand8Ms].map((v) => Math.round(v * 10) / 10),
          hostMs: [h.writeMs, h.readMs, h.randMs].map((v) => Math.round(v * 10) / 10),
        })),
        loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
      },
      null,
      1,
    ),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
