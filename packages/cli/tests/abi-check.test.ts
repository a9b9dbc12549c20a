import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Spec } from '@kvm-ts/abi';
import { cli } from './helpers/cli.js';

const spec = (kernel: string, mutate: (s: Spec) => void = () => {}): Spec => {
  const s: Spec = {
    kernel,
    arch: 'x86_64',
    ioctls: { KVM_SET_REGS: { number: 0x4090ae82, dir: 'write', size: 144, type: 'struct kvm_regs', fd: 'vcpu' } },
    structs: {},
    constants: { KVM_CAP_HLT: 1, KVM_CAP_IRQCHIP: 0 },
    typedefs: {},
  };
  mutate(s);
  return s;
};
function put(root: string, id: string, s: Spec): void {
  mkdirSync(join(root, 'packages/abi/spec', id), { recursive: true });
  writeFileSync(join(root, 'packages/abi/spec', id, 'x86_64.json'), JSON.stringify(s));
}
function repo(): string {
  const root = mkdtempSync(join(tmpdir(), 'abi-check-cli-'));
  put(root, '6.12', spec('6.12.107'));
  put(root, '7.2', spec('7.2.13', (s) => { s.constants.KVM_CAP_NEW = 250; }));
  const git = (...a: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...a], { cwd: root, stdio: 'ignore' });
  git('init', '-q', '-b', 'main');
  git('add', '.');
  git('commit', '-q', '-m', 'specs');
  return root;
}

test('passes on a clean tree and names the baseline and each step of the history', (t) => {
  const root = repo();
  const r = cli('abi', 'check', '--root', root);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /baseline git merge-base HEAD main = [0-9a-f]{12}: 2 spec\(s\) compared, 0 changed/);
  t.regex(r.stdout, /6\.12\/x86_64 -> 7\.2\/x86_64: 1 compatible, 0 source-only, 0 binary-breaking, 0 suppressed/);
  t.regex(r.stdout, /abi check: ok\n$/);
});

test('fails with rule, item and fix hint on an unsuppressed binary break; --json carries the same', (t) => {
  const root = repo();
  put(root, '7.2', spec('7.2.13', (s) => { s.ioctls.KVM_SET_REGS.dir = 'readwrite'; s.ioctls.KVM_SET_REGS.number = 0xc090ae82; }));
  const r = cli('abi', 'check', '--root', root);
  t.is(r.code, 8);
  t.regex(r.stdout, /FAIL BINARY ioctl-direction-changed KVM_SET_REGS \(6\.12\/x86_64 -> 7\.2\/x86_64\): KVM_SET_REGS direction write -> readwrite/);
  t.regex(r.stdout, /  fix: add a new ioctl with the new direction/);
  const j = JSON.parse(cli('abi', 'check', '--root', root, '--json').stdout);
  t.is(j.exit, 8);
  t.deepEqual(j.failures.map((f: { rule: string; item: string }) => `${f.rule} ${f.item}`), ['ioctl-direction-changed KVM_SET_REGS', 'ioctl-direction-changed KVM_SET_REGS']);
});

test('a stale suppression fails the gate with exit 1; a malformed one is one line, exit 1; bad flags exit 2', (t) => {
  const root = repo();
  mkdirSync(join(root, 'kernel-headers'));
  writeFileSync(join(root, 'kernel-headers/suppressions.json'), JSON.stringify({ suppressions: [{ rule: 'ioctl-removed', item: 'KVM_NOT_THERE', reason: 'reviewed long ago' }] }));
  const stale = cli('abi', 'check', '--root', root);
  t.is(stale.code, 1);
  t.regex(stale.stdout, /FAIL stale suppression ioctl-removed KVM_NOT_THERE: it matches no change any more; remove it/);
  writeFileSync(join(root, 'kernel-headers/suppressions.json'), '{"suppressions": [1]}');
  const bad = cli('abi', 'check', '--root', root);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /^kvm-cli: .*suppressions\.json: malformed suppression file: suppressions\[0\]: not an object\n$/);
  t.is(cli('abi', 'check', '--frobnicate').code, 2);
  t.is(cli('abi', 'check', 'extra').code, 2);
});

test('a --baseline directory without specs is an error, not an empty pass', (t) => {
  const root = repo();
  const empty = mkdtempSync(join(tmpdir(), 'abi-check-empty-baseline-'));
  const r = cli('abi', 'check', '--root', root, '--baseline', empty);
  t.is(r.code, 1);
  t.regex(r.stderr, /^kvm-cli: .*abi-check-empty-baseline-\S*: baseline directory holds no <id>\/<arch>\.json spec\n$/);
  t.is(r.stdout, '');
});

test('--record-baseline writes a baseline a tree outside git is checked against', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'abi-check-cli-nogit-'));
  put(root, '6.12', spec('6.12.107'));
  const file = join(root, 'baseline.json');
  t.is(cli('abi', 'check', '--root', root, '--record-baseline', file).code, 0);
  put(root, '6.12', spec('6.12.107', (s) => { s.constants.KVM_CAP_HLT = 3; }));
  const r = cli('abi', 'check', '--root', root, '--baseline', file);
  t.is(r.code, 8);
  t.regex(r.stdout, /FAIL BINARY constant-value-changed KVM_CAP_HLT \(6\.12\/x86_64 -> 6\.12\/x86_64\)/);
  const empty = mkdtempSync(join(tmpdir(), 'abi-check-cli-empty-'));
  const none = cli('abi', 'check', '--root', empty, '--record-baseline', join(empty, 'baseline.json'));
  t.is(none.code, 1);
  t.regex(none.stderr, /^kvm-cli: abi check: no <id>\/<arch>\.json spec under .*: nothing to record\n$/);
});
