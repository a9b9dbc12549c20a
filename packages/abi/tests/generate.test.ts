import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { missingCaches, targets } from '../scripts/generate-all.js';
import { includeRoot } from '../src/headers/index.js';
import { generateSpec, HeaderError, serializeSpec } from '../src/generator/index.js';
import { testNeeding } from './helpers/prerequisite.js';
import type { Spec } from '../src/spec/types.js';

const IOCTL_H = readFileSync(fileURLToPath(new URL('./fixtures/generator/ioctl/linux/ioctl.h', import.meta.url)), 'utf8');

/** A tiny include root of our own: linux/kvm.h (+ asm/kvm.h, linux/ioctl.h) with `kvm` as its body. */
function root(kvm: string, asm = '/* no arch definitions */\n'): string {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-gen-'));
  const files: Record<string, string> = {
    'linux/ioctl.h': IOCTL_H,
    'linux/types.h': 'typedef unsigned int __u32;\ntypedef unsigned long long __u64;\ntypedef signed int __s32;\n',
    'asm/kvm.h': asm,
    'linux/kvm.h': `#include <linux/types.h>\n#include <linux/ioctl.h>\n#include <asm/kvm.h>\n#define KVMIO 0xAE\n${kvm}`,
  };
  for (const [rel, body] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), body);
  }
  return dir;
}
const gen = (kvm: string, asm?: string): Spec => generateSpec({ includeDirs: [root(kvm, asm)], arch: 'x86_64', kernel: '9.9.9' });
/** An ioctl's encoding and fd class, without where it was defined. */
const encoding = (io: Spec['ioctls'][string] | undefined) => io && { number: io.number, dir: io.dir, size: io.size, type: io.type, fd: io.fd };

const BASIC = `
struct kvm_regs { __u64 rax, rbx; __u32 flags; };
enum { KVM_ENUM_A = 3, KVM_ENUM_B, other_enum = 9 };
#define KVM_API_VERSION 12
#define KVM_RUN _IO(KVMIO, 0x80)
#define KVM_GET_REGS _IOR(KVMIO, 0x81, struct kvm_regs)
#define KVM_GET_LAPIC _IOR(KVMIO, 0x8e, struct kvm_lapic_state)
#define KVM_HIGH_BIT (1U << 31)
#define KVM_INT_SIGN (1 << 31)
#define KVM_BIG 0x6000000000000000ULL
#define KVM_NEGATIVE (-22)
#define KVM_FROM_ENUM (KVM_ENUM_B + 1)
#define KVM_STRUCT_SIZE sizeof(struct kvm_regs)
#define KVM_CAST ((__u32)-1)
#define KVM_STRING "kvm"
#define KVM_TYPE_ALIAS struct kvm_regs
#define KVM_FLAG_ONLY
#define KVM_FUNC(x) ((x) + 1)
#define __KVM_HAVE_THING
#define __KVM_INTERNAL 7
#define NOT_KVM 5
#define KVM_KERNEL_ONLY (PAGE_SIZE / 8)
`;

test('fixture pipeline: ioctls with fd, size from the layout, arch-missing types left out', (t) => {
  const spec = gen(BASIC);
  t.is(spec.kernel, '9.9.9');
  t.is(spec.arch, 'x86_64');
  t.deepEqual(spec.ioctls, {
    KVM_RUN: { number: 0xae80, dir: 'none', size: 0, type: null, fd: 'vcpu', fdSource: 'api.rst', file: 'linux/kvm.h', line: 9 },
    KVM_GET_REGS: { number: 0x8018ae81, dir: 'read', size: 24, type: 'struct kvm_regs', fd: 'vcpu', fdSource: 'api.rst', file: 'linux/kvm.h', line: 10 },
  });
  t.like(spec.structs.kvm_regs, { file: 'linux/kvm.h', line: 6 });
  t.deepEqual(spec.structs.kvm_regs.layout.map((l) => [l.path, l.file, l.line]), [['rax', undefined, 6], ['rbx', undefined, 6], ['flags', undefined, 6]]);
  t.is(spec.structs.kvm_regs.size, 24);
});

