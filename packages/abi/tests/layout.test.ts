import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { evalConstExpr } from '../src/generator/expr.js';
import { computeLayouts, type Layouts } from '../src/generator/layout.js';
import { tokenize } from '../src/generator/lexer.js';
import { parseTranslationUnit } from '../src/generator/parser.js';
import { preprocess } from '../src/generator/preprocess.js';
import { HeaderError } from '../src/generator/tokens.js';
import { resolveScalar } from '../src/runtime/scalars.js';
import { plainCharSigned } from '../src/spec/arch.js';
import { ARCHES, type Arch, type StructSpec } from '../src/spec/types.js';
import { runProbe } from './fixtures/layout/gcc-probe.js';
import { testNeeding } from './helpers/prerequisite.js';
import { toolchain } from './probe/compile.js';

const FIXTURES = ['bitfields.h', 'packed.h', 'anon.h', 'scalars.h', 'pragma-pack.h'];
const fixturePath = (name: string) => fileURLToPath(new URL(`./fixtures/layout/${name}`, import.meta.url));

/** The layouts of `src`, with where things were declared (file/line, checked in generate.test.ts) left out. */
function layoutOf(src: string, arch: Arch = 'x86_64', file = 'snippet.h'): Layouts {
  return withoutLocs(computeLayouts(parseTranslationUnit(tokenize(src, file)), arch, evalConstExpr));
}

/** A fixture's layouts through the preprocessor, which tracks #pragma pack. */
function fixtureLayout(name: string, arch: Arch = 'x86_64'): Layouts {
  const pp = preprocess({ entry: [fixturePath(name)], includeDirs: [], predefined: {} });
  return withoutLocs(computeLayouts(parseTranslationUnit(pp.tokens, pp.packs), arch, evalConstExpr));
}

function withoutLocs(layouts: Layouts): Layouts {
  for (const s of Object.values(layouts.structs)) {
    delete s.file;
    delete s.line;
    for (const l of s.layout) {
      delete l.file;
      delete l.line;
    }
  }
  return layouts;
}

const leaf = (s: StructSpec, path: string) => {
  const l = s.layout.find((x) => x.path === path);
  if (!l) throw new Error(`no leaf ${path}`);
  return l;
};

// ---- every fact computeLayouts states about the fixtures, against the real compilers ----

/** Per arch, what is missing to compile for it, if anything. */
const missingCompiler = new Map(ARCHES.map((arch) => {
  const tools = toolchain(arch);
  return [arch, 'missing' in tools ? `${tools.missing} is neither on PATH nor fetched (npm run fetch)` : undefined];
}));
const noCompiler = (arch: Arch): string | undefined => missingCompiler.get(arch);

for (const arch of ARCHES) {
  for (const fixture of FIXTURES) {
    testNeeding(noCompiler(arch), `${fixture} on ${arch} matches gcc (sizes, alignments, offsets, bit positions, types)`, (t) => {
      const text = readFileSync(fixturePath(fixture), 'utf8');
      const { structs } = fixtureLayout(fixture, arch);
      const { checks, mismatches } = runProbe(arch, text, structs);
      t.true(checks > 40, `only ${checks} checks`);
      t.deepEqual(mismatches, []);
    });
  }
}

