/**
 * Headers from the wild, on small fixture texts written for these tests: kernel-only helpers,
 * ioctls without a fd-table entry, KVMIO, enum membership, the gcc layout classes the generator
 * once got wrong, and the diff rules learned from real history — each with the spec fields and
 * `abi diff` exit bits it must give.
 */
import test from 'ava';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { generateSpec, HeaderError } from '../src/generator/index.js';
import { diffSpecs, exitBits } from '../src/diff/index.js';
import type { Spec } from '../src/spec/types.js';
import { SHARED_HEADERS } from './helpers/uapi-header.js';

/** linux/kvm.h = `kvm`, asm/kvm.h = `asm`, plus our own types and ioctl encoding. */
function gen(kvm: string, asm = '', opts: { strict?: boolean; warn?: (l: string) => void } = {}): Spec {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-wild-'));
  const files = { ...SHARED_HEADERS, 'asm/kvm.h': asm, 'linux/kvm.h': `#include <linux/types.h>\n#include <linux/ioctl.h>\n#include <asm/kvm.h>\n#define KVMIO 0xAE\n${kvm}` };
  for (const [rel, body] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), body);
  }
  return generateSpec({ includeDirs: [dir], arch: 'x86_64', kernel: '9.9.0', ...opts });
}
const bits = (a: Spec, b: Spec) => exitBits(diffSpecs(a, b));
const rules = (a: Spec, b: Spec) => diffSpecs(a, b).map((c) => `${c.rule} ${c.item}`);

