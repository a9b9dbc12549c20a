import test from 'ava';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { avaRuns, matchPattern, progressDir, readDeferred, runDeferred, type AvaRun } from '../src/deferred.js';
import { ciSummary, skipReasons } from '../src/ci-summary.js';
import { hostKvm, kvmLacking } from '../src/host-kvm.js';

test('deferred tests run per package in a stable order, each title matched as one --match= argument, ava\'s inactivity timeout stretched', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-deferred-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ ava: { timeout: '120s' } }));
  const list = join(dir, 'deferred.jsonl');
  const a = join(dir, 'tests', 'a.test.ts');
  const b = join(dir, 'tests', 'b.test.ts');
  writeFileSync(list, [{ file: b, title: 'y' }, { file: a, title: '--json prints' }, { file: a, title: 'x' }, { file: a, title: 'x' }].map((d) => JSON.stringify(d)).join('\n'));
  const tests = readDeferred(list);
  t.is(tests.length, 3, 'duplicates once');
  const runs = avaRuns(tests, 10);
  t.deepEqual(runs.map((r) => [r.cwd, r.tests]), [[dir, 3]]);
  t.deepEqual(runs[0].args, ['--no-install', 'ava', '--no-color', '--timeout=400s', a, b, '--match=y', '--match=--json prints', '--match=x']);
  t.is(matchPattern('!negated'), '*negated');
});

test('a deferred pass started again after the machine died skips finished packages and reruns the one it was in; each package\'s last output is what counts', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-deferred-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const files = ['a', 'b', 'c'].map((n) => {
    mkdirSync(join(dir, n));
    writeFileSync(join(dir, n, 'package.json'), '{}');
    return join(dir, n, 'tests', 't.test.ts');
  });
  const list = join(dir, 'deferred.jsonl');
  writeFileSync(list, files.map((file) => JSON.stringify({ file, title: 't' })).join('\n'));
  const ran: string[] = [];
  class MachineDied extends Error {}
  // First boot: a passes, b fails, c prints one mark and the machine dies under it.
  const firstBoot = async (run: AvaRun, out: (b: Buffer) => void) => {
    ran.push(run.cwd);
    out(Buffer.from(run.cwd === join(dir, 'b') ? '  ✘ b\n' : '  ✔ first\n'));
    if (run.cwd === join(dir, 'c')) throw new MachineDied();
    return run.cwd === join(dir, 'b') ? 1 : 0;
  };
  await t.throwsAsync(runDeferred(list, firstBoot, () => {}), { instanceOf: MachineDied });
  t.deepEqual(ran, ['a', 'b', 'c'].map((n) => join(dir, n)));
  const secondBoot = async (run: AvaRun, out: (b: Buffer) => void) => {
    ran.push(run.cwd);
    out(Buffer.from('  ✔ second\n'));
    return 0;
  };
  t.is(await runDeferred(list, secondBoot, () => {}), 1, 'b\'s failure from the first boot still counts');
  t.deepEqual(ran, ['a', 'b', 'c', 'c'].map((n) => join(dir, n)), 'only c ran again');
  const logs = readdirSync(progressDir(list)).filter((f) => f.endsWith('.log')).sort().map((f) => readFileSync(join(progressDir(list), f), 'utf8'));
  t.deepEqual(logs, ['  ✔ first\n', '  ✘ b\n', '  ✔ second\n']);
  t.is(await runDeferred(list, secondBoot, () => {}), 1, 'a third pass runs nothing');
  t.is(ran.length, 4);
});

test("hosts are told apart, and KVM_TS_HOST_KVM rehearses a weaker one", (t) => {
  t.is(hostKvm({ KVM_TS_HOST_KVM: 'none' }), 'none');
  t.is(kvmLacking('kvm', 'none'), '/dev/kvm is absent on this host');
  t.is(kvmLacking('kvm', 'pvm'), undefined);
  t.regex(kvmLacking('linux', 'pvm')!, /kvm_pvm, which cannot boot a stock Linux/);
  t.is(kvmLacking('linux', 'full'), undefined);
});

test("CI's summary: where each KVM test ran, and the skips by reason", (t) => {
  const host = [
    '@kvm-ts/cli:test:   - [skip] run › a — deferred to the testbed',
    '  - [skip] net › b — skipped: passt is not installed',
    '  - [skip] net › c — skipped: passt is not installed',
    '  ✔ run › d',
  ].join('\n');
  const ledger = [
    { file: 'f', title: 'a', where: 'deferred' as const },
    { file: 'f', title: 'd', where: 'host' as const },
  ];
  t.deepEqual([...skipReasons(host)], [['deferred to the testbed', 1], ['passt is not installed', 2]]);
  t.is(ciSummary('pvm', ledger, host, '  ✔ run › a\n'), "1 KVM tests on this host's /dev/kvm (kvm_pvm), 1 in the testbed (1 passed, 0 failed there), 2 skipped (2: passt is not installed)");
});
