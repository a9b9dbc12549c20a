import test from 'ava';
import { tokenize } from '../src/generator/lexer.js';
import {
  parseTranslationUnit,
  parseTypeName,
  startsTypeName,
  typeToString,
  type CType,
  type Decl,
  type EnumDecl,
  type Member,
  type RecordDecl,
  type TranslationUnit,
} from '../src/generator/parser.js';
import { HeaderError, type Token } from '../src/generator/tokens.js';

const parse = (src: string): TranslationUnit => parseTranslationUnit(tokenize(src, 'snippet.h'));
const text = (tokens: Token[] | null | undefined): string | null | undefined => tokens && tokens.map((t) => t.text).join(' ');

function record(tu: TranslationUnit, tag: string): RecordDecl {
  const d = tu.tags.get(tag);
  if (!d || !('kind' in d)) throw new Error(`no record ${tag}`);
  return d;
}

function member(r: RecordDecl, name: string): Member {
  const m = r.members?.find((x) => x.name === name);
  if (!m) throw new Error(`no member ${name}`);
  return m;
}

function headerError(t: { throws: (fn: () => unknown, e: object) => unknown }, fn: () => unknown, message: RegExp): void {
  t.throws(fn, { instanceOf: HeaderError, message });
}

test('members: scalars, pointers, arrays with unevaluated sizes, locations', (t) => {
  const tu = parse(`typedef unsigned int __u32;
struct s {
  __u32 a, *b;
  unsigned long long int c;
  char name[N_NAME + sizeof(struct other)];
  __u32 grid[2][3];
  void *p;
};`);
  const s = record(tu, 's');
  t.deepEqual(s.members!.map((m) => m.name), ['a', 'b', 'c', 'name', 'grid', 'p']);
  t.deepEqual(s.members!.map((m) => typeToString(m.type)), [
    '__u32', '__u32 *', 'unsigned long long', 'char[N_NAME + sizeof ( struct other )]', '__u32[2][3]', 'void *',
  ]);
  const name = member(s, 'name').type as Extract<CType, { kind: 'array' }>;
  t.is(text(name.size), 'N_NAME + sizeof ( struct other )');
  const grid = member(s, 'grid').type as Extract<CType, { kind: 'array' }>;
  t.is(text(grid.size), '2', 'the outer dimension comes first');
  t.is(grid.of.kind === 'array' ? text(grid.of.size) : undefined, '3');
  t.deepEqual(member(s, 'c').loc, { file: 'snippet.h', line: 4 });
  t.deepEqual(s.defLoc, { file: 'snippet.h', line: 2 });
});

test('base type spellings are normalised', (t) => {
  const tu = parse(`struct s {
  __signed__ char a; signed b; unsigned c; short int d; unsigned short int e; long int f; long unsigned g;
  long long h; int long long unsigned i; long double j; _Bool k; const volatile int l; __uint128_t m;
};`);
  t.deepEqual(record(tu, 's').members!.map((m) => typeToString(m.type)), [
    'signed char', 'int', 'unsigned int', 'short', 'unsigned short', 'long', 'unsigned long', 'long long',
    'unsigned long long', 'long double', '_Bool', 'int', 'unsigned __int128',
  ]);
});

test('invalid base type combinations name file:line', (t) => {
  headerError(t, () => parse('struct s {\n  unsigned signed int x;\n};'), /^snippet\.h:2: type specifier: invalid combination 'unsigned signed int'/);
  headerError(t, () => parse('struct s { long long long x; };'), /invalid combination/);
  headerError(t, () => parse('struct s { short char x; };'), /invalid combination/);
});

test('pointer targets keep their qualifiers; the member itself does not', (t) => {
  const tu = parse('struct s { const char *name; char *const fixed; const volatile unsigned int v; const char *const *list; };');
  t.deepEqual(record(tu, 's').members!.map((m) => typeToString(m.type)), [
    'const char *', 'char *', 'unsigned int', 'const char *const *',
  ]);
});

test('nested and anonymous records: inner ones are complete first, only untagged ones are members', (t) => {
  const tu = parse(`struct outer {
  int a;
  union {
    int u1;
    struct { char x, y; };
  };
  struct inner { int z; } named;
  struct sibling { int w; };
  struct { int q; } anon_named;
  struct declared_only;
};`);
  const order = tu.decls.filter((d): d is Extract<Decl, { kind: 'record' }> => d.kind === 'record').map((d) => d.decl.tag ?? `<${d.decl.kind}@${d.decl.defLoc!.line}>`);
  t.deepEqual(order, ['<struct@5>', '<union@3>', 'inner', 'sibling', '<struct@9>', 'outer']);
  const outer = record(tu, 'outer');
  t.deepEqual(outer.members!.map((m) => m.name ?? '(anonymous)'), ['a', '(anonymous)', 'named', 'anon_named']);
  const anon = outer.members![1];
  t.is(anon.type.kind === 'record' && anon.type.decl.kind, 'union');
  t.is(record(tu, 'sibling').members!.length, 1, 'a tagged nested definition still defines the tag');
  t.is(record(tu, 'declared_only').members, undefined, 'struct tag; inside a body only declares the tag');
});

