import { readFileSync } from 'node:fs';
import { builtinGuestPath } from '../src/guest-image.js';
import { Machine } from '../src/machine.js';
import type { VirtioPciDeviceStats } from '../src/devices/virtio/pci-platform.js';
import { kvmTests } from './helpers/kvm.js';

const t = kvmTests('virtio-pci with the built-in guest');

async function boot(without: string[]) {
  let out = '';
  const logs: string[] = [];
  const machine = Machine.create({
    kernel: readFileSync(builtinGuestPath()),
    cmdline: 'console=ttyS0 memtest=0',
    memBytes: 64 << 20,
    cpus: 1,
    hostDecompress: true,
    debugExit: true,
    timeoutMs: 60_000,
    console: (b) => (out += Buffer.from(b).toString('latin1')),
    log: (l) => logs.push(l),
    mask: { without },
    rng: true,
    transport: 'pci',
  });
  const summary = await machine.runToEnd();
  return { summary, out, logs, stats: machine.virtioStats() as VirtioPciDeviceStats[] };
}

const cases: Array<{ without: string[]; notify: string; interrupt: string }> = [
  { without: [], notify: 'ioeventfd', interrupt: 'irqfd' },
  { without: ['KVM_CAP_IRQFD'], notify: 'ioeventfd', interrupt: 'signal-msi' },
  { without: ['KVM_CAP_IRQ_ROUTING', 'KVM_CAP_IOEVENTFD'], notify: 'mmio', interrupt: 'signal-msi' },
];

for (const c of cases) {
  const masked = c.without.length ? ` (${c.without.join(', ')} masked)` : '';
  t(`the guest finds virtio-rng through ECAM and completes a request by MSI-X over ${c.interrupt}, doorbell by ${c.notify}${masked}`, async (tt) => {
    const { summary, out, logs, stats } = await boot(c.without);
    tt.is(summary.status, 0, `${summary.message}\n${out}\n${logs.join('\n')}`);
    tt.regex(out, /pci: 00:00\.0 1b36:0008 class 060000/);
    tt.regex(out, /pci: 00:01\.0 1af4:1044 class ff0000/);
    tt.regex(out, /virtio-pci: 00:01\.0 virtio-rng: BAR 0 of 16 KiB, 64 bytes, 1 completion by MSI-X: ok/);
    tt.regex(out, /pci: 2 functions on bus 0/);
    tt.regex(out, /self-test: PASS/);
    tt.notRegex(out, /virtio_mmio\.device=/);
    tt.deepEqual(logs, []);
    const [rng] = stats;
    tt.like(rng, { name: 'virtio-rng', pci: '00:01.0', paths: { notify: c.notify, interrupt: c.interrupt }, needsReset: 0 });
    tt.is(rng.interruptsBy[c.interrupt], 1, 'one MSI-X message, by the path the capabilities chose');
    tt.is(rng.msix.sent, 1);
    tt.true(rng.notifications[c.notify as 'mmio' | 'ioeventfd'] >= 1);
    tt.is(rng.queues[0].bytes, 64);
  });
}