for (const arch of ARCHES) {
  testNeeding(noCompiler(arch), `${arch}: char signedness, enum sizes and sizeof/alignof of type names match gcc`, (t) => {
    const text = readFileSync(fixturePath('scalars.h'), 'utf8');
    const l = layoutOf(text, arch, 'scalars.h');
    const typeNames = ['long double', 'struct scalars', 'struct arrays', 'mac_t', 'handler_t', 'enum small', 'enum with_neg', 'enum big', 'enum huge', 'enum pk_enum', 'enum pk_enum_neg', '__int128', 'u64 *'];
    const extra: [string, { what: string; expected: number }][] = [
      ['(char)-1 < 0', { what: 'runtime resolveScalar: plain char is signed', expected: Number(resolveScalar('char', arch, l.typedefs)!.signed) }],
      ['(char)-1 < 0', { what: 'plainCharSigned', expected: Number(plainCharSigned(arch)) }],
      ['(enum with_neg)-1 < 0', { what: 'enum with_neg is signed', expected: 1 }],
      ['(enum small)-1 < 0', { what: 'enum small is signed', expected: 0 }],
      ['SZ_TWO', { what: 'SZ_TWO', expected: Number(l.enumConstants.SZ_TWO) }],
      ['HUGE_A >> 32', { what: 'HUGE_A >> 32', expected: Number(l.enumConstants.HUGE_A >> 32n) }],
    ];
    for (const name of typeNames) {
      const toks = tokenize(name, 'type');
      extra.push([`sizeof(${name})`, { what: `sizeof(${name})`, expected: Number(l.sizeofType(toks)) }]);
      extra.push([`_Alignof(${name})`, { what: `_Alignof(${name})`, expected: Number(l.alignofType(toks)) }]);
    }
    const { mismatches } = runProbe(arch, text, {}, extra);
    t.deepEqual(mismatches, []);
  });
}

testNeeding(noCompiler('x86_64'), 'the compiler probe reports a wrong spec (it can fail)', (t) => {
  const text = readFileSync(fixturePath('anon.h'), 'utf8');
  const { structs } = layoutOf(text, 'x86_64', 'anon.h');
  const wrong = structuredClone(structs);
  wrong.run_like.size += 8;
  leaf(wrong.run_like, 'io.port').offset += 1;
  leaf(wrong['anon_arrays.table'], 'fields.mode').bitOffset! += 1;
  leaf(wrong.anon_arrays, 'grid').dims = [3, 2];
  leaf(wrong.anon_nest, 'pair').type = 'struct flex_entry';
  const what = runProbe('x86_64', text, wrong).mismatches.map((m) => m.what).sort();
  t.deepEqual(what, [
    'bits of anon_arrays.table.fields.mode',
    'dim 0 of anon_arrays.grid',
    'dim 1 of anon_arrays.grid',
    'offsetof run_like.io.port',
    'sizeof run_like',
    'type of anon_nest.pair is struct flex_entry',
  ]);
});

// ---- the output shape the spec contract asks for ----

test('kvm_run-like struct: anonymous union flattened, named members dotted', (t) => {
  const { structs } = layoutOf(readFileSync(fixturePath('anon.h'), 'utf8'));
  const run = structs.run_like;
  t.is(run.kind, 'struct');
  t.is(run.size, 16 + 256 + 8 + 2048);
  t.deepEqual(leaf(run, 'io.port'), { path: 'io.port', offset: 18, size: 2, type: 'u16' });
  t.deepEqual(leaf(run, 'mmio.data'), { path: 'mmio.data', offset: 24, size: 1, type: 'u8', count: 8 });
  t.deepEqual(leaf(run, 'padding'), { path: 'padding', offset: 16, size: 1, type: 'char', count: 256 });
  t.deepEqual(leaf(run, 's.b'), { path: 's.b', offset: 288, size: 8, type: 'u64' });
  const offsets = run.layout.map((l) => l.offset);
  t.deepEqual(offsets, [...offsets].sort((a, b) => a - b), 'leaves are in offset order');
  t.false(run.layout.some((l) => l.path.includes('<') || l.path.startsWith('.')));
});

