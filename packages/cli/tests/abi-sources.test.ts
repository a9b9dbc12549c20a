/**
 * Spec sources and CI formats end to end: a Linux-layout tree (raw uapi text with __user) in a
 * temporary git repo with a few commits, diffed as git:REPO@A git:REPO@B, as its work tree, and
 * generated with --headers REPO; bad refs and dirs; --format github line by line; --format junit
 * parsed as XML.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { Spec } from '@kvm-ts/abi';
import { cli } from './helpers/cli.js';
import { SHARED_HEADERS } from '../../abi/tests/helpers/uapi-header.js';

const repo = mkdtempSync(join(tmpdir(), 'kvm-ts-linux-'));
// Each run starts from an empty spec cache, so the first load of a source really generates it.
process.env.KVM_TS_SPEC_CACHE = mkdtempSync(join(tmpdir(), 'kvm-ts-spec-cache-'));

const TYPES = '#ifndef _UAPI_LINUX_TYPES_H\n#define _UAPI_LINUX_TYPES_H\ntypedef unsigned char __u8;\ntypedef unsigned int __u32;\ntypedef unsigned long long __u64;\n#endif\n';
// The usual ioctl encoding, as the abi package's generated-header tests write it (our own text).
const IOCTL = SHARED_HEADERS['linux/ioctl.h'];

/** linux/kvm.h of our little kernel: `extra` lands in the vcpu section. */
const kvmH = (frobArg: string, extra = '') => `#ifndef _UAPI_LINUX_KVM_H
#define _UAPI_LINUX_KVM_H
#include <linux/compiler.h>
#include <linux/types.h>
#include <linux/ioctl.h>
#include <asm/kvm.h>
#define KVMIO 0xAE
struct kvm_frob {
	void __user *addr;
	${frobArg}
};
/*
 * ioctls for vcpu fds
 */
#define KVM_RUN _IO(KVMIO, 0x80)
#define KVM_FROB _IOW(KVMIO, 0xf0, struct kvm_frob)
${extra}#endif
`;

function commit(files: Record<string, string>, message: string): string {
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(repo, rel)), { recursive: true });
    writeFileSync(join(repo, rel), text);
  }
  const git = (...args: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@t.invalid', ...args], { encoding: 'utf8' });
  git('add', '-A');
  git('commit', '-qm', message);
  return git('rev-parse', 'HEAD').trim();
}

execFileSync('git', ['init', '-q', repo]);
const A = commit({
  Makefile: 'VERSION = 9\nPATCHLEVEL = 1\nSUBLEVEL = 0\nEXTRAVERSION = -rc1\n',
  'include/uapi/linux/types.h': TYPES,
  'include/uapi/asm-generic/ioctl.h': IOCTL,
  'include/uapi/linux/ioctl.h': '#include <asm/ioctl.h>\n',
  'arch/x86/include/uapi/asm/kvm.h': '#define KVM_X86_DISABLE_VALID_EXITS 7\n',
  'include/uapi/linux/kvm.h': kvmH('__u32 flags;'),
}, 'A');
// B: a new vcpu ioctl without a fd-table entry, a grown mask (compatible).
const B = commit({
  'include/uapi/linux/kvm.h': kvmH('__u32 flags;', '#define KVM_FROB_MORE _IO(KVMIO, 0xf1)\n'),
  'arch/x86/include/uapi/asm/kvm.h': '#define KVM_X86_DISABLE_VALID_EXITS 15\n',
}, 'B');
// C: the argument struct grows: BINARY (its size is in the ioctl number).
const C = commit({ 'include/uapi/linux/kvm.h': kvmH('__u32 flags;\n\t__u64 more;', '#define KVM_FROB_MORE _IO(KVMIO, 0xf1)\n') }, 'C');
// The work tree moves on without a commit: the git: form must not see it.
writeFileSync(join(repo, 'include/uapi/linux/kvm.h'), kvmH('__u32 flags;\n\t__u64 more;\n\t__u64 uncommitted;', '#define KVM_FROB_MORE _IO(KVMIO, 0xf1)\n'));

const oneLine = (t: ExecutionContext, s: string) => t.is(s.trimEnd().split('\n').length, 1, s);

