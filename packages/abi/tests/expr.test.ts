import test from 'ava';
import { evalConstExpr, evalConstExprTyped, ExprError, type ExprContext } from '../src/generator/expr.js';
import { tokenize } from '../src/generator/lexer.js';
import { HeaderError, type Token } from '../src/generator/tokens.js';

const ev = (src: string, ctx?: ExprContext): bigint => evalConstExpr(tokenize(src, 'expr.h'), ctx);
const typed = (src: string) => evalConstExprTyped(tokenize(src, 'expr.h'));
const text = (toks: Token[]) => toks.map((t) => t.text).join(' ');

test('integer literals: hex, octal, binary, suffixes', (t) => {
  t.is(ev('0x7f'), 127n);
  t.is(ev('0777'), 511n);
  t.is(ev('0b1010'), 10n);
  t.is(ev('0'), 0n);
  t.is(ev('10UL'), 10n);
  t.is(ev('0xffffffffffffffffULL'), 0xffffffffffffffffn);
  t.deepEqual(typed('1').type, { bits: 32, unsigned: false });
  t.deepEqual(typed('1U').type, { bits: 32, unsigned: true });
  t.deepEqual(typed('0xffffffff').type, { bits: 32, unsigned: true }, 'hex that does not fit int is unsigned int');
  t.deepEqual(typed('4294967295').type, { bits: 64, unsigned: false }, 'decimal that does not fit int is long');
  t.deepEqual(typed('1ULL').type, { bits: 64, unsigned: true });
});

test('unsigned 32-bit wraparound', (t) => {
  t.is(ev('1U << 31'), 0x80000000n);
  t.is(ev('~0U'), 0xffffffffn);
  t.is(ev('0U - 1'), 0xffffffffn);
  t.is(ev('0xffffffffU + 1'), 0n);
  t.is(ev('(1U << 31) << 0'), 2147483648n);
});

test('unsigned 64-bit wraparound and sign', (t) => {
  t.is(ev('-1UL'), 0xffffffffffffffffn);
  t.is(ev('(1ULL << 63)'), 0x8000000000000000n);
  t.is(ev('~0ULL >> 60'), 15n);
  t.is(ev('-1 >> 1'), -1n, 'arithmetic shift of a negative int');
  t.is(ev('1 << 31'), -2147483648n, 'GCC wraps into the sign bit of int');
  t.is(ev('-2147483647 - 1'), -2147483648n);
});

test('usual arithmetic conversions decide comparisons', (t) => {
  t.is(ev('-1 < 0U'), 0n, 'int converted to unsigned int');
  t.is(ev('-1L < 0U'), 1n, 'unsigned int fits in long');
  t.is(ev('-1 < 0UL'), 0n);
  t.is(ev('-7 / 2'), -3n, 'division truncates toward zero');
  t.is(ev('-7 % 2'), -1n);
});

test('casts truncate and set the type', (t) => {
  t.is(ev('(__u64)1 << 40'), 1n << 40n);
  t.is(ev('(unsigned long)-1'), 0xffffffffffffffffn);
  t.is(ev('(__u8)0x1ff'), 0xffn);
  t.is(ev('(signed char)0xff'), -1n);
  t.is(ev('(int)0xffffffffU'), -1n);
  t.is(ev('(unsigned short)-1 + 0'), 65535n);
  t.is(ev('(__u32)(1ULL << 32)'), 0n);
  t.is(ev('(long long)-1 < 0'), 1n);
});

test('operators, precedence, ternary, logical', (t) => {
  t.is(ev('1 + 2 * 3 - 4 / 2'), 5n);
  t.is(ev('(1 | 2) ^ 7 & 5'), 6n, '& binds tighter than ^');
  t.is(ev('1 ? 2 : 3'), 2n);
  t.is(ev('0 ? 2 : 1 ? 4 : 5'), 4n);
  t.is(ev('!0 + !5'), 1n);
  t.is(ev('3 && 0 || 7'), 1n);
  t.is(ev('1 == 1 != 0'), 1n);
  t.is(ev("'A' + '\\n' + '\\x10' + '\\0'"), 65n + 10n + 16n);
  t.is(ev('0 && 1 / 0'), 0n, 'short-circuit: no division by zero');
  t.is(ev('1 ? 5 : 1 / 0'), 5n);
  t.is(ev('(2, 3)'), 3n);
});