test('arrays of anonymous records are registered under <outer>.<path>, recursively', (t) => {
  const { structs } = layoutOf(readFileSync(fixturePath('anon.h'), 'utf8'));
  t.deepEqual(leaf(structs.anon_arrays, 'table'), { path: 'table', offset: 8, size: 16, type: 'union anon_arrays.table', count: 4 });
  t.deepEqual(leaf(structs.anon_arrays, 'grid'), { path: 'grid', offset: 72, size: 8, type: 'struct anon_arrays.grid', count: 6, dims: [2, 3] });
  const table = structs['anon_arrays.table'];
  t.is(table.kind, 'union');
  t.deepEqual(leaf(table, 'fields.mode'), { path: 'fields.mode', offset: 1, size: 1, type: 'u8', bitOffset: 0, bitWidth: 3 });
  t.deepEqual(leaf(table, 'fields.mask'), { path: 'fields.mask', offset: 1, size: 1, type: 'u8', bitOffset: 3, bitWidth: 1 });
  t.deepEqual(leaf(table, 'fields.deeper'), { path: 'fields.deeper', offset: 4, size: 4, type: 'struct anon_arrays.table.fields.deeper', count: 3 });
  t.deepEqual(structs['anon_arrays.table.fields.deeper'].layout.map((l) => [l.path, l.offset]), [['a', 0], ['b', 2]]);
  t.deepEqual(leaf(structs.anon_nest, 'pair'), { path: 'pair', offset: 32, size: 8, type: 'struct inner_named', count: 2 });
  t.truthy(structs.inner_named, 'a tagged record defined inside another is a key of its own');
});

test('flexible arrays: count 0 with the element size, in every spelling', (t) => {
  const { structs } = layoutOf(readFileSync(fixturePath('anon.h'), 'utf8'));
  t.deepEqual(leaf(structs.flex_plain, 'entries'), { path: 'entries', offset: 8, size: 16, type: 'struct flex_entry', count: 0 });
  t.deepEqual(leaf(structs.flex_zero, 'data'), { path: 'data', offset: 2, size: 1, type: 'u8', count: 0 });
  t.deepEqual(structs.flex_declared.layout.map((l) => [l.path, l.offset, l.count]), [['nent', 0, undefined], ['entries', 8, 0], ['raw', 8, 0]]);
  t.is(structs.flex_declared.size, 8);
  t.deepEqual(structs.flex_in_anon, { size: 8, align: 8, kind: 'struct', layout: [
    { path: 'kind', offset: 0, size: 1, type: 'u8' },
    { path: 'regs', offset: 8, size: 8, type: 'u64', count: 0 },
  ] });
  t.deepEqual(structs.empty_only, { size: 0, align: 1, kind: 'struct', layout: [] });
  const { structs: s2 } = layoutOf(readFileSync(fixturePath('scalars.h'), 'utf8'));
  t.deepEqual(leaf(s2.arrays, 'flex'), { path: 'flex', offset: leaf(s2.arrays, 'flex').offset, size: 1, type: 'u8', count: 0, dims: [0, 4] });
});

test('bitfields: unit offset and size of the declared type, LSB position inside it', (t) => {
  const { structs } = layoutOf(readFileSync(fixturePath('bitfields.h'), 'utf8'));
  const s = structs.bf_straddle;
  t.deepEqual(leaf(s, 'low'), { path: 'low', offset: 0, size: 4, type: 'u32', bitOffset: 8, bitWidth: 20 });
  t.deepEqual(leaf(s, 'high'), { path: 'high', offset: 4, size: 4, type: 'u32', bitOffset: 0, bitWidth: 20 });
  t.deepEqual(leaf(s, 'tail'), { path: 'tail', offset: 6, size: 1, type: 'u8', bitOffset: 4, bitWidth: 3 });
  t.is(s.size, 8);
  t.deepEqual(leaf(structs.bf_mixed, 'mid'), { path: 'mid', offset: 4, size: 4, type: 'u32', bitOffset: 1, bitWidth: 31 });
  t.false(structs.bf_unnamed.layout.some((l) => l.path === ''), 'unnamed bitfields are padding, not leaves');
});

test('unnamed bitfields align the record on arm64 only', (t) => {
  const src = readFileSync(fixturePath('bitfields.h'), 'utf8');
  const sizes = (arch: Arch) => {
    const { structs } = layoutOf(src, arch);
    return [structs.bf_zero_only, structs.bf_unnamed_only, structs.bf_zero_aligned_packed, structs.bf_zero_aligned].map((s) => [s.size, s.align]);
  };
  // What gcc, aarch64-linux-gnu-gcc and riscv64-linux-gnu-gcc 12 give.
  t.deepEqual(sizes('x86_64'), [[5, 1], [3, 1], [3, 1], [4, 4]]);
  t.deepEqual(sizes('riscv64'), [[5, 1], [3, 1], [3, 1], [4, 4]]);
  t.deepEqual(sizes('arm64'), [[8, 4], [8, 8], [4, 4], [8, 8]]);
});