test('abi diff git:REPO@A git:REPO@B: raw uapi text generates; new vcpu ioctl and grown mask are compatible', (t) => {
  const r = cli('abi', 'diff', `git:${repo}@${A}`, `git:${repo}@${B}`);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^9\.1\/x86_64 \(9\.1\.0-rc1\) -> 9\.1\/x86_64 \(9\.1\.0-rc1\): 2 change\(s\): 2 compatible/);
  t.regex(r.stdout, /ioctl-added +KVM_FROB_MORE/);
  t.regex(r.stdout, /mask-grown +KVM_X86_DISABLE_VALID_EXITS: KVM_X86_DISABLE_VALID_EXITS 7 -> 15/);
  t.regex(r.stderr, /include\/uapi\/linux\/kvm\.h:\d+: warning: ioctl KVM_FROB_MORE: fd class 'vcpu' from the linux\/kvm\.h section/);
  t.is(cli('abi', 'diff', `git:${repo}@${A}`, `git:${repo}@${B}`).stdout, r.stdout, 'the cached spec gives the same report');
});

test('abi diff git:REPO@B git:REPO@C is BINARY; the work tree form sees uncommitted edits', (t) => {
  const r = cli('abi', 'diff', `git:${repo}@${B}`, `git:${repo}@${C}`);
  t.is(r.code, 8, r.stdout + r.stderr);
  t.regex(r.stdout, /BINARY +struct-size-changed +kvm_frob: kvm_frob grew 16 -> 24 bytes/);
  t.regex(r.stdout, /BINARY +ioctl-size-changed +KVM_FROB/);
  const work = cli('abi', 'diff', `git:${repo}@${C}`, repo);
  t.is(work.code, 8, work.stderr);
  t.regex(work.stdout, /member-appended +kvm_frob\.uncommitted/);
});

test('abi generate --headers REPO: a Linux tree, __user stripped, tree-relative files, kernel from the Makefile', (t) => {
  const r = cli('abi', 'generate', '--headers', repo, '--arch', 'x86_64');
  t.is(r.code, 0, r.stderr);
  const spec = JSON.parse(r.stdout) as Spec;
  t.is(spec.kernel, '9.1.0-rc1');
  t.like(spec.structs.kvm_frob, { size: 32, file: 'include/uapi/linux/kvm.h', line: 8 });
  t.like(spec.ioctls.KVM_FROB_MORE, { fd: 'vcpu', fdSource: 'header-section', file: 'include/uapi/linux/kvm.h' });
  t.deepEqual(spec.locations?.constants.KVM_X86_DISABLE_VALID_EXITS, { file: 'arch/x86/include/uapi/asm/kvm.h', line: 1 });
  t.is(spec.constants.KVMIO, 0xae);
  const show = cli('abi', 'show', `git:${repo}@${A}`);
  t.is(show.code, 0, show.stderr);
  t.regex(show.stdout, /^KVM ABI spec 9\.1 from git:.*\/x86_64 \(kernel 9\.1\.0-rc1\)/);
});

test('bad git refs, non-git dirs and trees without kvm.h: one line, exit 2', (t) => {
  const plain = mkdtempSync(join(tmpdir(), 'kvm-ts-plain-'));
  const cases: Array<[string[], RegExp]> = [
    [['abi', 'diff', `git:${repo}@no-such-ref`, `git:${repo}@${A}`], /no commit 'no-such-ref'/],
    [['abi', 'diff', `git:${plain}@HEAD`, `git:${repo}@${A}`], /is not a git repository/],
    [['abi', 'diff', plain, `git:${repo}@${A}`], /neither a Linux tree .* nor an include dir/],
    [['abi', 'diff', `git:${repo}`, `git:${repo}@${A}`], /expected git:TREE@REF/],
    [['abi', 'generate', '--headers', `git:${repo}@nope`, '--arch', 'x86_64'], /no commit 'nope'/],
    [['abi', 'check', '--against', `git:${repo}@nope`], /no commit 'nope'/],
  ];
  const empty = execFileSync('git', ['-C', plain, 'init', '-q'], { encoding: 'utf8' });
  void empty;
  writeFileSync(join(plain, 'README'), 'not a kernel\n');
  execFileSync('git', ['-C', plain, '-c', 'user.name=t', '-c', 'user.email=t@t.invalid', 'add', '-A']);
  execFileSync('git', ['-C', plain, '-c', 'user.name=t', '-c', 'user.email=t@t.invalid', 'commit', '-qm', 'x']);
  cases.push([['abi', 'diff', `git:${plain}@HEAD`, `git:${repo}@${A}`], /no include\/uapi\/linux\/kvm\.h at HEAD: not a Linux tree/]);
  cases.splice(1, 1);
  for (const [args, re] of cases) {
    const r = cli(...args);
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    oneLine(t, r.stderr);
    t.regex(r.stderr, re);
  }
  const notGit = mkdtempSync(join(tmpdir(), 'kvm-ts-notgit-'));
  const r = cli('abi', 'diff', `git:${notGit}@HEAD`, `git:${repo}@${A}`);
  t.is(r.code, 2);
  oneLine(t, r.stderr);
  t.regex(r.stderr, /is not a git repository/);
});