test('fixture pipeline: constants with C values, enumerators, skips', (t) => {
  const spec = gen(BASIC);
  t.deepEqual(spec.constants, {
    KVMIO: 0xae,
    KVM_API_VERSION: 12,
    KVM_HIGH_BIT: 2147483648,
    KVM_INT_SIGN: -2147483648,
    KVM_BIG: '6917529027641081856',
    KVM_NEGATIVE: -22,
    KVM_FROM_ENUM: 5,
    KVM_STRUCT_SIZE: 24,
    KVM_CAST: 4294967295,
    __KVM_INTERNAL: 7,
    KVM_ENUM_A: 3,
    KVM_ENUM_B: 4,
  });
  t.deepEqual(spec.enums, { KVM_ENUM_A: ['KVM_ENUM_A', 'KVM_ENUM_B'] }, 'an anonymous enum is named after its first member');
  t.deepEqual(spec.locations?.constants.KVM_ENUM_B, { file: 'linux/kvm.h', line: 7 });
  t.deepEqual(spec.locations?.constants.KVMIO, { file: 'linux/kvm.h', line: 4 });
  t.deepEqual(spec.locations?.typedefs.__u32, { file: 'linux/types.h', line: 1 });
  t.deepEqual(spec.diagnostics, [
    { name: 'KVM_KERNEL_ONLY', file: 'linux/kvm.h', line: 26, reason: 'uses PAGE_SIZE, which only the kernel defines (no uapi header does)' },
  ]);
});

test('an ioctl missing from the fd table and outside every kvm.h section fails generation, naming it and its line', (t) => {
  const err = t.throws(() => gen('#define KVM_FROBNICATE _IO(KVMIO, 0xff)\n'), { instanceOf: HeaderError });
  t.regex(err?.message ?? '', /linux\/kvm\.h:5: ioctl KVM_FROBNICATE: outside every "ioctls for … fds" section .* add it to .*fd-table\.ts/);
});

