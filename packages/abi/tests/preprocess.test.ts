import test from 'ava';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tokenize } from '../src/generator/lexer.js';
import { preprocess, type PreprocessResult } from '../src/generator/preprocess.js';
import { HeaderError, type Token } from '../src/generator/tokens.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/generator/pp/', import.meta.url));
const text = (toks: Token[]) => toks.map((t) => t.text).join(' ');

/** Writes `files` (relative path → text) into a fresh directory and returns it. */
function headers(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-pp-'));
  for (const [rel, body] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), body);
  }
  return dir;
}

function pp(source: string, predefined: Record<string, string> = {}, extra: Record<string, string> = {}): PreprocessResult {
  const dir = headers({ 'main.h': source, ...extra });
  return preprocess({ entry: ['main.h'], includeDirs: [dir], predefined });
}
const out = (source: string, predefined?: Record<string, string>) => text(pp(source, predefined).tokens);

// ---- lexer ----

test('lexer: comments, splices, literals, punctuators, lines', (t) => {
  const toks = tokenize('a /* x\ny */ b // c \\\n still comment\n0x1FUL 07 \'\\n\' "s\\"t" ... <<= -> ##\nlong\\\nname', 'f.h');
  t.deepEqual(toks.map((x) => [x.kind, x.text, x.loc.line]), [
    ['ident', 'a', 1], ['ident', 'b', 2],
    ['number', '0x1FUL', 4], ['number', '07', 4], ['char', "'\\n'", 4], ['string', '"s\\"t"', 4],
    ['punct', '...', 4], ['punct', '<<=', 4], ['punct', '->', 4], ['punct', '##', 4],
    ['ident', 'longname', 5],
  ]);
  t.true(toks[2].bol === true, 'first token after a newline starts a line');
  t.falsy(toks[1].bol, 'a newline inside a comment does not start a line');
});

test('lexer: errors name file:line', (t) => {
  t.throws(() => tokenize('int x;\n/* never closed', 'c.h'), { instanceOf: HeaderError, message: /^c\.h:2: comment: unterminated/ });
  t.true(tokenize('\n\n"abc\n', 's.h')[0].unterminated, 'an unterminated quote is flagged, not fatal, when lexing');
  t.throws(() => tokenize('int @x;', 'at.h'), { instanceOf: HeaderError, message: /^at\.h:1: character/ });
});

// ---- macros ----

test('object-like and function-like macros, nested and rescanned', (t) => {
  t.is(out('#define A 1\n#define B (A + A)\nint x = B;'), 'int x = ( 1 + 1 ) ;');
  t.is(out('#define SQ(x) ((x) * (x))\nint y = SQ(SQ(2));'), 'int y = ( ( ( ( 2 ) * ( 2 ) ) ) * ( ( ( 2 ) * ( 2 ) ) ) ) ;');
  t.is(out('#define F (x)\nF'), '( x )', 'a space before ( makes it object-like');
  t.is(out('#define G(x) x\nint G;'), 'int G ;', 'a function-like name without ( is not expanded');
  t.is(out('#define f(a) a*g\n#define g(a) f(a)\nf(2)(9)'), '2 * 9 * g', 'C11 6.10.3.5 example: rescanning with following tokens');
  t.is(out('#define ARGS(a, b) a | b\nARGS((1, 2), [3])'), '( 1 , 2 ) | [ 3 ]', 'commas inside parentheses do not split');
  t.throws(() => out('#define ARGS(a, b) a | b\nARGS(x, [3, 4])'), { message: /expects 2 argument\(s\), got 3/ }, 'brackets do not protect commas');
  t.is(out('#define E() 5\nE()'), '5');
});

test('self-reference does not recurse (hide sets)', (t) => {
  t.is(out('#define foo foo + 1\nfoo'), 'foo + 1');
  t.is(out('#define x (4 + y)\n#define y (2 * x)\nx y'), '( 4 + ( 2 * x ) ) ( 2 * ( 4 + y ) )');
  t.is(out('#define KVM_DEV_TYPE_X KVM_DEV_TYPE_X\nKVM_DEV_TYPE_X'), 'KVM_DEV_TYPE_X');
});