test('BIT()/GENMASK() macros are left out with a diagnostic and a warning; --strict makes them errors', (t) => {
  const asm = '#define KVM_PMU_FLAG_FANCY BIT(0)\n#define KVM_FLAG_RANGE GENMASK(7, 4)\n#define KVM_PLAIN_FLAG (1 << 2)\n';
  const warnings: string[] = [];
  const spec = gen('#define KVM_AFTER 3\n', asm, { warn: (l) => warnings.push(l) });
  t.deepEqual(spec.constants, { KVMIO: 0xae, KVM_PLAIN_FLAG: 4, KVM_AFTER: 3 });
  t.deepEqual(spec.diagnostics, [
    { name: 'KVM_PMU_FLAG_FANCY', file: 'asm/kvm.h', line: 1, reason: 'uses BIT, which only the kernel defines (no uapi header does)' },
    { name: 'KVM_FLAG_RANGE', file: 'asm/kvm.h', line: 2, reason: 'uses GENMASK, which only the kernel defines (no uapi header does)' },
  ]);
  t.deepEqual(warnings, [
    'asm/kvm.h:1: warning: #define KVM_PMU_FLAG_FANCY left out: uses BIT, which only the kernel defines (no uapi header does)',
    'asm/kvm.h:2: warning: #define KVM_FLAG_RANGE left out: uses GENMASK, which only the kernel defines (no uapi header does)',
  ]);
  t.throws(() => gen('', asm, { strict: true }), { instanceOf: HeaderError, message: /kvm\.h:1: #define KVM_PMU_FLAG_FANCY: uses BIT.* \(an error with --strict\)/ });
});

const SECTIONS = `
/*
 * ioctls for VM fds
 */
#define KVM_SET_TSS_ADDR _IO(KVMIO, 0x47)
/*
 * ioctls for vcpu fds
 */
#define KVM_RUN _IO(KVMIO, 0x80)
#define KVM_FROB_VCPU _IOW(KVMIO, 0xf0, __u64)
/* ioctls for fds returned by KVM_CREATE_DEVICE */
#define KVM_FROB_DEVICE _IO(KVMIO, 0xf1)
`;

test('an ioctl without a fd-table entry takes the fd class of its linux/kvm.h section, with a warning', (t) => {
  const warnings: string[] = [];
  const spec = gen(SECTIONS, '', { warn: (l) => warnings.push(l) });
  t.like(spec.ioctls.KVM_FROB_VCPU, { fd: 'vcpu', fdSource: 'header-section', file: 'linux/kvm.h', line: 14, size: 8, dir: 'write' });
  t.like(spec.ioctls.KVM_FROB_DEVICE, { fd: 'device', fdSource: 'header-section', line: 16 });
  t.like(spec.ioctls.KVM_RUN, { fd: 'vcpu', fdSource: 'api.rst' });
  // The table stays the override: KVM_SET_TSS_ADDR is a VM ioctl whatever section it sits in.
  t.like(gen(SECTIONS.replace('#define KVM_SET_TSS_ADDR _IO(KVMIO, 0x47)\n', '') + '#define KVM_SET_TSS_ADDR _IO(KVMIO, 0x47)\n').ioctls.KVM_SET_TSS_ADDR, { fd: 'vm', fdSource: 'api.rst' });
  t.deepEqual(warnings, [
    "linux/kvm.h:14: warning: ioctl KVM_FROB_VCPU: fd class 'vcpu' from the linux/kvm.h section at line 10 (no fd-table.ts entry)",
    "linux/kvm.h:16: warning: ioctl KVM_FROB_DEVICE: fd class 'device' from the linux/kvm.h section at line 15 (no fd-table.ts entry)",
  ]);
  const err = t.throws(() => gen('#define KVM_STRAY _IO(KVMIO, 0xf2)\n' + SECTIONS), { instanceOf: HeaderError });
  t.regex(err!.message, /linux\/kvm\.h:5: ioctl KVM_STRAY: outside every "ioctls for … fds" section/);
  t.throws(() => gen(SECTIONS, '#define KVM_ASM_IOCTL _IO(KVMIO, 0xf3)\n'), { message: /asm\/kvm\.h:1: ioctl KVM_ASM_IOCTL: outside every/ }, 'asm/kvm.h has no sections');
});

test('a patch adding a vcpu ioctl is a compatible diff', (t) => {
  t.is(bits(gen(SECTIONS), gen(SECTIONS + '/* ioctls for vcpu fds */\n#define KVM_FROB_MORE _IO(KVMIO, 0xf4)\n')), 0);
});

test('KVMIO is a constant; enums record their members, anonymous ones under the first member', (t) => {
  const spec = gen('enum kvm_frob_mode { KVM_FROB_OFF, KVM_FROB_ON = 4 };\nenum { KVM_ANON_A = 1, KVM_ANON_B };\n#define KVM_FROB_MACRO 7\n');
  t.is(spec.constants.KVMIO, 0xae);
  t.deepEqual(spec.enums, { kvm_frob_mode: ['KVM_FROB_OFF', 'KVM_FROB_ON'], KVM_ANON_A: ['KVM_ANON_A', 'KVM_ANON_B'] });
});

test('the gcc layout classes: each fixture gives the numbers gcc gives (checked against gcc in property-gcc)', (t) => {
  const spec = gen(`
typedef __u32 kvm_a32 __attribute__((aligned(8)));
struct kvm_inner { int x; };
struct kvm_between { char c; struct kvm_inner __attribute__((aligned(16))) m; };
struct __attribute__((packed)) kvm_fwd;
struct kvm_fwd { char c; int i; };
struct kvm_mode_bits { unsigned char c; unsigned char pad[3]; kvm_a32 f : 32; };
struct kvm_anon_aligned { __u8 c; __u32 : 4 __attribute__((aligned(8))); __u8 d; };
struct kvm_zero_aligned { __u8 c; __u32 : 0 __attribute__((aligned(8))); __u8 d; };
enum kvm_small { KVM_SMALL_A = 1, KVM_SMALL_B = 2 };
typedef enum kvm_small kvm_small_t;
struct kvm_enum_bits { enum kvm_small a : 2; enum kvm_small : 3; enum kvm_small b : 2; };
enum kvm_wide { KVM_WIDE_NEG = -1, KVM_WIDE_BIG = 0x80000000 };
#define KVM_NARROW_SIZEOF sizeof((__u8)1)
#define KVM_BOOL_CAST ((_Bool)256)
#define KVM_ENUM_CAST ((enum kvm_small)-1)
#define KVM_TYPEDEF_ENUM_CAST ((kvm_small_t)-1)
#define KVM_WIDE_SIZE sizeof(KVM_WIDE_BIG)
#define KVM_STRING_SIZE sizeof("a\\n" "bc")
#define KVM_STATEMENT do { } while (0)
`);
  t.like(spec.structs.kvm_between, { size: 32, align: 16 });
  t.is(spec.structs.kvm_between.layout.find((l) => l.path === 'm.x')?.offset, 16);
  t.like(spec.structs.kvm_fwd, { size: 8, align: 4 });
  t.like(spec.structs.kvm_mode_bits, { size: 8, align: 8 });
  t.like(spec.structs.kvm_mode_bits.layout.find((l) => l.path === 'f'), { offset: 4, bitOffset: 0, bitWidth: 32 });
  t.like(spec.structs.kvm_anon_aligned, { size: 10, align: 1 });
  t.is(spec.structs.kvm_anon_aligned.layout.find((l) => l.path === 'd')?.offset, 9);
  t.like(spec.structs.kvm_zero_aligned, { size: 9, align: 1 });
  t.deepEqual(spec.structs.kvm_enum_bits.layout.map((l) => [l.path, l.bitOffset, l.bitWidth]), [['a', 0, 2], ['b', 5, 2]]);
  t.is(spec.constants.KVM_NARROW_SIZEOF, 1);
  t.is(spec.constants.KVM_BOOL_CAST, 1);
  t.is(spec.constants.KVM_ENUM_CAST, 4294967295);
  t.is(spec.constants.KVM_TYPEDEF_ENUM_CAST, 4294967295);
  t.is(spec.constants.KVM_WIDE_SIZE, 8, 'an enumerator beyond int has its enum type (long here)');
  t.is(spec.constants.KVM_STRING_SIZE, 5);
  t.false('KVM_STATEMENT' in spec.constants, 'a statement macro is skipped like other non-integer macros');
});

test('a 16 KiB ioctl argument overflows _IOC_SIZE: a header error, not a number', (t) => {
  t.throws(() => gen('struct kvm_huge { __u8 b[16384]; };\n/* ioctls for vcpu fds */\n#define KVM_HUGE _IOW(KVMIO, 0xf5, struct kvm_huge)\n'), {
    instanceOf: HeaderError,
    message: /kvm\.h:7: ioctl KVM_HUGE: argument size 16384 does not fit the 14-bit _IOC_SIZE field/,
  });
});

// ---- diff classification learned from real history (kvm_nested_state 5.0 -> 5.3) ----

const NESTED_OLD = `
struct kvm_vmx_hdr { __u64 vmxon_pa; __u64 vmcs12_pa; struct { __u16 flags; } smm; };
struct kvm_vmx_data { __u8 vmcs12[64]; };
struct kvm_nested {
  __u16 flags; __u16 format; __u32 size;
  union { struct kvm_vmx_hdr vmx; __u8 pad[120]; };
  __u8 data[0];
};
`;
const NESTED_NEW = `
struct kvm_vmx_hdr { __u64 vmxon_pa; __u64 vmcs12_pa; struct { __u16 flags; } smm; };
struct kvm_svm_hdr { __u64 vmcb_pa; };
struct kvm_vmx_data { __u8 vmcs12[64]; };
struct kvm_svm_data { __u8 vmcb12[64]; };
struct kvm_nested {
  __u16 flags; __u16 format; __u32 size;
  union { struct kvm_vmx_hdr vmx; struct kvm_svm_hdr svm; __u8 pad[120]; } hdr;
  union { struct kvm_vmx_data vmx[0]; struct kvm_svm_data svm[0]; } data;
};
`;

test('an anonymous union that gets a name, and a flex array that becomes a union of flex arrays: SOURCE only', (t) => {
  const old = gen(NESTED_OLD);
  const neu = gen(NESTED_NEW);
  t.is(old.structs.kvm_nested.size, neu.structs.kvm_nested.size);
  const r = rules(old, neu);
  t.true(r.includes('anonymous-member-named kvm_nested.vmx.smm.flags'), r.join('\n'));
  t.true(r.includes('anonymous-member-named kvm_nested.vmx.vmxon_pa'));
  t.true(r.includes('flex-array-unioned kvm_nested.data'));
  t.true(r.includes('union-member-added kvm_nested.hdr.svm.vmcb_pa'));
  t.is(bits(old, neu), 4, 'SOURCE only, no BINARY bit');
  // Moving the named header breaks binaries: the rename rules must not hide that.
  t.is(bits(old, gen(NESTED_NEW.replace('__u32 size;', '__u32 size; __u64 extra;'))) & 8, 8);
});

test('a valid-bits mask that gains bits is compatible (mask-grown); one that loses bits is BINARY', (t) => {
  const mask = (v: number) => gen(`#define KVM_X86_DISABLE_EXITS_MWAIT 1\n#define KVM_X86_DISABLE_VALID_EXITS ${v}\n`);
  t.deepEqual(rules(mask(7), mask(15)), ['mask-grown KVM_X86_DISABLE_VALID_EXITS']);
  t.is(bits(mask(7), mask(15)), 0);
  t.deepEqual(rules(mask(15), mask(7)), ['constant-value-changed KVM_X86_DISABLE_VALID_EXITS']);
  t.is(bits(mask(15), mask(7)), 8);
  t.is(bits(mask(7), mask(9)), 8, 'bits replaced, not added: BINARY');
});
