import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Spec } from '@kvm-ts/abi';
import { cli } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'abi-diff-cli-'));
function spec(name: string, mutate: (s: Spec) => void = () => {}): string {
  const s: Spec = {
    kernel: '6.1.176',
    arch: 'x86_64',
    ioctls: {
      KVM_ENABLE_CAP: { number: 0x4068aea3, dir: 'write', size: 104, type: 'struct kvm_enable_cap', fd: 'vm' },
      KVM_RUN: { number: 0xae80, dir: 'none', size: 0, type: null, fd: 'vcpu' },
    },
    structs: {
      kvm_enable_cap: {
        size: 104, align: 8, kind: 'struct',
        layout: [
          { path: 'cap', offset: 0, size: 4, type: '__u32' }, { path: 'flags', offset: 4, size: 4, type: '__u32' },
          { path: 'args', offset: 8, size: 8, type: '__u64', count: 4 }, { path: 'pad', offset: 40, size: 1, type: '__u8', count: 64 },
        ],
      },
    },
    constants: { KVM_CAP_HLT: 1, KVM_CAP_IRQCHIP: 0, KVM_EXIT_IO: 2, KVM_EXIT_HLT: 5 },
    typedefs: { __u8: 'unsigned char', __u32: 'unsigned int', __u64: 'unsigned long long' },
  };
  mutate(s);
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify(s));
  return path;
}
const base = spec('base');

test('identical and compatible-only diffs exit 0', (t) => {
  t.is(cli('abi', 'diff', base, base).code, 0);
  const carved = spec('carved', (s) => {
    s.structs.kvm_enable_cap.layout.splice(3, 1, { path: 'kvmts_flags', offset: 40, size: 4, type: '__u32' }, { path: 'pad', offset: 44, size: 1, type: '__u8', count: 60 });
    s.constants.KVM_CAP_NEW = 300;
  });
  const r = cli('abi', 'diff', base, carved);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /3 change\(s\): 3 compatible, 0 SOURCE-breaking, 0 BINARY-breaking; 0 suppressed/);
  t.regex(r.stdout, /compatible\s+member-from-padding\s+kvm_enable_cap\.kvmts_flags/);
});

test('exit bitmask: 4 source, 8 binary, 12 both', (t) => {
  t.is(cli('abi', 'diff', base, spec('src', (s) => { delete s.constants.KVM_CAP_HLT; })).code, 4);
  t.is(cli('abi', 'diff', base, spec('bin', (s) => { s.constants.KVM_CAP_HLT = 2; })).code, 8);
  const both = cli('abi', 'diff', base, spec('both', (s) => { delete s.ioctls.KVM_RUN; }));
  t.is(both.code, 12);
  t.regex(both.stdout, /BINARY\+SOURCE ioctl-removed\s+KVM_RUN: KVM_RUN \(0x0000ae80\) is gone/);
});

test('--only-breaking says how many of how many are shown and counts each change once (#17.5)', (t) => {
  const mixed = spec('mixed', (s) => {
    delete s.ioctls.KVM_RUN; // BINARY+SOURCE
    delete s.constants.KVM_CAP_HLT; // SOURCE only
    s.constants.KVM_CAP_NEW = 300; // compatible
  });
  const full = cli('abi', 'diff', base, mixed);
  t.regex(full.stdout, /: 3 change\(s\): 1 compatible, 1 SOURCE-breaking, 1 BINARY-breaking; 0 suppressed\n/);
  const r = cli('abi', 'diff', '--only-breaking', base, mixed);
  t.is(r.code, 12);
  t.regex(r.stdout, /: 2 of 3 change\(s\) shown \(breaking only\): 1 compatible, 1 SOURCE-breaking, 1 BINARY-breaking; 0 suppressed\n/);
  t.is(r.stdout.trimEnd().split('\n').length, 3, r.stdout);
});