test('--format github: one workflow command per change, at the header line of the item', (t) => {
  const r = cli('abi', 'diff', `git:${repo}@${B}`, `git:${repo}@${C}`, '--format', 'github');
  t.is(r.code, 8);
  const lines = r.stdout.trimEnd().split('\n');
  t.true(lines.length >= 3, r.stdout);
  for (const line of lines) t.regex(line, /^::(error|warning|notice) (file=[^,:]+,line=\d+,)?title=[^:]+::.+$/);
  t.true(lines.includes('::error file=include/uapi/linux/kvm.h,line=17,title=BINARY ioctl-size-changed%3A KVM_FROB::KVM_FROB: KVM_FROB size 16 -> 24 (0x4010aef0 -> 0x4018aef0) (9.1/x86_64 -> 9.1/x86_64)'), r.stdout);
  t.true(lines.some((l) => /^::error file=include\/uapi\/linux\/kvm\.h,line=8,title=BINARY struct-size-changed%3A kvm_frob::/.test(l)), r.stdout);
  t.true(lines.some((l) => /^::notice file=include\/uapi\/linux\/kvm\.h,line=11,title=compatible member-appended%3A kvm_frob\.more::/.test(l)), r.stdout);
  t.is(cli('abi', 'diff', `git:${repo}@${B}`, `git:${repo}@${C}`, '--json').code, 8, 'exit codes do not depend on the format');
});

test('--format junit: valid XML, one testsuite per pair, one testcase per breaking change', (t) => {
  const r = cli('abi', 'diff', `git:${repo}@${B}`, `git:${repo}@${C}`, '--format', 'junit');
  t.is(r.code, 8);
  t.is(XMLValidator.validate(r.stdout), true);
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(r.stdout);
  const suite = doc.testsuites.testsuite;
  t.is(suite.name, '9.1/x86_64 -> 9.1/x86_64');
  const cases = [suite.testcase].flat();
  t.is(Number(suite.tests), cases.length);
  t.deepEqual(cases.map((c: { classname: string; name: string }) => `${c.classname} ${c.name}`).sort(), ['ioctl-size-changed KVM_FROB', 'struct-size-changed kvm_frob']);
  t.is(Number(suite.failures), 2);
  const clean = cli('abi', 'diff', `git:${repo}@${A}`, `git:${repo}@${B}`, '--format', 'junit');
  t.is(clean.code, 0);
  t.is(XMLValidator.validate(clean.stdout), true);
  t.regex(clean.stdout, /<testsuite name="9\.1\/x86_64 -&gt; 9\.1\/x86_64" tests="1" failures="0"/);
});

test('abi check --against a tree: the newest pinned spec against it, in every format', (t) => {
  const text = cli('abi', 'check', '--against', repo);
  // Our little kernel lacks most of the real ABI: removals are binary breaks, so the gate fails.
  t.is(text.code, 8, text.stderr);
  t.regex(text.stdout, /^abi check: baseline .* \(newest pinned x86_64 spec\)/);
  const gh = cli('abi', 'check', '--against', repo, '--format', 'github');
  t.is(gh.code, 8);
  for (const line of gh.stdout.trimEnd().split('\n')) t.regex(line, /^::(error|warning) /);
  const junit = cli('abi', 'check', '--against', repo, '--format', 'junit');
  t.is(junit.code, 8);
  t.is(XMLValidator.validate(junit.stdout), true);
  t.is(cli('abi', 'check', '--against', repo, '--format', 'yaml').code, 2);
});