test('# stringizes and ## pastes', (t) => {
  t.is(out('#define S(x) #x\nS(a  +  "b\\n")'), '"a + \\"b\\\\n\\""');
  t.is(out('#define CAT(a, b) a ## b\nCAT(KVM_, RUN) CAT(0x, 1F) CAT(, x) CAT(y, )'), 'KVM_RUN 0x1F x y');
  t.is(out('#define X(n) __empty_ ## n\nstruct { int X(regs); }'), 'struct { int __empty_regs ; }');
  t.is(out('#define A_B 7\n#define CAT(a, b) a ## b\nCAT(A_, B)'), '7', 'the pasted token is rescanned');
});

test('variadic macros: __VA_ARGS__, named, GNU comma swallowing', (t) => {
  t.is(out('#define V(fmt, ...) f(fmt, __VA_ARGS__)\nV(1, 2, 3)'), 'f ( 1 , 2 , 3 )');
  t.is(out('#define GROUP(TAG, MEMBERS...) struct TAG { MEMBERS }\nGROUP(t, int a; int b;)'), 'struct t { int a ; int b ; }');
  t.is(out('#define W(fmt, args...) g(fmt, ## args)\nW(1) W(1, 2)'), 'g ( 1 ) g ( 1 , 2 )');
});

test('conditionals: #if/#elif/#else nesting, defined(), expressions', (t) => {
  const src = [
    '#define ONE 1',
    '#if defined(ONE) && !defined ZERO',
    '# if ONE + 1 == 3',
    'wrong1',
    '# elif (ONE << 4) == 16',
    'nested_elif',
    '# else',
    'wrong2',
    '# endif',
    '#elif 1',
    'wrong3',
    '#else',
    '#error not reached: skipped groups are not processed',
    '#endif',
    '#ifdef ONE',
    'ifdef_ok',
    '#endif',
    '#ifndef ONE',
    'wrong4',
    '#else',
    'ifndef_else',
    '#endif',
    '#if UNDEFINED_NAME',
    'wrong5',
    '#endif',
    '#undef ONE',
    '#ifdef ONE',
    'wrong6',
    '#endif',
  ].join('\n');
  t.is(out(src), 'nested_elif ifdef_ok ifndef_else');
});

test('predefined macros (object- and function-like) are visible to #if', (t) => {
  t.is(out('#if __x86_64__\nx86\n#endif\n#if defined(__KERNEL__)\nkernel\n#endif', { __x86_64__: '1' }), 'x86');
  t.is(out('TWICE(3)', { 'TWICE(x)': '((x) * 2)' }), '( ( 3 ) * 2 )');
});

test('__attribute__ passes through to the parser', (t) => {
  t.is(out('#define __packed __attribute__((packed))\nstruct s { char c; } __packed;'), 'struct s { char c ; } __attribute__ ( ( packed ) ) ;');
});

test('fixture tree: <> and "" includes, include guards, #pragma once', (t) => {
  const r = preprocess({ entry: ['main.h'], includeDirs: [FIXTURES], predefined: { __x86_64__: '1' } });
  t.is(text(r.tokens), 'int guarded_once ; int local_value = 42 ; int area [ ( ( 8 ) * ( 2 ) ) ] ; int picked_x86 ;');
  t.deepEqual(r.files.map((f) => f.slice(FIXTURES.length)), ['main.h', 'sys/guarded.h', 'local.h', 'arch/value.h']);
  const arm = preprocess({ entry: ['main.h'], includeDirs: [FIXTURES], predefined: { __aarch64__: '1' } });
  t.true(text(arm.tokens).endsWith('int picked_arm ;'));
});

test('MacroTable: object-like listing, unexpanded bodies, expansion with stop names', (t) => {
  const r = pp('#define KVMIO 0xAE\n#define WRAP(x) (x)\n#define KVM_A WRAP(KVMIO)\n#define KVM_B KVM_A\n');
  const names = r.macros.objectLike().map((m) => m.name);
  t.deepEqual(names, ['KVMIO', 'KVM_A', 'KVM_B']);
  const a = r.macros.objectLike().find((m) => m.name === 'KVM_A');
  t.is(a?.loc.line, 3);
  t.true(a?.loc.file.endsWith('main.h'));
  t.is(text(r.macros.body('KVM_A') ?? []), 'WRAP ( KVMIO )');
  t.is(text(r.macros.expand('KVM_B')), '( 0xAE )');
  t.is(text(r.macros.expand('KVM_B', new Set(['WRAP']))), 'WRAP ( KVMIO )', 'arguments of a stopped call stay as written');
  t.true(r.macros.get('WRAP')?.functionLike);
});