test('a KVM_* integer macro that fails to evaluate is an error, not dropped', (t) => {
  t.throws(() => gen('#define KVM_BAD (1 / 0)\n'), { instanceOf: HeaderError, message: /kvm\.h:5: #define KVM_BAD: .*division by zero/ });
  t.throws(() => gen('#define KVM_TYPO (KVM_MISSING + 1)\n'), { instanceOf: HeaderError, message: /#define KVM_TYPO: .*unknown identifier 'KVM_MISSING'/ });
  t.throws(() => gen('#define KVM_SIZE_OF_NOTHING sizeof(struct nothing)\n'), { instanceOf: HeaderError, message: /#define KVM_SIZE_OF_NOTHING/ });
  t.throws(() => gen('#define KVM_CUT_SHORT 1 << \n'), { instanceOf: HeaderError, message: /#define KVM_CUT_SHORT: .*ends early/ });
  t.throws(() => gen('#define KVM_UNCLOSED (1 + 2\n'), { instanceOf: HeaderError, message: /#define KVM_UNCLOSED/ });
});

test('header problems surface as HeaderError with file:line', (t) => {
  t.throws(() => gen('#if 1\nint x;\n'), { instanceOf: HeaderError, message: /linux\/kvm\.h:5: #if: unterminated/ });
  t.throws(() => gen('#include <linux/missing.h>\n'), { instanceOf: HeaderError, message: /linux\/kvm\.h:5: #include <linux\/missing\.h>: not found/ });
  t.throws(() => generateSpec({ includeDirs: [mkdtempSync(join(tmpdir(), 'kvm-ts-empty-'))], arch: 'x86_64', kernel: 'x' }), {
    instanceOf: HeaderError,
    message: /#include <linux\/kvm\.h>: not found/,
  });
});

test('serializeSpec: sorted keys, fixed record shape, 2-space indent, trailing newline, stable', (t) => {
  const spec = gen(BASIC);
  const text = serializeSpec(spec);
  t.true(text.endsWith('}\n'));
  t.is(text, serializeSpec(gen(BASIC)), 'byte-identical on regeneration');
  const parsed = JSON.parse(text) as Spec;
  t.deepEqual(Object.keys(parsed), ['kernel', 'arch', 'ioctls', 'structs', 'constants', 'enums', 'aliases', 'macros', 'typedefs', 'locations', 'diagnostics']);
  t.deepEqual(Object.keys(parsed.structs.kvm_regs), ['size', 'align', 'kind', 'file', 'line', 'layout']);
  const names = Object.keys(parsed.constants);
  t.deepEqual(names, [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
  t.deepEqual(Object.keys(parsed.ioctls), ['KVM_GET_REGS', 'KVM_RUN']);
  t.deepEqual(Object.keys(parsed.ioctls.KVM_RUN), ['number', 'dir', 'size', 'type', 'fd', 'fdSource', 'file', 'line']);
  const bare: Spec = { kernel: '1.0', arch: 'x86_64', ioctls: {}, structs: {}, constants: {}, typedefs: {} };
  t.deepEqual(Object.keys(JSON.parse(serializeSpec(bare))), ['kernel', 'arch', 'ioctls', 'structs', 'constants', 'typedefs'], 'optional members stay absent');
  t.regex(text, /^\{\n {2}"kernel": "9\.9\.9",\n/);
  // Insertion order of the input must not matter.
  const shuffled: Spec = { ...spec, constants: Object.fromEntries(Object.entries(spec.constants).reverse()) };
  t.is(serializeSpec(shuffled), text);
});

test('serializeSpec keeps every leaf member in a fixed order, including ones added to the contract later', (t) => {
  const spec = gen(BASIC);
  const leaf = { zeta: 1, dims: [2, 3], count: 6, type: '__u8', size: 1, offset: 0, path: 'grid' };
  spec.structs.kvm_regs.layout = [leaf as unknown as Spec['structs'][string]['layout'][number]];
  const out = JSON.parse(serializeSpec(spec)) as Spec;
  t.deepEqual(Object.keys(out.structs.kvm_regs.layout[0]), ['path', 'offset', 'size', 'type', 'count', 'dims', 'zeta']);
  t.deepEqual(out.structs.kvm_regs.layout[0].dims, [2, 3]);
});

// ---- real pinned headers (the synced cache) ----

const all = targets();
const missing = missingCaches(all);
const needCache = (title: string, fn: (t: ExecutionContext) => void) =>
  testNeeding(missing.length ? `header cache missing for ${missing.map((m) => `${m.id}/${m.arch}`).join(', ')}: run kvm-cli abi sync` : undefined, title, fn);

needCache('all pinned sets generate, with sane ioctls, constants and structs', (t) => {
  t.is(all.length, 8, 'pinned (set, arch) pairs');
  for (const target of all) {
    const where = `${target.id}/${target.arch}`;
    const spec = generateSpec({ includeDirs: [includeRoot(target.id, target.arch)], arch: target.arch, kernel: target.kernel });
    t.is(spec.kernel, target.kernel, where);
    t.regex(spec.kernel, /^\d+\.\d+\.\d+$/, where);
    t.deepEqual(encoding(spec.ioctls.KVM_RUN), { number: 0xae80, dir: 'none', size: 0, type: null, fd: 'vcpu' }, where);
    t.deepEqual(encoding(spec.ioctls.KVM_CREATE_VM), { number: 0xae01, dir: 'none', size: 0, type: null, fd: 'system' }, where);
    t.true(Object.values(spec.ioctls).every((io) => io.fdSource === 'api.rst'), `${where}: the table covers every pinned ioctl`);
    t.is(spec.constants.KVMIO, 0xae, where);
    t.is(spec.ioctls.KVM_CREATE_VCPU?.fd, 'vm', where);
    t.is(spec.ioctls.KVM_SET_ONE_REG?.type, 'struct kvm_one_reg', where);
    t.is(spec.constants.KVM_API_VERSION, 12, where);
    t.is(spec.constants.KVM_EXIT_MMIO, 6, where);
    t.true(Object.keys(spec.constants).filter((k) => k.startsWith('KVM_CAP_')).length > 150, `${where}: KVM_CAP_* constants`);
    t.true(Object.keys(spec.ioctls).length > 70, `${where}: ioctl count`);
    t.false(Object.keys(spec.ioctls).some((k) => k.startsWith('__KVM')), `${where}: deprecated placeholders are not ioctls`);
    for (const [name, io] of Object.entries(spec.ioctls)) {
      t.true(Number.isInteger(io.number) && io.number >= 0 && io.number <= 0xffffffff, `${where} ${name}`);
      t.is((io.number >>> 8) & 0xff, 0xae, `${where} ${name}: KVMIO type byte`);
      t.is((io.number >>> 16) & 0x3fff, io.size, `${where} ${name}: size field`);
      if (io.type?.startsWith('struct ')) t.is(spec.structs[io.type.slice(7)]?.size, io.size, `${where} ${name}: struct size`);
    }
    if (target.arch === 'x86_64') {
      t.deepEqual(encoding(spec.ioctls.KVM_GET_REGS), { number: 0x8090ae81, dir: 'read', size: 144, type: 'struct kvm_regs', fd: 'vcpu' }, where);
      t.is(spec.ioctls.KVM_GET_SREGS?.size, 312, where);
      t.false('KVM_ARM_VCPU_INIT' in spec.ioctls, `${where}: arm-only struct`);
    } else {
      t.false('KVM_GET_LAPIC' in spec.ioctls, `${where}: x86-only struct`);
      t.false('KVM_GET_SUPPORTED_CPUID' in spec.ioctls, where);
    }
    if (target.arch === 'arm64') t.is(spec.ioctls.KVM_ARM_VCPU_INIT?.fd, 'vcpu', where);
    if (target.arch === 'riscv64') t.is(spec.structs.kvm_riscv_config?.kind, 'struct', where);
  }
});