test('--json shape', (t) => {
  const r = cli('abi', 'diff', '--json', base, spec('json', (s) => { s.constants.KVM_CAP_HLT = 2; s.constants.KVM_EXIT_NEW = 6; }));
  t.is(r.code, 8);
  const out = JSON.parse(r.stdout);
  t.deepEqual(Object.keys(out).sort(), ['changes', 'counts', 'exit', 'new', 'old', 'stale', 'suppressed']);
  t.is(out.exit, 8);
  t.deepEqual(out.old, { id: '6.1', arch: 'x86_64', kernel: '6.1.176', source: base });
  t.deepEqual(out.counts, { compatible: 1, source: 0, binary: 1, suppressed: 0 });
  t.deepEqual(out.changes, [
    { rule: 'constant-value-changed', kind: 'constant', item: 'KVM_CAP_HLT', breaks: ['BINARY'], detail: 'KVM_CAP_HLT 1 -> 2' },
    { rule: 'enum-value-added', kind: 'constant', item: 'KVM_EXIT_NEW', breaks: [], detail: 'KVM_EXIT_NEW = 6 (family KVM_EXIT_*)' },
  ]);
});

test('suppressions: matched changes leave the bitmask, a stale entry is reported', (t) => {
  const neu = spec('sup', (s) => { delete s.constants.KVM_CAP_HLT; });
  const file = join(dir, 'suppressions.json');
  writeFileSync(file, JSON.stringify({ suppressions: [
    { rule: 'constant-removed', item: 'KVM_CAP_HLT', reason: 'reviewed: test removal' },
    { rule: 'ioctl-removed', item: 'KVM_GONE', reason: 'reviewed: matches nothing' },
  ] }));
  const r = cli('abi', 'diff', base, neu, '--suppressions', file);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /suppressed\s+constant-removed\s+KVM_CAP_HLT: reviewed: test removal/);
  t.regex(r.stderr, /stale suppression in .*suppressions\.json: ioctl-removed KVM_GONE matches nothing; remove it/);
  const j = JSON.parse(cli('abi', 'diff', '--json', base, neu, '--suppressions', file).stdout);
  t.deepEqual(j.stale.map((s: { item: string }) => s.item), ['KVM_GONE']);
  t.is(j.suppressed[0].reason, 'reviewed: test removal');
});

test('errors: malformed spec or suppression file is one line and exit 1', (t) => {
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, '{"kernel": "6.1", "arch": "x86_64", "ioctls": {}, "structs": {"s": {"size": 4, "align": 4, "kind": "struct", "layout": [{"path": "a"}]}}, "constants": {}, "typedefs": {}}');
  const r = cli('abi', 'diff', base, bad);
  t.is(r.code, 1);
  t.is(r.stderr.trim().split('\n').length, 1);
  t.regex(r.stderr, /malformed spec: structs\.s\.layout\[0\]\.type/);
  writeFileSync(join(dir, 'notjson.json'), '{');
  t.is(cli('abi', 'diff', base, join(dir, 'notjson.json')).code, 1);
  t.is(cli('abi', 'diff', base, join(dir, 'missing.json')).code, 1);
  writeFileSync(join(dir, 'badsup.json'), JSON.stringify({ suppressions: [{ rule: 'constant-removed', item: 'X' }] }));
  const s = cli('abi', 'diff', base, base, '--suppressions', join(dir, 'badsup.json'));
  t.is(s.code, 1);
  t.regex(s.stderr, /^kvm-cli: .*badsup\.json: malformed suppression file: suppressions\[0\]\.reason/);
  const arm = spec('arm', (x) => { x.arch = 'arm64'; });
  t.is(cli('abi', 'diff', base, arm).code, 1);
});

test('usage errors exit 2 with one line', (t) => {
  for (const args of [[base], [base, base, base], [base, base, '--bogus'], ['--suppressions']]) {
    const r = cli('abi', 'diff', ...args);
    t.is(r.code, 2, args.join(' '));
    t.is(r.stderr.trim().split('\n').length, 1);
  }
});

test('pinned references: the co-edit extension is compatible, the real 6.1 -> 6.12 removals are reviewed', (t) => {
  const local = cli('abi', 'diff', '7.2/x86_64', '7.2+local/x86_64', '--json');
  t.is(local.code, 0, local.stderr);
  t.deepEqual(JSON.parse(local.stdout).changes.map((c: { rule: string }) => c.rule), ['constant-added', 'member-from-padding', 'reserved-resized']);
  t.is(cli('abi', 'diff', '6.1/x86_64', '6.12/x86_64').code, 12, 'unsuppressed, the removals break both');
  const reviewed = cli('abi', 'diff', '6.1/x86_64', '6.12/x86_64', '--suppressions', fileURLToPath(new URL('../../../kernel-headers/suppressions.json', import.meta.url)));
  t.is(reviewed.code, 0, reviewed.stdout);
  t.is(reviewed.stderr, '', 'no entry scoped to this pair is stale');
});