// ---- errors ----

test('unterminated #if names the #if line', (t) => {
  const err = t.throws(() => preprocess({ entry: ['bad-unterminated.h'], includeDirs: [FIXTURES], predefined: {} }), { instanceOf: HeaderError });
  t.regex(err?.message ?? '', /bad-unterminated\.h:2: #if: unterminated conditional/);
});

test('unknown include names the including file:line and the header', (t) => {
  const err = t.throws(() => preprocess({ entry: ['bad-include.h'], includeDirs: [FIXTURES], predefined: {} }), { instanceOf: HeaderError });
  t.regex(err?.message ?? '', /bad-include\.h:3: #include <does\/not\/exist\.h>: not found in /);
});

test('a missing header is satisfied by a later include dir (fallback root)', (t) => {
  const primary = headers({ 'linux/kvm.h': '#include <linux/types.h>\nint kvm;' });
  const fallback = headers({ 'linux/types.h': 'int types;', 'linux/kvm.h': 'int shadowed;' });
  const r = preprocess({ entry: ['linux/kvm.h'], includeDirs: [primary, fallback], predefined: {} });
  t.is(text(r.tokens), 'int types ; int kvm ;');
});

test('#error in a taken branch is an error; in a skipped one it is not', (t) => {
  t.notThrows(() => preprocess({ entry: ['bad-error.h'], includeDirs: [FIXTURES], predefined: { __SIZEOF_LONG__: '8' } }));
  const err = t.throws(() => preprocess({ entry: ['bad-error.h'], includeDirs: [FIXTURES], predefined: { __SIZEOF_LONG__: '4' } }));
  t.regex(err?.message ?? '', /bad-error\.h:5: #error: this fixture needs LP64/);
});

test('malformed directives are one-line HeaderErrors naming file:line', (t) => {
  const fails = (src: string, re: RegExp) => t.throws(() => pp(src), { instanceOf: HeaderError, message: re });
  fails('#endif', /main\.h:1: #endif: without #if/);
  fails('#if 1\n#else\n#else\n#endif', /main\.h:3: #else: after #else/);
  fails('#if 1\n#else\n#elif 1\n#endif', /main\.h:3: #elif: after #else/);
  fails('\n#if 1 +\n#endif', /main\.h:2: #if 1 \+: /);
  fails('#if\n#endif', /main\.h:1: #if: missing expression/);
  fails('#define F(x) #y', /main\.h:1: #define F: '#' is not followed by a macro parameter/);
  fails('#define F(x, x', /main\.h:1: #define F\(…\): malformed parameter list/);
  fails('#define F(x) x\nF(1, 2)', /main\.h:2: macro F: expects 1 argument\(s\), got 2/);
  fails('#define F(x) x\nint a = F(1;', /main\.h:2: macro F: unterminated argument list/);
  fails('#frobnicate', /main\.h:1: #frobnicate: unknown preprocessing directive/);
  fails('#define CAT(a, b) a ## b\nCAT(+, /)', /main\.h:2: macro CAT: '##' of '\+' and '\/' does not form one token/);
  fails('#include', /main\.h:1: #include: expected "FILE" or <FILE>/);
});

test('unterminated quotes: an error in live code, fine in skipped groups and #error text', (t) => {
  t.throws(() => pp('int x;\nchar *s = "abc;\n'), { instanceOf: HeaderError, message: /main\.h:2: string literal: missing terminating "/ });
  t.throws(() => pp("#if 'a\n#endif"), { instanceOf: HeaderError, message: /main\.h:1: #if: missing terminating quote/ });
  t.is(out("#if 0\nit's skipped\n#endif\nok"), 'ok');
  t.throws(() => pp("#error can't go on"), { instanceOf: HeaderError, message: /main\.h:1: #error: can't go on/ });
});

test('#include nesting is bounded', (t) => {
  t.throws(() => pp('#include "main.h"'), { instanceOf: HeaderError, message: /nested more than \d+ deep/ });
});