test('over-aligned bitfields round up from the last 16-byte boundary, as gcc does (#17.6)', (t) => {
  const src = readFileSync(fixturePath('bitfields.h'), 'utf8');
  const facts = (arch: Arch) => {
    const { structs } = layoutOf(src, arch);
    return ['bf_overaligned_unnamed', 'bf_overaligned_named', 'bf_overaligned_in_aligned', 'bf_overaligned_on_boundary']
      .map((k) => [structs[k].size, leaf(structs[k], 'after').offset]);
  };
  // What gcc, aarch64-linux-gnu-gcc and riscv64-linux-gnu-gcc 12 give.
  t.deepEqual(facts('x86_64'), [[88, 84], [128, 84], [128, 68], [24, 20]]);
  t.deepEqual(facts('riscv64'), [[88, 84], [128, 84], [128, 68], [24, 20]]);
  t.deepEqual(facts('arm64'), [[128, 84], [128, 84], [128, 68], [64, 20]]);
});

test('packed and aligned', (t) => {
  const { structs } = layoutOf(readFileSync(fixturePath('packed.h'), 'utf8'));
  t.deepEqual([structs.pk_whole.size, structs.pk_whole.align, leaf(structs.pk_whole, 'c').offset], [15, 1, 5]);
  t.deepEqual([structs.pk_aligned_whole.size, structs.pk_aligned_whole.align], [8, 4]);
  t.deepEqual([leaf(structs.pk_member_aligned, 'b').offset, structs.pk_member_aligned.size], [2, 12]);
  t.deepEqual([leaf(structs.al_member, 'b').offset, leaf(structs.al_member, 'f').offset, leaf(structs.al_member, 'c').offset], [16, 32, 48]);
  t.deepEqual([structs.al_struct.size, structs.al_struct.align], [32, 32]);
  t.deepEqual(structs.al_typedefs.layout.map((l) => l.offset), [0, 8, 16, 18, 26, 32]);
});

test('typedefs resolve to base types; enum constants are evaluated in order', (t) => {
  const l = layoutOf(readFileSync(fixturePath('scalars.h'), 'utf8'));
  t.like(l.typedefs, {
    u8: 'unsigned char', s64: 'long long', u64: 'unsigned long long', le32: 'unsigned int',
    mac_t: 'unsigned char[6]', handler_t: 'void (*)(int, void *)',
  });
  t.like(l.enumConstants, { SMALL_A: 0n, SMALL_B: 5n, SMALL_C: 6n, NEG_A: -2n, NEG_B: -1n, BIG_A: 0x80000000n, HUGE_A: 1n << 40n, SZ_ONE: 8n, SZ_TWO: 22n });
  const arrays = l.structs.arrays;
  t.deepEqual(leaf(arrays, 'sized'), { path: 'sized', offset: leaf(arrays, 'sized').offset, size: 8, type: 'u64', count: 22 });
  t.deepEqual(leaf(arrays, 'mac'), { path: 'mac', offset: 56, size: 1, type: 'u8', count: 6 }, 'an array typedef is spelled by its element');
  t.deepEqual(leaf(arrays, 'macs'), { path: 'macs', offset: 62, size: 1, type: 'u8', count: 24, dims: [4, 6] });
  t.deepEqual(leaf(arrays, 'cube').dims, [2, 2, 2]);
  t.is(leaf(l.structs.scalars, 'str').type, 'const char *');
  t.is(leaf(l.structs.scalars, 'fn').type, 'void (*)(void)');
  t.is(leaf(l.structs.scalars, 'e').type, 'enum small');
  t.is(l.sizeofType(tokenize('struct arrays', 't')), BigInt(arrays.size));
});

