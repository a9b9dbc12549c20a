import test, { type ExecutionContext } from 'ava';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareSpecIds, listSpecs, loadSpecFile, type Spec } from '@kvm-ts/abi';
import { cacheReady, includeRoot, pinnedSets } from '@kvm-ts/abi/headers';
import { cli } from './helpers/cli.js';

/** One line on stderr, no stack trace. */
function oneLine(t: { is: (a: unknown, b: unknown, m?: string) => void; notRegex: (s: string, r: RegExp) => void }, stderr: string): void {
  t.is(stderr.trimEnd().split('\n').length, 1, stderr);
  t.notRegex(stderr, /\n\s+at /);
}

const specs = listSpecs();
const latestX86 = specs.filter((s) => s.arch === 'x86_64' && !s.id.includes('+')).map((s) => s.id).sort(compareSpecIds).at(-1);

// ---- list / show ----

test('abi list: one row per committed spec with kernel and counts', (t) => {
  t.true(specs.length > 0, 'committed specs exist');
  const r = cli('abi', 'list');
  t.is(r.code, 0, r.stderr);
  const rows = r.stdout.trimEnd().split('\n');
  t.regex(rows[0], /^VERSION\s+ARCH\s+KERNEL\s+IOCTLS\s+STRUCTS\s+CONSTANTS\s+TYPEDEFS$/);
  t.is(rows.length, specs.length + 1);
  for (const e of specs) {
    const s = loadSpecFile(e.path);
    const cols = [e.id, e.arch, s.kernel, ...[s.ioctls, s.structs, s.constants, s.typedefs].map((x) => String(Object.keys(x).length))];
    t.true(rows.some((row) => row.split(/\s+/).join(' ') === cols.join(' ')), `row for ${e.id}/${e.arch}`);
  }
  t.is(cli('abi', 'list', 'extra').code, 2);
});

test('abi sync takes no arguments: one line, exit 2, before touching anything', (t) => {
  const sync = cli('abi', 'sync', 'extra');
  t.is(sync.code, 2);
  t.regex(sync.stderr, /^kvm-cli: unexpected argument 'extra' \(usage: kvm-cli abi sync\)\n$/);
  t.is(sync.stdout, '');
});

test('abi show: default is the newest x86_64 spec, as a readable summary', (t) => {
  const r = cli('abi', 'show');
  t.is(r.code, 0, r.stderr);
  const spec = loadSpecFile(specs.find((s) => s.id === latestX86 && s.arch === 'x86_64')!.path);
  t.true(r.stdout.startsWith(`KVM ABI spec ${latestX86}/x86_64 (kernel ${spec.kernel})\n`));
  t.regex(r.stdout, new RegExp(`^${Object.keys(spec.ioctls).length} ioctls, ${Object.keys(spec.structs).length} structs, `, 'm'));
  t.regex(r.stdout, /^KVM_RUN\s+0x0000ae80\s+none\s+0\s+vcpu\s+-$/m);
  t.regex(r.stdout, /^KVM_GET_REGS\s+0x8090ae81\s+read\s+144\s+vcpu\s+struct kvm_regs$/m);
  t.regex(r.stdout, /^KVM_API_VERSION\s+12\s+0xc$/m);
  t.regex(r.stdout, /^kvm_regs\s+struct\s+144\s+8\s+\d+$/m);
});

test('abi show VERSION --arch ARCH picks that spec', (t) => {
  const entry = specs.find((s) => s.arch === 'arm64');
  if (!entry) return t.fail('no arm64 spec committed');
  const r = cli('abi', 'show', entry.id, '--arch', 'arm64');
  t.is(r.code, 0, r.stderr);
  const spec = loadSpecFile(entry.path);
  const init = spec.ioctls.KVM_ARM_VCPU_INIT;
  t.truthy(init);
  t.regex(r.stdout, new RegExp(`^KVM_ARM_VCPU_INIT\\s+0x${init.number.toString(16).padStart(8, '0')}\\s+write\\s+${init.size}\\s+vcpu\\s+struct kvm_vcpu_init$`, 'm'));
  t.notRegex(r.stdout, /^KVM_GET_LAPIC\s/m, 'x86-only ioctl absent on arm64');
});