/** Runs `fn` with these environment variables (undefined: unset) for the CLI children it spawns. */
function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const set = (v: Record<string, string | undefined>) => {
    for (const [k, x] of Object.entries(v)) if (x === undefined) delete process.env[k];
    else process.env[k] = x;
  };
  set(vars);
  try {
    return fn();
  } finally {
    set(saved);
  }
}

function writeTree(root: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), text);
  }
}

test('abi generate --headers DIR with only the KVM headers and no synced pinned cache: generic headers from the host, said in one warning', (t) => {
  const base = mkdtempSync(join(tmpdir(), 'kvm-ts-kvm-only-'));
  const dir = join(base, 'include');
  // As kvmtool's include/ holds them: linux/kvm.h and asm/kvm.h, nothing else.
  writeTree(dir, {
    'linux/kvm.h': '#include <linux/types.h>\n#include <linux/ioctl.h>\n#include <asm/kvm.h>\n#define KVMIO 0xAE\nstruct kvm_frob { __u64 addr; __u32 flags; };\n/*\n * ioctls for vcpu fds\n */\n#define KVM_FROB _IOW(KVMIO, 0xf0, struct kvm_frob)\n',
    'asm/kvm.h': '#define KVM_X86_DISABLE_VALID_EXITS 7\n',
  });
  // The host's own include root, as Debian lays it out: asm/ only in the multiarch dir of its own arch.
  const host = join(base, 'usr-include');
  const arch = process.arch === 'arm64' ? 'arm64' : process.arch === 'riscv64' ? 'riscv64' : 'x86_64';
  const multiarch = { x86_64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu', riscv64: 'riscv64-linux-gnu' }[arch];
  writeTree(host, {
    'linux/types.h': TYPES,
    'linux/ioctl.h': '#include <asm/ioctl.h>\n',
    'asm-generic/ioctl.h': IOCTL,
    [`${multiarch}/asm/ioctl.h`]: '#include <asm-generic/ioctl.h>\n',
    // The host's KVM headers never stand in for DIR's.
    'linux/kvm.h': '#define KVM_HOST_DECOY 1\n',
    [`${multiarch}/asm/kvm.h`]: '#define KVM_HOST_DECOY 2\n',
  });
  const env = { KVM_TS_HEADERS_CACHE: join(base, 'no-pinned-cache'), KVM_TS_HOST_INCLUDE: host };
  const r = withEnv(env, () => cli('abi', 'generate', '--headers', dir, '--arch', arch));
  t.is(r.code, 0, r.stderr);
  const spec = JSON.parse(r.stdout) as Spec;
  t.like(spec.structs.kvm_frob, { size: 16 });
  t.is(spec.ioctls.KVM_FROB.size, 16);
  t.is(spec.constants.KVM_X86_DISABLE_VALID_EXITS, 7);
  t.false('KVM_HOST_DECOY' in spec.constants, "the host's kvm.h was not read");
  const warnings = r.stderr.split('\n').filter((l) => /generic headers/.test(l));
  t.is(warnings.length, 1, r.stderr);
  t.is(
    warnings[0],
    `warning: ${dir}: generic headers from the host (${dir} lacks them and the pinned header cache is not synced): ` +
      `linux/types.h, linux/ioctl.h, asm-generic/ioctl.h from ${host}; asm/ioctl.h from ${join(host, multiarch)}`,
  );
  // A cached spec says the same.
  const again = withEnv(env, () => cli('abi', 'generate', '--headers', dir, '--arch', arch));
  t.is(again.stdout, r.stdout);
  t.true(again.stderr.includes(warnings[0]), again.stderr);
  // Without the host's headers it is the error it always was.
  const bare = withEnv({ ...env, KVM_TS_HOST_INCLUDE: join(base, 'nowhere') }, () => cli('abi', 'generate', '--headers', dir, '--arch', arch));
  t.is(bare.code, 1, bare.stderr);
  t.regex(bare.stderr, /#include <linux\/types\.h>: not found/);
});
