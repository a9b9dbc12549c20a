import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbiInputError, loadSpecRef, runCheck, writeRecordedBaseline, readSpecDir } from '../src/diff/index.js';
import type { Spec } from '../src/spec/types.js';
import { clone, fixtureSpec } from './diff-fixture.js';

function writeSpec(root: string, id: string, spec: Spec): void {
  mkdirSync(join(root, 'packages/abi/spec', id), { recursive: true });
  writeFileSync(join(root, 'packages/abi/spec', id, `${spec.arch}.json`), JSON.stringify(spec));
}
const version = (kernel: string, mutate: (s: Spec) => void = () => {}): Spec => {
  const s = clone(fixtureSpec());
  s.kernel = kernel;
  mutate(s);
  return s;
};
const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd, stdio: 'ignore' });

/** A throwaway repo with two pinned versions committed on main. */
function repo(): string {
  const root = mkdtempSync(join(tmpdir(), 'abi-check-'));
  writeSpec(root, '6.1', version('6.1.176'));
  writeSpec(root, '6.12', version('6.12.107', (s) => { s.constants.KVM_CAP_NEW = 200; }));
  git(root, 'init', '-q', '-b', 'main');
  git(root, 'add', '.');
  git(root, 'commit', '-q', '-m', 'specs');
  return root;
}

test('a clean tree passes: baseline from git merge-base, history walked in order', (t) => {
  const root = repo();
  const r = runCheck({ root });
  t.is(r.exit, 0);
  t.regex(r.baseline!.source, /^git merge-base HEAD main = [0-9a-f]{12}$/);
  t.is(r.baseline!.reports.length, 2);
  t.deepEqual(r.history.map((h) => `${h.old.id}->${h.new.id}`), ['6.1->6.12']);
});

test('editing a pinned spec in the working tree incompatibly fails against the baseline', (t) => {
  const root = repo();
  writeSpec(root, '6.1', version('6.1.176', (s) => { s.ioctls.KVM_ENABLE_CAP.size = 112; s.ioctls.KVM_ENABLE_CAP.number = 0x4070aea3; }));
  const r = runCheck({ root });
  t.is(r.exit, 8);
  const f = r.failures.find((x) => x.report.old.source.includes(':packages/abi/spec/6.1/'));
  t.truthy(f, 'the baseline comparison names the committed file');
  t.is(f!.change.rule, 'ioctl-size-changed');
  t.regex(f!.hint, /carve new members out of reserved bytes/);
});

test('a binary break in the pinned history fails unless suppressed; a stale suppression fails too', (t) => {
  const root = repo();
  writeSpec(root, '6.12', version('6.12.107', (s) => { delete s.ioctls.KVM_SET_CPUID2; }));
  t.is(runCheck({ root }).exit, 8);
  mkdirSync(join(root, 'kernel-headers'));
  const sup = (entries: unknown[]) => writeFileSync(join(root, 'kernel-headers/suppressions.json'), JSON.stringify({ suppressions: entries }));
  sup([{ rule: 'ioctl-removed', item: 'KVM_SET_CPUID2', reason: 'test: reviewed removal' }]);
  const ok = runCheck({ root });
  t.is(ok.exit, 0, 'suppressed in both the baseline and the history diff');
  sup([{ rule: 'ioctl-removed', item: 'KVM_SET_CPUID2', reason: 'test: reviewed removal' }, { rule: 'constant-removed', item: 'KVM_NOPE', reason: 'matches nothing at all' }]);
  const stale = runCheck({ root });
  t.is(stale.exit, 1);
  t.deepEqual(stale.stale.map((s) => s.item), ['KVM_NOPE']);
});

test('a source-only break warns but passes', (t) => {
  const root = repo();
  writeSpec(root, '6.12', version('6.12.107', (s) => { delete s.constants.KVM_X86_DISABLE_VALID_EXITS; }));
  const r = runCheck({ root });
  t.is(r.exit, 0);
  t.true(r.warnings.some((w) => w.change.item === 'KVM_X86_DISABLE_VALID_EXITS'));
});

test('outside git: a recorded baseline, or the history only', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'abi-check-nogit-'));
  writeSpec(root, '6.1', version('6.1.176'));
  writeSpec(root, '7.2', version('7.2.13'));
  const none = runCheck({ root });
  t.is(none.baseline, undefined);
  t.is(none.exit, 0);
  mkdirSync(join(root, 'kernel-headers'));
  writeRecordedBaseline(join(root, 'kernel-headers/abi-baseline.json'), readSpecDir(join(root, 'packages/abi/spec')), 'test');
  writeSpec(root, '7.2', version('7.2.13', (s) => { s.constants.KVM_CAP_HLT = 7; }));
  const r = runCheck({ root });
  t.regex(r.baseline!.source, /^recorded baseline .*abi-baseline\.json \(test\)$/);
  t.is(r.exit, 8);
  t.deepEqual([...new Set(r.failures.map((f) => f.change.item))], ['KVM_CAP_HLT']);
});

test('a pinned spec deleted from the working tree fails', (t) => {
  const root = repo();
  git(root, 'rm', '-q', 'packages/abi/spec/6.12/x86_64.json');
  const r = runCheck({ root });
  t.is(r.exit, 1);
  t.deepEqual(r.baseline!.missing, ['6.12/x86_64']);
});

test('pinned references and malformed spec files', (t) => {
  const root = repo();
  const specRoot = join(root, 'packages/abi/spec');
  const l = loadSpecRef('6.12/x86_64', specRoot);
  t.is(l.label.id, '6.12');
  t.is(l.spec.constants.KVM_CAP_NEW, 200);
  writeFileSync(join(root, 'bad.json'), JSON.stringify({ ...fixtureSpec(), ioctls: { KVM_RUN: { number: -1, dir: 'none', size: 0, type: null, fd: 'vcpu' } } }));
  t.throws(() => loadSpecRef(join(root, 'bad.json')), { instanceOf: AbiInputError, message: /malformed spec: ioctls\.KVM_RUN\.number: not a 32-bit unsigned integer/ });
  t.throws(() => loadSpecRef('9.9/x86_64', specRoot), { instanceOf: AbiInputError, message: /^9\.9\/x86_64: cannot read .*ENOENT/ });
});

test('no spec in the working tree (a wrong root) is an input error, not an empty pass', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'abi-check-empty-'));
  t.throws(() => runCheck({ root }), { instanceOf: AbiInputError, message: /packages\/abi\/spec: no <id>\/<arch>\.json spec to check$/ });
  const baseline = mkdtempSync(join(tmpdir(), 'abi-check-empty-baseline-'));
  writeSpec(root, '6.1', version('6.1.176'));
  t.throws(() => runCheck({ root, baseline }), { instanceOf: AbiInputError, message: /baseline directory holds no <id>\/<arch>\.json spec$/ });
});