test('forward declaration and definition are one object', (t) => {
  const tu = parse('struct later;\nstruct user { struct later *p; };\nstruct later { int v; };');
  const user = record(tu, 'user');
  const p = member(user, 'p').type;
  t.is(p.kind === 'pointer' && p.to.kind === 'record' && p.to.decl, record(tu, 'later'));
  t.deepEqual(record(tu, 'later').loc, { file: 'snippet.h', line: 1 });
  t.deepEqual(record(tu, 'later').defLoc, { file: 'snippet.h', line: 3 });
});

test('typedefs of scalars, records, anonymous records, arrays and function pointers', (t) => {
  const tu = parse(`typedef unsigned char __u8;
__extension__ typedef unsigned long long __u64;
typedef __u8 mac_t[6];
typedef struct tagged tagged_t;
typedef struct { int val[2]; } fsid_t;
typedef void (*handler_t)(int);
typedef int (*table_t[4])(void *, long);
typedef unsigned poll_t;
typedef __u64 aligned_u64 __attribute__((aligned(8)));`);
  const td = Object.fromEntries([...tu.typedefs].map(([k, v]) => [k, typeToString(v.type)]));
  t.deepEqual(td, {
    __u8: 'unsigned char',
    __u64: 'unsigned long long',
    mac_t: '__u8[6]',
    tagged_t: 'struct tagged',
    fsid_t: 'struct <anonymous>',
    handler_t: 'void (*)(int)',
    table_t: 'int (*[4])(void *, long)',
    poll_t: 'unsigned int',
    aligned_u64: '__u64',
  });
  t.is(text(tu.typedefs.get('aligned_u64')!.attrs.aligned[0].tokens), '8');
  t.deepEqual(tu.typedefs.get('handler_t')!.loc, { file: 'snippet.h', line: 6 });
});

test('a typedef name is a type only where a type can start', (t) => {
  const tu = parse('typedef int T;\nstruct s { T T2; unsigned T; };');
  const s = record(tu, 's');
  t.deepEqual(s.members!.map((m) => [m.name, typeToString(m.type)]), [['T2', 'T'], ['T', 'unsigned int']]);
});

test('attributes: packed and aligned in every position and spelling', (t) => {
  const tu = parse(`struct a { int x; } __attribute__((packed));
struct __attribute__((__packed__)) b { int x; };
struct c { int x; } __attribute__((aligned(16), deprecated));
struct d {
  char m1 __attribute__((aligned(4)));
  int m2 __attribute__((__packed__, __aligned__(2)));
  __attribute__((aligned)) char m3;
  _Alignas(8) char m4;
  int m5 __attribute__((unused));
};
typedef struct { int x; } __attribute__((packed)) e_t;`);
  t.true(record(tu, 'a').attrs.packed);
  t.true(record(tu, 'b').attrs.packed);
  t.false(record(tu, 'c').attrs.packed);
  t.is(text(record(tu, 'c').attrs.aligned[0].tokens), '16');
  const d = record(tu, 'd');
  t.is(text(member(d, 'm1').attrs.aligned[0].tokens), '4');
  t.true(member(d, 'm2').attrs.packed);
  t.is(text(member(d, 'm2').attrs.aligned[0].tokens), '2');
  t.is(member(d, 'm3').attrs.aligned[0].tokens, null, 'bare aligned means the biggest alignment');
  t.is(text(member(d, 'm4').attrs.aligned[0].tokens), '8');
  t.deepEqual(member(d, 'm5').attrs, { packed: false, aligned: [] });
  const e = tu.typedefs.get('e_t')!.type;
  t.true(e.kind === 'record' && e.decl.attrs.packed);
});

test('attributes that could change layout but are not understood are errors with file:line', (t) => {
  headerError(t, () => parse('struct s {\n  int v __attribute__((vector_size(16)));\n};'), /^snippet\.h:2: __attribute__\(\(vector_size\)\): attribute may change the layout/);
  headerError(t, () => parse('typedef int di __attribute__((mode(DI)));'), /mode/);
});

test('bitfields: widths as tokens, unnamed and zero-width fields', (t) => {
  const tu = parse('struct s { unsigned a : 1, b : WIDTH + 1; int : 0; unsigned char : 3; long long c : 40 __attribute__((packed)); };');
  const m = record(tu, 's').members!;
  t.deepEqual(m.map((x) => [x.name ?? null, text(x.bitWidth)]), [['a', '1'], ['b', 'WIDTH + 1'], [null, '0'], [null, '3'], ['c', '40']]);
  t.true(m[4].attrs.packed);
});

test('enums: values kept as tokens, in order, anonymous ones too', (t) => {
  const tu = parse(`enum color { RED, GREEN = 1 << (2), BLUE = sizeof(int) + GREEN, };
enum { ANON_A = -1 };
struct uses { enum color c; };`);
  const color = tu.tags.get('color') as EnumDecl;
  t.deepEqual(color.enumerators!.map((e) => [e.name, text(e.value) ?? null]), [['RED', null], ['GREEN', '1 << ( 2 )'], ['BLUE', 'sizeof ( int ) + GREEN']]);
  const anon = tu.decls.find((d): d is Extract<Decl, { kind: 'enum' }> => d.kind === 'enum' && d.decl.tag === undefined)!;
  t.deepEqual(anon.decl.enumerators!.map((e) => e.name), ['ANON_A']);
  const c = member(record(tu, 'uses'), 'c').type;
  t.is(c.kind === 'enum' && c.decl, color);
});