test('runtime resolveScalar reads spec leaf types: typedef chains, char signedness per arch, pointers, enums', (t) => {
  const typedefs = { __u64: 'unsigned long long', __le64: '__u64', caddr: 'char *', cb: 'void (*)(int)' };
  const info = (type: string, arch: Arch) => {
    const r = resolveScalar(type, arch, typedefs);
    return r && { size: r.size, signed: r.signed, float: r.float };
  };
  t.deepEqual(info('__le64', 'x86_64'), { size: 8, signed: false, float: false });
  t.deepEqual(info('char', 'x86_64'), { size: 1, signed: true, float: false });
  t.deepEqual(info('char', 'arm64'), { size: 1, signed: false, float: false });
  t.deepEqual(info('char', 'riscv64'), { size: 1, signed: false, float: false });
  t.deepEqual(info('signed char', 'arm64'), { size: 1, signed: true, float: false });
  t.deepEqual(info('caddr', 'arm64'), { size: 8, signed: false, float: false });
  t.deepEqual(info('cb', 'arm64'), { size: 8, signed: false, float: false });
  // x87/quad long double has no JS counterpart: the runtime carries its 16 bytes as raw bits.
  t.deepEqual(info('long double', 'riscv64'), { size: 16, signed: false, float: false });
  t.deepEqual(info('enum kvm_thing', 'x86_64'), { size: 4, signed: false, float: false });
  t.is(info('struct kvm_regs', 'x86_64'), undefined);
  t.is(info('mystery', 'x86_64'), undefined);
});

test('layout errors name file:line and the construct', (t) => {
  const err = (src: string, message: RegExp) => t.throws(() => layoutOf(src), { instanceOf: HeaderError, message });
  err('struct a { int x; };\nstruct b {\n  struct later l;\n};\nstruct later { int y; };',
    /^snippet\.h:3: member struct b\.l of struct later: used by value before its definition at snippet\.h:5/);
  err('struct fwd;\nstruct b { struct fwd f; };', /^snippet\.h:2: member struct b\.f of struct fwd: incomplete type \(declared but never defined\)/);
  err('struct a {\n  int n[-1];\n};', /^snippet\.h:2: array size: value -1 is out of range/);
  err('struct a {\n  int n[UNKNOWN_SIZE];\n};', /snippet\.h:2/);
  err('struct a {\n  int b : 33;\n};', /^snippet\.h:2: bitfield struct a\.b: width 33 exceeds its type \(32 bits\)/);
  err('struct a {\n  float f : 3;\n};', /^snippet\.h:2: bitfield struct a\.f: type 'float' is not an integer type/);
  err('struct a {\n  unsigned char c;\n  unsigned int x : 30;\n} __attribute__((packed));', /^snippet\.h:3: bitfield struct a\.x: packed bitfield at bit 8 straddles its 4-byte storage unit/);
  err('enum neg { N = -1 };\nstruct a {\n  enum neg e;\n};', /^snippet\.h:3: member struct a\.e: enum neg has underlying type int/);
  err('enum __attribute__((packed)) p { P };\nstruct a {\n  enum p e[2];\n};', /^snippet\.h:3: member struct a\.e: enum p has underlying type unsigned char/);
  err('struct a { int x; };\n_Static_assert(sizeof(struct a) == 8, "size");', /^snippet\.h:2: _Static_assert: assertion failed for x86_64/);
  err('struct a {\n  int x __attribute__((aligned(3)));\n};', /^snippet\.h:2: aligned\(3\): alignment is not a power of two/);
  err('struct a {\n  void v;\n};', /^snippet\.h:2: member struct a\.v: 'void' has no size/);
  err('struct a {\n  int n;\n  int flex[];\n  int after;\n};', /^snippet\.h:3: member struct a\.flex: flexible array member is not the last member/);
  t.notThrows(() => layoutOf('struct a { int x; };\n_Static_assert(sizeof(struct a) == 4, "size");'));
});

