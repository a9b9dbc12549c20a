import test from 'ava';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskImage } from '../src/devices/virtio/disk-image.js';
import { builtinGuestPath } from '../src/guest-image.js';
import { Machine } from '../src/machine.js';
import { kvmTests } from './helpers/kvm.js';

const t = kvmTests('virtio with the built-in guest');

const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-virtio-guest-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function sparse(name: string, bytes: number): string {
  const path = join(dir, name);
  const fd = openSync(path, 'w');
  ftruncateSync(fd, bytes);
  closeSync(fd);
  return path;
}

async function boot(without: string[], params = '') {
  let out = '';
  const logs: string[] = [];
  const machine = Machine.create({
    kernel: readFileSync(builtinGuestPath()),
    cmdline: `console=ttyS0 kvmts.scratch ${params}`,
    memBytes: 64 << 20,
    cpus: 1,
    hostDecompress: true,
    debugExit: true,
    timeoutMs: 60_000,
    console: (b) => (out += Buffer.from(b).toString('latin1')),
    log: (l) => logs.push(l),
    mask: { without },
    disks: [DiskImage.open({ path: sparse(`scratch-${without.length}.img`, 16 << 20) })],
    rng: true,
    virtioConsole: true,
  });
  const summary = await machine.runToEnd();
  return { summary, out, logs, stats: machine.virtioStats() };
}

for (const masked of [false, true]) {
  const without = masked ? ['KVM_CAP_IOEVENTFD', 'KVM_CAP_IRQFD'] : [];
  const paths = masked ? { notify: 'mmio', interrupt: 'irq-line' } : { notify: 'ioeventfd', interrupt: 'irqfd' };
  t(`blk, rng and console pass the guest's self-tests with notifications by ${paths.notify} and interrupts by ${paths.interrupt}`, async (tt) => {
    const { summary, out, logs, stats } = await boot(without);
    tt.is(summary.status, 0, `${summary.message}\n${out}\n${logs.join('\n')}`);
    tt.regex(out, /virtio-blk: vda: 32768 sectors, wrote, flushed and read back 4096 KiB, indirect read, id "scratch-\d\.img", 1 completion by interrupt: ok/);
    tt.regex(out, /virtio-rng: .* neither constant nor repeating: ok/);
    tt.regex(out, /hvc0: hello from the kvm-ts test guest\r\n/);
    tt.regex(out, /virtio-console: hvc0: .*: ok/);
    tt.regex(out, /self-test: PASS/);
    tt.deepEqual(logs, []);
    tt.deepEqual(stats.map((s) => s.name), ['virtio-blk vda', 'virtio-rng', 'virtio-console hvc0']);
    for (const s of stats) {
      tt.deepEqual(s.paths, paths, s.name);
      const other = masked ? 'ioeventfd' : 'mmio';
      tt.true(s.notifications[paths.notify as 'mmio' | 'ioeventfd'] > 0, `${s.name} got notifications by ${paths.notify}`);
      tt.is(s.notifications[other], 0, `${s.name}: none by ${other}`);
      tt.true(s.interruptsBy[paths.interrupt as 'irqfd' | 'irq-line'] >= 1, `${s.name} interrupted by ${paths.interrupt}`);
      tt.is(s.needsReset, 0);
    }
    tt.true(stats[0].queues[0].bytes >= 8 << 20, 'wrote and read back 4 MiB');
    // Doorbells caught by ioeventfd never become MMIO exits: only the MMIO path pays one per notification.
    const mmioExits = summary.exits.byReason.KVM_EXIT_MMIO ?? 0;
    const notifications = stats.reduce((n, s) => n + s.notifications.ioeventfd + s.notifications.mmio, 0);
    if (masked) tt.true(mmioExits >= notifications);
    else tt.true(mmioExits < 200, `${mmioExits} MMIO exits`);
  });
}

t('kvmts.hostile: every device misdriven, each needs a reset, the VM runs on and the guest ends normally', async (tt) => {
  const { summary, out, logs, stats } = await boot([], 'kvmts.hostile=3');
  tt.is(summary.status, 0, `${summary.message}\n${out}\n${logs.join('\n')}`);
  tt.regex(out, /virtio: hostile driving of 3 devices done, each reset/);
  tt.regex(out, /self-test: PASS/, 'the devices work again after their reset');
  for (const s of stats) tt.true(s.needsReset > 0, `${s.name} was set to DEVICE_NEEDS_RESET`);
  tt.true(logs.length <= 2 * stats.length, `at most two lines per device, got:\n${logs.join('\n')}`);
  tt.true(logs.every((l) => /device needs reset|not a 32-bit|config space/.test(l)), logs.join('\n'));
});
