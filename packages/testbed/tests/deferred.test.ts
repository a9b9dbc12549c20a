import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { avaRuns, matchPattern, readDeferred } from '../src/deferred.js';
import { ciSummary, skipReasons } from '../src/ci-summary.js';
import { hostKvm, kvmLacking } from '../src/host-kvm.js';

test('deferred tests run per package, each title matched as one --match= argument, ava\'s inactivity timeout stretched', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-deferred-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ ava: { timeout: '120s' } }));
  const list = join(dir, 'deferred.jsonl');
  const file = join(dir, 'tests', 'a.test.ts');
  writeFileSync(list, [{ file, title: '--json prints' }, { file, title: 'x' }, { file, title: 'x' }].map((d) => JSON.stringify(d)).join('\n'));
  const tests = readDeferred(list);
  t.is(tests.length, 2, 'duplicates once');
  const [run] = avaRuns(tests, 10);
  t.is(run.cwd, dir);
  t.deepEqual(run.args, ['--no-install', 'ava', '--no-color', '--timeout=400s', file, '--match=--json prints', '--match=x']);
  t.is(matchPattern('!negated'), '*negated');
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