/** Headers gcc refuses, each with the one-line error the generator must give instead. */
const REFUSED: Array<[string, RegExp]> = [
  ['struct a {\n  int x;\n  int x;\n};', /^snippet\.h:3: member struct a\.x: duplicate member 'x' \(first declared at snippet\.h:2\)$/],
  ['struct a {\n  unsigned x : 3;\n  unsigned x : 4;\n};', /^snippet\.h:3: member struct a\.x: duplicate member 'x'/],
  // kvm_run-like: the anonymous union got a name that another member already has.
  ['struct a {\n  int exit;\n  union {\n    int io;\n  } exit;\n};', /^snippet\.h:5: member struct a\.exit: duplicate member 'exit' \(first declared at snippet\.h:2\)$/],
  // A member of an anonymous union is a member of the enclosing struct, at any depth.
  ['struct a {\n  struct {\n    union {\n      int y;\n    };\n  };\n  long y;\n};', /^snippet\.h:7: member struct a\.y: duplicate member 'y' \(first declared at snippet\.h:4\)$/],
  ['struct a {\n  int x;\n  union {\n    struct {\n      int x;\n    };\n  };\n};', /^snippet\.h:5: member struct a\.x: duplicate member 'x' \(first declared at snippet\.h:2\)$/],
  ['struct a {\n  int f[];\n};', /^snippet\.h:2: member struct a\.f: flexible array member in a struct with no named members$/],
  ['struct a {\n  int : 3;\n  int f[];\n};', /^snippet\.h:3: member struct a\.f: flexible array member in a struct with no named members$/],
  ['union a {\n  int x;\n  int f[];\n};', /^snippet\.h:3: member union a\.f: flexible array member in a union$/],
  ['enum e {\n  A = 1,\n  A = 1\n};', /^snippet\.h:3: enumerator A: redeclared \(first declared at snippet\.h:2\)$/],
  ['enum e { A = 1 };\nenum f { A = 1 };', /^snippet\.h:2: enumerator A: redeclared \(first declared at snippet\.h:1\)$/],
  ['struct a {\n  _Bool b : 2;\n};', /^snippet\.h:2: bitfield struct a\.b: width 2 exceeds its type \(1 bit\)$/],
];
/** Their neighbours gcc accepts: an anonymous struct counts as a named member, a named union's names are its own. */
const ACCEPTED = [
  'struct a { struct { int x; }; int f[]; };',
  'struct a { struct { }; int f[]; };',
  'struct a { int x; union { int x; } u; };',
  'struct a { int f[0]; };\nunion b { int f[0]; };',
  'struct a { union { int n; struct { struct { } e; int f[]; }; }; };',
  'struct a { _Bool b : 1; };',
];

test('what gcc refuses is refused with a one-line error naming the header line (#22)', (t) => {
  for (const [src, message] of REFUSED) t.throws(() => layoutOf(src), { instanceOf: HeaderError, message }, src);
  for (const src of ACCEPTED) t.notThrows(() => layoutOf(src), src);
});

testNeeding(noCompiler('x86_64'), 'gcc refuses and accepts exactly those headers', (t) => {
  const gccAccepts = (src: string) => spawnSync('gcc', ['-std=gnu11', '-fsyntax-only', '-x', 'c', '-'], { input: src }).status === 0;
  for (const [src] of REFUSED) t.false(gccAccepts(src), src);
  for (const src of ACCEPTED) t.true(gccAccepts(src), src);
});

test('sizeofType and alignofType see every complete type', (t) => {
  const l = layoutOf('typedef unsigned long long u64;\nstruct s { char c; u64 v __attribute__((aligned(16))); };\nenum e { E = sizeof(struct s) };');
  t.is(l.sizeofType(tokenize('struct s', 't')), 32n);
  t.is(l.alignofType(tokenize('struct s', 't')), 16n);
  t.is(l.sizeofType(tokenize('u64[3]', 't')), 24n);
  t.is(l.sizeofType(tokenize('struct s *', 't')), 8n);
  t.is(l.enumConstants.E, 32n);
  t.throws(() => l.sizeofType(tokenize('struct nowhere', 't')), { instanceOf: HeaderError, message: /incomplete type/ });
});