test('__DECLARE_FLEX_ARRAY expansion: an anonymous struct holding an empty struct and a flexible array', (t) => {
  const tu = parse('struct kvm_msrs { unsigned nmsrs; union { struct { struct { } __empty_entries; unsigned entries[]; }; }; unsigned long tail[0]; };');
  const s = record(tu, 'kvm_msrs');
  const u = s.members![1].type as Extract<CType, { kind: 'record' }>;
  const wrapper = u.decl.members![0].type as Extract<CType, { kind: 'record' }>;
  const [empty, flex] = wrapper.decl.members!;
  t.is(empty.name, '__empty_entries');
  t.deepEqual(empty.type.kind === 'record' && empty.type.decl.members, []);
  t.is(flex.type.kind === 'array' && flex.type.size, null);
  const tail = member(s, 'tail').type;
  t.is(tail.kind === 'array' ? text(tail.size) : undefined, '0');
});

test('non-type declarations are stepped over: prototypes, inline bodies, variables, asm labels', (t) => {
  const tu = parse(`extern int f(int a, struct s *b);
static inline int g(void) { if (1) { return 2; } return 0; }
static const unsigned table[] = { 1, 2, { 3 } }, other = 4;
int h(void) __asm__("h2") __attribute__((deprecated));
_Static_assert(sizeof(int) == 4, "int");
struct after { int ok; };`);
  t.deepEqual(tu.decls.map((d) => ('name' in d ? `${d.kind}:${d.name}` : d.kind === 'record' ? `record:${d.decl.tag}` : d.kind)), [
    'object:f', 'object:g', 'object:table', 'object:other', 'object:h', 'staticAssert', 'record:after',
  ]);
  const sa = tu.decls.find((d): d is Extract<Decl, { kind: 'staticAssert' }> => d.kind === 'staticAssert')!;
  t.is(text(sa.expr), 'sizeof ( int ) == 4');
});

test('errors name file:line and the construct', (t) => {
  headerError(t, () => parse('struct s {\n  int a;\n  mystery_t b;\n};'), /^snippet\.h:3: member declaration: unknown type name 'mystery_t'/);
  headerError(t, () => parse('struct s { int a; };\n\nstruct s { int b; };'), /^snippet\.h:3: struct s: redefinition \(first defined at snippet\.h:1\)/);
  headerError(t, () => parse('struct s { int a; };\nunion s *p;'), /^snippet\.h:2: union s: tag 's' was declared as a different kind/);
  headerError(t, () => parse('struct s {\n  int a;\n'), /^snippet\.h:1: struct body: unterminated '\{'/);
  headerError(t, () => parse('struct s { int a }'), /^snippet\.h:1: member declaration: expected ';' but found '\}'/);
  headerError(t, () => parse('struct s {\n  int;\n};'), /^snippet\.h:2: member declaration: declaration does not declare anything/);
  headerError(t, () => parse('int x'), /expected ';' but found end of input/);
  headerError(t, () => parse('struct s { __typeof__(int) x; };'), /__typeof__: not supported/);
  headerError(t, () => parse('typedef int a;\ntypedef long a;'), /^snippet\.h:2: typedef: 'a' redefined with a different type/);
  headerError(t, () => parse('struct s { int f(void); };'), /has function type/);
  headerError(t, () => parse('enum e { A = };'), /'A' has an empty value/);
});

test('parseTypeName and startsTypeName resolve against the unit without changing it', (t) => {
  const tu = parse('typedef unsigned int u32;\nstruct kvm_regs { u32 a; };');
  const before = tu.decls.length;
  const ty = parseTypeName(tokenize('const struct kvm_regs *', 'expr'), tu);
  t.is(ty.kind === 'pointer' && ty.to.kind === 'record' && ty.to.decl, record(tu, 'kvm_regs'));
  t.is(typeToString(parseTypeName(tokenize('u32[4]', 'expr'), tu)), 'u32[4]');
  const unknown = parseTypeName(tokenize('struct nowhere', 'expr'), tu);
  t.true(unknown.kind === 'record' && unknown.decl.members === undefined);
  t.false(tu.tags.has('nowhere'));
  t.is(tu.decls.length, before);
  t.true(startsTypeName(tokenize('u32', 'e'), tu));
  t.true(startsTypeName(tokenize('const unsigned long', 'e'), tu));
  t.true(startsTypeName(tokenize('struct x', 'e'), tu));
  t.false(startsTypeName(tokenize('KVM_NR', 'e'), tu));
  t.false(startsTypeName(tokenize('(1)', 'e'), tu));
  t.throws(() => parseTypeName(tokenize('u32 x', 'expr'), tu), { instanceOf: HeaderError, message: /unexpected identifier 'x'/ });
});