test('abi show --json prints the spec file verbatim', (t) => {
  const entry = specs.find((s) => s.id === latestX86 && s.arch === 'x86_64')!;
  const r = cli('abi', 'show', 'latest', '--json');
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, readFileSync(entry.path, 'utf8'));
});

test('abi show: unknown version or arch is one line listing what exists, exit 2', (t) => {
  const v = cli('abi', 'show', '4.4');
  t.is(v.code, 2);
  oneLine(t, v.stderr);
  t.regex(v.stderr, /no committed spec for 4\.4\/x86_64 \(available: .*\d+\.\d+\/x86_64/);
  const a = cli('abi', 'show', '--arch', 'mips');
  t.is(a.code, 2);
  oneLine(t, a.stderr);
  t.regex(a.stderr, /unknown arch 'mips' \(available: x86_64, arm64, riscv64/);
  t.is(cli('abi', 'show', '6.12', '7.2').code, 2);
  t.is(cli('abi', 'show', '--bogus').code, 2);
});

// ---- generate ----

/** A small include root of our own, Debian-style when `multiarch` (asm/ under x86_64-linux-gnu/). */
function headerRoot(kvm: string, opts: { multiarch?: boolean; versionH?: string; types?: boolean } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'abi-generate-cli-'));
  const asmDir = opts.multiarch ? 'x86_64-linux-gnu/asm' : 'asm';
  const files: Record<string, string> = {
    [`${asmDir}/kvm.h`]: 'struct kvm_regs { __u64 rip, rflags; };\n',
    'linux/kvm.h': `#include <linux/types.h>\n#include <asm/kvm.h>\n#define KVMIO 0xAE\n#define _IOC(d, t, n, s) (((d) << 30) | ((t) << 8) | (n) | ((s) << 16))\n#define _IO(t, n) _IOC(0U, (t), (n), 0)\n#define _IOR(t, n, a) _IOC(2U, (t), (n), sizeof(a))\n#define _IOC_NONE 0U\n#define _IOC_READ 2U\n#define _IOC_WRITE 1U\n${kvm}`,
  };
  if (opts.types !== false) files['linux/types.h'] = 'typedef unsigned long long __u64;\n';
  if (opts.versionH) files['linux/version.h'] = opts.versionH;
  for (const [rel, body] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), body);
  }
  return dir;
}
const KVM_BODY = '#define KVM_RUN _IO(KVMIO, 0x80)\n#define KVM_GET_REGS _IOR(KVMIO, 0x81, struct kvm_regs)\n#define KVM_API_VERSION 12\n';

test('abi generate: JSON on stdout, kernel from LINUX_VERSION_CODE, asm/ found under the multiarch dir', (t) => {
  const dir = headerRoot(KVM_BODY, { multiarch: true, versionH: '#define LINUX_VERSION_CODE 395520\n#define KERNEL_VERSION(a,b,c) (((a) << 16) + ((b) << 8) + (c))\n' });
  const r = cli('abi', 'generate', '--headers', dir, '--arch', 'x86_64');
  t.is(r.code, 0, r.stderr);
  const spec = JSON.parse(r.stdout) as Spec;
  t.is(spec.kernel, '6.9.0');
  t.is(spec.arch, 'x86_64');
  t.like(spec.ioctls.KVM_RUN, { number: 0xae80, dir: 'none', size: 0, type: null, fd: 'vcpu', fdSource: 'api.rst', file: 'linux/kvm.h' });
  t.like(spec.ioctls.KVM_GET_REGS, { number: 0x8010ae81, dir: 'read', size: 16, type: 'struct kvm_regs', fd: 'vcpu', fdSource: 'api.rst' });
  t.is(spec.constants.KVM_API_VERSION, 12);
  t.true(r.stdout.endsWith('\n'));
});

