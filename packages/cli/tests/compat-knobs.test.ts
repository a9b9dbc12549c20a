/**
 * `run` and `caps` with the compatibility knobs (docs/compatibility.md): the VMM on an older spec
 * (--abi), answering as an older kernel (--kernel-caps-as / caps --as), without single capabilities.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { kvmTests, scaled } from './helpers/kvm.js';

const BIN = fileURLToPath(new URL('../bin/kvm-cli.js', import.meta.url));
const kvm = kvmTests('compatibility knobs on a real device');

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function oneLine(t: import('ava').ExecutionContext, r: ReturnType<typeof cli>, status: number, pattern: RegExp) {
  t.is(r.status, status, r.stderr);
  t.is(r.stdout, '', 'nothing from the guest');
  t.is(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  t.regex(r.stderr, pattern);
}

test('bad knob values are one line, exit 2', (t) => {
  oneLine(t, cli(['run', '--abi', '4.19']), 2, /^kvm-cli: --abi: no x86_64 spec '4\.19' \(pinned: 5\.10, 6\.1, 6\.12, 7\.2, 7\.2\+local\)\n$/);
  oneLine(t, cli(['run', '--kernel-caps-as', 'old']), 2, /^kvm-cli: --kernel-caps-as: no x86_64 spec 'old'/);
  oneLine(t, cli(['run', '--without-cap', 'KVM_CAP_IRQFD,KVM_CAP_NOPE']), 2, /^kvm-cli: --without-cap: 'KVM_CAP_NOPE' is not a KVM_CAP_\* of any pinned spec\n$/);
  oneLine(t, cli(['caps', '--as', '9']), 2, /^kvm-cli: --as: no x86_64 spec '9'/);
});

for (const abi of ['5.10', '6.1', '6.12', '7.2', '7.2+local']) {
  kvm(`the VMM on the ${abi} spec boots the built-in guest to self-test: PASS`, (t) => {
    const r = cli(['run', '--abi', abi, '--json', '--timeout', String(scaled(60))]);
    t.is(r.status, 0, r.stderr);
    t.regex(r.stderr, /self-test: PASS/);
    const summary = JSON.parse(r.stdout);
    t.is(summary.abi, abi);
    t.is(summary.exitReason, 'debug-exit');
  });
}

kvm('a masked required capability refuses the VM up front: one line naming it and what needs it, exit 1', (t) => {
  oneLine(t, cli(['run', '--without-cap', 'KVM_CAP_IRQCHIP']), 1, /^kvm-cli: required capability missing: KVM_CAP_IRQCHIP is masked \(--without-cap\) \(kvm-ts needs it for in-kernel PIC, IOAPIC and LAPICs\)\n$/);
});

kvm('masked optional capabilities: their fallbacks run, listed in --json and with -v one line each', (t) => {
  const r = cli(['run', '--without-cap', 'KVM_CAP_IMMEDIATE_EXIT', '--without-cap', 'KVM_CAP_IRQFD,KVM_CAP_TSC_DEADLINE_TIMER', '-v', '--json']);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stderr, /self-test: PASS/);
  const { fallbacks } = JSON.parse(r.stdout);
  t.deepEqual(fallbacks, [
    { capability: 'KVM_CAP_IMMEDIATE_EXIT', fallback: 're-kick every 2 ms until the vCPU acknowledges' },
    { capability: 'KVM_CAP_TSC_DEADLINE_TIMER', fallback: 'not advertised: the guest uses the LAPIC timer' },
    { capability: 'KVM_CAP_IRQFD', fallback: 'KVM_IRQ_LINE from the VMM' },
  ]);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('kvm-cli: fallback: '));
  t.deepEqual(lines, fallbacks.map((f: { capability: string; fallback: string }) => `kvm-cli: fallback: ${f.capability} absent: ${f.fallback}`));
  const quiet = cli(['run', '--without-cap', 'KVM_CAP_IRQFD']);
  t.is(quiet.status, 0);
  t.notRegex(quiet.stderr, /fallback/, 'text mode says nothing without -v');
});

kvm('--kernel-caps-as 5.10: what 5.10 lacks reads as absent; caps --as shows the same without starting a VM', (t) => {
  const caps = cli(['caps', '--as', '5.10', '--json']);
  t.is(caps.status, 0, caps.stderr);
  const report = JSON.parse(caps.stdout);
  t.is(report.kernelAs, '5.10');
  t.is(report.refused, null);
  const newer = report.capabilities.filter((c: { masked?: string }) => c.masked === 'kernel-as');
  t.true(newer.length > 10, 'capabilities added after 5.10 read as absent');
  for (const c of newer) t.false(c.present);
  const run = cli(['run', '--kernel-caps-as', '5.10', '--json']);
  t.is(run.status, 0, run.stderr);
  t.deepEqual(JSON.parse(run.stdout).fallbacks, report.fallbacks, 'caps predicts what a run takes');
});

kvm('caps --without-cap of a required capability says the VM would be refused, exit 1', (t) => {
  const r = cli(['caps', '--without-cap', 'KVM_CAP_HLT']);
  t.is(r.status, 1);
  t.regex(r.stdout, /^R KVM_CAP_HLT +\d+ +no \(masked: --without-cap\)$/m);
  t.regex(r.stdout, /^a VM would be refused: required capability missing: KVM_CAP_HLT is masked/m);
  const ok = cli(['caps', '--abi', '7.2+local', '--without-cap', 'KVM_CAP_IRQFD']);
  t.is(ok.status, 0, ok.stderr);
  t.regex(ok.stdout, /^a VM would fall back: KVM_CAP_IRQFD absent: KVM_IRQ_LINE from the VMM$/m);
  t.regex(ok.stdout, /^a VM would fall back: KVM_CAP_KVMTS_VM_TAG absent: the VM tag stays in userspace$/m);
});
