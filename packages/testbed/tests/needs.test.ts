/** Where a KVM test goes on each kind of host and in each mode (needs.ts), run through ava itself. */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const FIXTURE = fileURLToPath(new URL('./fixtures/needs/', import.meta.url));
const AVA = fileURLToPath(new URL('../node_modules/ava/entrypoints/cli.mjs', import.meta.url));
const avaCli = existsSync(AVA) ? AVA : fileURLToPath(new URL('../../../node_modules/ava/entrypoints/cli.mjs', import.meta.url));

function run(host: string, env: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-needs-'));
  try {
    const files = { KVM_TS_TEST_LEDGER: join(dir, 'ledger'), ...(env.defer ? { KVM_TS_TESTBED_DEFER: join(dir, 'defer') } : {}) };
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(CI|KVM_TS_TESTBED.*|KVM_TS_TEST_LEDGER)$/.test(k)));
    const r = spawnSync(process.execPath, [avaCli, '--no-color', '--verbose'], {
      cwd: FIXTURE,
      encoding: 'utf8',
      env: { ...base, ...env, ...files, KVM_TS_HOST_KVM: host },
      timeout: 60_000,
    });
    const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
    return { out: r.stdout + r.stderr, status: r.status, ledger: read(files.KVM_TS_TEST_LEDGER), deferred: 'KVM_TS_TESTBED_DEFER' in files ? read(files.KVM_TS_TESTBED_DEFER!) : [] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test.serial('.ci/run on a host without /dev/kvm: every KVM test is deferred, listed with its file, and nothing fails', (t) => {
  const r = run('none', { CI: 'true', defer: '1' });
  t.is(r.status, 0, r.out);
  t.deepEqual(r.deferred.map((d) => d.title), ['runs on any kvm', 'lacks a tool', 'boots linux', 'needs what the emulator lacks']);
  t.true(r.deferred.every((d) => d.file.endsWith('groups.fixture.ts')));
  t.regex(r.out, /- \[skip\] runs on any kvm — deferred to the testbed/);
  t.deepEqual(r.ledger.map((l) => l.where), ['deferred', 'deferred', 'deferred', 'deferred']);
});

test.serial('.ci/run on kvm_pvm: only the Linux-booting test is deferred; a missing tool still fails under CI', (t) => {
  const r = run('pvm', { CI: 'true', defer: '1' });
  t.deepEqual(r.deferred.map((d) => d.title), ['boots linux']);
  t.regex(r.out, /✔ runs on any kvm/);
  t.regex(r.out, /✘ \[fail\]: lacks a tool/);
  t.not(r.status, 0);
  t.deepEqual(r.ledger.map((l) => [l.title, l.where]), [['runs on any kvm', 'host'], ['lacks a tool', 'failed'], ['boots linux', 'deferred'], ['needs what the emulator lacks', 'host']]);
});

test.serial('CI=true without deferral: a host that lacks KVM fails, once per group, saying why', (t) => {
  const r = run('none', { CI: 'true' });
  t.not(r.status, 0);
  t.regex(r.out, /✘ \[fail\]: any-kvm group: \/dev\/kvm is absent on this host but CI=true requires it/);
  t.regex(r.out, /✘ \[fail\]: linux group: \/dev\/kvm is absent on this host but CI=true requires it/);
  t.notRegex(r.out, /✔/);
});

test.serial("a newcomer's npm test without /dev/kvm: skips only, one mark per group with the testbed hint", (t) => {
  const r = run('none', {});
  t.is(r.status, 0, r.out);
  t.regex(r.out, /- \[skip\] any-kvm group — skipped: \/dev\/kvm is absent on this host; run them with: npm run testbed -- npm test/);
  t.notRegex(r.out, /✔|✘/);
  t.is((r.out.match(/- \[skip\]/g) ?? []).length, 6, 'two group marks and four skipped tests');
});

test.serial('a host that can: everything runs, and a missing tool is a visible skip outside CI', (t) => {
  const r = run('full', {});
  t.regex(r.out, /✔ runs on any kvm/);
  t.regex(r.out, /✔ boots linux/);
  t.regex(r.out, /- \[skip\] lacks a tool — skipped: no frobnicator/);
});

test.serial('inside the testbed a test the emulator cannot serve is a visible skip, even under CI', (t) => {
  const r = run('full', { CI: 'true', KVM_TS_TESTBED: '1' });
  t.regex(r.out, /- \[skip\] needs what the emulator lacks — skipped: QEMU lacks the frob/);
  t.regex(r.out, /✔ boots linux/);
});