test('abi generate --out FILE writes the same bytes; no version.h means kernel "unknown"', (t) => {
  const dir = headerRoot(KVM_BODY);
  const out = join(dir, 'spec.json');
  const r = cli('abi', 'generate', '--headers', dir, '--arch', 'x86_64', '--out', out);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, '');
  t.is((JSON.parse(readFileSync(out, 'utf8')) as Spec).kernel, 'unknown');
  t.is(readFileSync(out, 'utf8'), cli('abi', 'generate', '--headers', dir, '--arch', 'x86_64').stdout);
});

test('abi generate: bad usage and bad headers are one line with the right exit status', (t) => {
  const dir = headerRoot(KVM_BODY);
  const cases: Array<[string[], number, RegExp]> = [
    [['--arch', 'x86_64'], 2, /--headers DIR is required/],
    [['--headers', dir], 2, /--arch ARCH is required/],
    [['--headers', dir, '--arch', 'sparc'], 2, /unknown arch 'sparc'/],
    [['--headers', join(dir, 'nope'), '--arch', 'x86_64'], 2, /not a directory/],
    [['--headers', join(dir, 'linux'), '--arch', 'x86_64'], 2, /linux\/kvm\.h not found/],
    [['--headers', dir, '--arch', 'x86_64', 'extra'], 2, /unexpected argument 'extra'/],
    [['--headers', headerRoot('#error unsupported configuration\n'), '--arch', 'x86_64'], 1, /linux\/kvm\.h:\d+: #error: unsupported configuration/],
    [['--headers', headerRoot('#define KVM_NEW_THING _IO(KVMIO, 0xfe)\n'), '--arch', 'x86_64'], 1, /ioctl KVM_NEW_THING: outside every "ioctls for … fds" section/],
    [['--headers', dir, '--arch', 'x86_64', '--out', join(dir, 'missing-dir', 'x.json')], 1, /cannot write .*ENOENT/],
  ];
  for (const [args, code, re] of cases) {
    const r = cli('abi', 'generate', ...args);
    t.is(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    oneLine(t, r.stderr);
    t.regex(r.stderr, re);
  }
});

// ---- generate from the real pinned headers (needs the synced cache) ----

const newest = (() => {
  try {
    return pinnedSets().filter((s) => s.arches.includes('x86_64')).at(-1);
  } catch {
    return undefined;
  }
})();
const ready = newest !== undefined && cacheReady(newest.id, 'x86_64');
const withCache = (title: string, fn: (t: ExecutionContext) => void) => {
  if (ready) test(title, fn);
  else if (process.env.CI === 'true') test(title, (t) => t.fail('header cache missing: run kvm-cli abi sync'));
  else test.skip(`${title} (skipped: header cache missing, run kvm-cli abi sync)`, fn);
};

withCache('abi generate from a synced include root matches the committed spec (except kernel)', (t) => {
  const root = includeRoot(newest!.id, 'x86_64');
  const r = cli('abi', 'generate', '--headers', root, '--arch', 'x86_64');
  t.is(r.code, 0, r.stderr);
  const committed = join(dirname(fileURLToPath(import.meta.resolve('@kvm-ts/abi/generator'))), '..', '..', 'spec', newest!.id, 'x86_64.json');
  t.true(existsSync(committed), committed);
  const strip = (s: string) => s.replace(/^ {2}"kernel": ".*",\n/m, '');
  t.is(strip(r.stdout), strip(readFileSync(committed, 'utf8')));
});

withCache('abi generate fills generic headers DIR lacks from the synced cache', (t) => {
  const dir = headerRoot(`#include <linux/const.h>\n${KVM_BODY}#define KVM_WITH_CONST _BITUL(4)\n`, { types: false });
  const r = cli('abi', 'generate', '--headers', dir, '--arch', 'x86_64');
  t.is(r.code, 0, r.stderr);
  const spec = JSON.parse(r.stdout) as Spec;
  t.is(spec.constants.KVM_WITH_CONST, 16);
  t.is(spec.typedefs.__u64, 'unsigned long long');
});
