import test from 'ava';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { kvmTests } from './helpers/kvm.js';

const BIN = fileURLToPath(new URL('../bin/kvm-cli.js', import.meta.url));
const kvm = kvmTests('caps on a real device', { serial: false });

const cli = (args: string[], env: NodeJS.ProcessEnv = process.env) =>
  spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env });

test('without a KVM device, caps says virtualization is unavailable in one line and exits 1', (t) => {
  const r = cli(['caps'], { ...process.env, KVM_TS_DEVICE: '/nonexistent/kvm' });
  t.is(r.status, 1);
  t.is(r.stdout, '');
  t.regex(r.stderr, /^kvm-cli: \/nonexistent\/kvm does not exist: hardware virtualization is unavailable \(enable VT-x\/AMD-V.*kvm_intel\/kvm_amd\)\n$/);
});

kvm('caps --json lists every KVM_CAP_* of the spec with presence, value and kvm-ts marks', (t) => {
  const r = cli(['caps', '--json']);
  t.is(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  t.is(report.apiVersion, 12);
  t.true(report.capabilities.length > 100);
  const byName = new Map<string, { present: boolean; value: number; required: boolean; used: boolean; number: number }>(
    report.capabilities.map((c: { name: string }) => [c.name, c]),
  );
  t.like(byName.get('KVM_CAP_IRQCHIP'), { number: 0, present: true, required: true });
  t.like(byName.get('KVM_CAP_IMMEDIATE_EXIT'), { required: false, used: true });
  t.true(byName.get('KVM_CAP_MAX_VCPUS')!.value >= 1);
  for (const c of byName.values()) t.is(c.present, c.value > 0);
  t.deepEqual(report.missingRequired, []);
});

kvm('caps prints a table with R and U marks', (t) => {
  const r = cli(['caps']);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^\/dev\/kvm: KVM API version 12 /);
  t.regex(r.stdout, /^R KVM_CAP_IRQCHIP +0 +yes 1$/m);
  t.regex(r.stdout, /^U KVM_CAP_IMMEDIATE_EXIT +\d+ +(yes \d+|no)$/m);
});

test('caps rejects extra arguments with one line, exit 2', (t) => {
  const r = cli(['caps', '--nope']);
  t.is(r.status, 2);
  t.is(r.stderr.trimEnd().split('\n').length, 1);
});