test('the ternary converts both arms to a common type', (t) => {
  t.is(ev('(1 ? -1 : 0U) > 0'), 1n);
});

test('sizeof and alignof go through the hooks', (t) => {
  const seen: string[] = [];
  const ctx: ExprContext = {
    sizeof: (toks) => {
      seen.push(text(toks));
      return text(toks) === 'struct kvm_regs' ? 144n : 8n;
    },
    alignof: () => 8n,
  };
  t.is(ev('sizeof(struct kvm_regs)', ctx), 144n);
  t.is(ev('sizeof(struct kvm_regs) / sizeof(__u64)', ctx), 18n);
  t.is(ev('__alignof__(struct kvm_regs)', ctx), 8n);
  t.deepEqual(seen, ['struct kvm_regs', 'struct kvm_regs', '__u64']);
  t.is(ev('sizeof(int)'), 4n, 'builtin types need no hook');
  t.is(ev('sizeof(unsigned long long) * 2'), 16n);
  t.is(ev('sizeof 1'), 4n, 'sizeof of an int expression');
  t.is(ev('sizeof(1UL)'), 8n);
  t.is(ev('sizeof(char *)'), 8n);
});

test('identifiers come from the ident hook (enumerators)', (t) => {
  const ctx: ExprContext = { ident: (n) => (n === 'FOO_MAX' ? 12n : undefined) };
  t.is(ev('FOO_MAX - 1', ctx), 11n);
  const err = t.throws(() => ev('BAR + 1', ctx), { instanceOf: ExprError });
  t.is(err?.kind, 'unresolved');
  t.regex(err?.message ?? '', /^expr\.h:1: .*unknown identifier 'BAR'/);
});

test('#if mode: intmax_t arithmetic and unknown identifiers are 0', (t) => {
  const pp: ExprContext = { preprocessor: true };
  t.is(ev('1 << 40', pp), 1n << 40n, 'no int overflow in #if');
  t.is(ev('UNDEFINED_THING + 2', pp), 2n);
  t.is(ev('-1 < 0U', pp), 0n, 'unsigned still wins in #if');
});

test('errors name file:line and classify the failure', (t) => {
  const kind = (src: string, ctx?: ExprContext) => {
    const err = t.throws(() => ev(src, ctx), { instanceOf: HeaderError });
    return { kind: (err as ExprError).kind, msg: err?.message ?? '' };
  };
  t.is(kind('1 / 0').kind, 'invalid');
  t.regex(kind('1 / 0').msg, /expr\.h:1: expression '1 \/ 0': division by zero/);
  t.is(kind('1 << 32').kind, 'invalid');
  t.is(kind('1ULL << 64').kind, 'invalid');
  t.is(kind('1 << -1').kind, 'invalid');
  t.is(kind('"str"').kind, 'not-integer');
  t.is(kind('1.5').kind, 'not-integer');
  t.is(kind('(1 + 2').kind, 'invalid', 'a definition cut short is broken, never skipped');
  t.is(kind('1 +').kind, 'invalid');
  t.regex(kind('1 +').msg, /expression ends early/);
  t.is(kind('1 2').kind, 'not-integer');
  t.is(kind('x = 1').kind, 'unresolved');
  t.is(kind('{ 1 }').kind, 'not-integer');
  t.is(kind('int').kind, 'not-integer');
  t.is(kind('f(1)').kind, 'unresolved');
  t.is(kind('sizeof(struct unknown)').kind, 'invalid', 'a struct size needs the layout hook');
  t.is(kind('(struct foo)1').kind, 'invalid');
  t.is(kind('99999999999999999999').kind, 'invalid');
  t.throws(() => evalConstExpr([]), { instanceOf: HeaderError, message: /empty expression/ });
});

test('a multi-line expression reports the line of the failing token', (t) => {
  const toks = tokenize('1 +\n2 +\n(3 / 0)', 'multi.h');
  t.throws(() => evalConstExpr(toks), { message: /^multi\.h:3: / });
});
