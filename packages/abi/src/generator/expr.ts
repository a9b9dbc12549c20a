import { HeaderError, type SourceLoc, type Token } from './tokens.js';

/** A C integer type on LP64: `bits` is 8/16/32/64 (after promotion only 32 or 64 remain). */
export interface IntType {
  bits: 8 | 16 | 32 | 64;
  unsigned: boolean;
  /** `_Bool`: a conversion to it yields 0 or 1 (C11 6.3.1.2), not the low 8 bits. */
  bool?: boolean;
}

export interface ExprContext {
  sizeof?(typeTokens: Token[]): bigint;
  alignof?(typeTokens: Token[]): bigint;
  /** The value of an identifier (enumerator), or undefined when it names nothing known. */
  ident?(name: string): bigint | undefined;
  /**
   * The C type of an enumerator: int when its value fits, else its enum's own type (a GCC
   * extension). Without the hook, the first of int/unsigned/long/unsigned long that holds it.
   */
  identType?(name: string): IntType | undefined;
  isTypeName?(tokens: Token[]): boolean;
  /** Width and signedness of an integer type named by typedef, for casts; optional refinement. */
  castType?(typeTokens: Token[]): IntType | undefined;
  /** Plain `char` is unsigned (arm64, riscv64), which changes the value of '\xff'. */
  charUnsigned?: boolean;
  /** `#if` semantics: every integer type is intmax_t/uintmax_t (64-bit), unknown identifiers are 0. */
  preprocessor?: boolean;
}

/**
 * Why an expression could not be evaluated. `not-integer`: the tokens are not an integer
 * constant expression at all (a string, a type, a statement, a function call) — callers that
 * scan every macro may skip those. `unresolved`: an identifier with no known value.
 * `invalid`: an integer expression whose evaluation is undefined (division by zero, bad shift)
 * or needs a type the hooks cannot size — always a real problem.
 */
export type ExprErrorKind = 'not-integer' | 'unresolved' | 'invalid';

export class ExprError extends HeaderError {
  constructor(
    loc: SourceLoc,
    construct: string,
    detail: string,
    readonly kind: ExprErrorKind,
  ) {
    super(loc, construct, detail);
    this.name = 'HeaderError';
  }
}

interface Value {
  v: bigint;
  t: IntType;
}

const INT: IntType = { bits: 32, unsigned: false };
const UINT: IntType = { bits: 32, unsigned: true };
const LONG: IntType = { bits: 64, unsigned: false };
const ULONG: IntType = { bits: 64, unsigned: true };

/** The kernel's fixed-width typedefs, used for casts when no castType hook knows better. */
const KNOWN_TYPEDEFS: Record<string, IntType> = {
  __u8: { bits: 8, unsigned: true }, __s8: { bits: 8, unsigned: false },
  __u16: { bits: 16, unsigned: true }, __s16: { bits: 16, unsigned: false },
  __u32: UINT, __s32: INT, __u64: ULONG, __s64: LONG,
  __le16: { bits: 16, unsigned: true }, __be16: { bits: 16, unsigned: true },
  __le32: UINT, __be32: UINT, __le64: ULONG, __be64: ULONG,
  __kernel_size_t: ULONG, __kernel_ssize_t: LONG, size_t: ULONG, ssize_t: LONG,
  __kernel_long_t: LONG, __kernel_ulong_t: ULONG, uintptr_t: ULONG, intptr_t: LONG,
  uint8_t: { bits: 8, unsigned: true }, int8_t: { bits: 8, unsigned: false },
  uint16_t: { bits: 16, unsigned: true }, int16_t: { bits: 16, unsigned: false },
  uint32_t: UINT, int32_t: INT, uint64_t: ULONG, int64_t: LONG,
};

const TYPE_KEYWORDS = new Set([
  'void', 'char', 'short', 'int', 'long', 'signed', 'unsigned', '__signed__', '__signed', '_Bool',
  'struct', 'union', 'enum', 'const', 'volatile', '__const', '__volatile__', 'float', 'double', '__int128',
]);

function wrap(v: bigint, t: IntType): bigint {
  return t.unsigned ? BigInt.asUintN(t.bits, v) : BigInt.asIntN(t.bits, v);
}

/** A cast's value: truncation to the target width, except that `_Bool` tests against zero. */
function convert(v: bigint, t: IntType): bigint {
  return t.bool ? (v !== 0n ? 1n : 0n) : wrap(v, t);
}

/**
 * Statement keywords: a macro body starting with one (`do { … } while (0)`) is a statement, not an
 * expression, so it is skipped like any other non-integer macro.
 */
const STATEMENT_KEYWORDS = new Set(['do', 'while', 'for', 'if', 'else', 'switch', 'return', 'goto', 'break', 'continue', 'case', 'default']);

/** Bytes per element of a string literal with this encoding prefix (LP64 Linux: wchar_t is 4 bytes). */
const STRING_UNIT: Record<string, number> = { '': 1, u8: 1, u: 2, U: 4, L: 4 };

function fits(v: bigint, t: IntType): boolean {
  return wrap(v, t) === v;
}

function typeName(t: IntType): string {
  const base = t.bits === 64 ? 'long' : t.bits === 32 ? 'int' : t.bits === 16 ? 'short' : 'char';
  return t.unsigned ? `unsigned ${base}` : base;
}

/** Evaluates a C integer constant expression with LP64 types and C's wraparound rules. */
export function evalConstExpr(tokens: Token[], ctx: ExprContext = {}): bigint {
  return new Evaluator(tokens, ctx).run().v;
}

/** Like evalConstExpr but also returns the C type of the result. */
export function evalConstExprTyped(tokens: Token[], ctx: ExprContext = {}): { value: bigint; type: IntType } {
  const r = new Evaluator(tokens, ctx).run();
  return { value: r.v, type: r.t };
}

class Evaluator {
  private i = 0;
  private readonly pp: boolean;

  constructor(
    private readonly toks: Token[],
    private readonly ctx: ExprContext,
  ) {
    this.pp = ctx.preprocessor === true;
  }

  run(): Value {
    if (this.toks.length === 0) {
      throw new ExprError({ file: '<expr>', line: 0 }, 'expression', 'empty expression', 'not-integer');
    }
    const r = this.comma(true);
    if (this.i < this.toks.length) this.fail(this.toks[this.i], 'not-integer', `unexpected '${this.toks[this.i].text}'`);
    return r;
  }

  // ---- helpers ----
  private peek(): Token | undefined {
    return this.toks[this.i];
  }
  private isPunct(text: string, at = this.i): boolean {
    const t = this.toks[at];
    return t !== undefined && t.kind === 'punct' && t.text === text;
  }
  private loc(tok?: Token): SourceLoc {
    return (tok ?? this.toks[Math.min(this.i, this.toks.length - 1)]).loc;
  }
  private fail(tok: Token | undefined, kind: ExprErrorKind, detail: string): never {
    const text = this.toks.map((t) => t.text).join(' ');
    const construct = `expression '${text.length > 80 ? text.slice(0, 77) + '...' : text}'`;
    throw new ExprError(this.loc(tok), construct, detail, kind);
  }
  private expect(text: string): Token {
    if (!this.isPunct(text)) {
      const t = this.peek();
      // Running out of tokens mid-expression is a broken definition, not some other kind of macro.
      if (!t) this.fail(t, 'invalid', `expected '${text}' at end of expression`);
      this.fail(t, 'not-integer', `expected '${text}' before '${t.text}'`);
    }
    return this.toks[this.i++];
  }
  private val(v: bigint, t: IntType): Value {
    return { v: wrap(v, t), t };
  }
  private promote(t: IntType): IntType {
    if (this.pp) return t.unsigned ? ULONG : LONG;
    return t.bits < 32 ? INT : t;
  }
  private common(a: IntType, b: IntType): IntType {
    a = this.promote(a);
    b = this.promote(b);
    if (a.unsigned === b.unsigned) return a.bits >= b.bits ? a : b;
    const [u, s] = a.unsigned ? [a, b] : [b, a];
    if (u.bits >= s.bits) return u;
    return s; // the signed type is wider, so it represents every value of the unsigned one
  }

  // ---- grammar, lowest precedence first ----
  private comma(live: boolean): Value {
    let v = this.conditional(live);
    while (this.isPunct(',')) {
      this.i++;
      v = this.conditional(live);
    }
    return v;
  }

  private conditional(live: boolean): Value {
    const cond = this.binary(0, live);
    if (!this.isPunct('?')) return cond;
    this.i++;
    const take = cond.v !== 0n;
    const a = this.comma(live && take);
    this.expect(':');
    const b = this.conditional(live && !take);
    const t = this.common(a.t, b.t);
    return this.val(take ? a.v : b.v, t);
  }

  private static readonly PREC: Record<string, number> = {
    '||': 1, '&&': 2, '|': 3, '^': 4, '&': 5, '==': 6, '!=': 6,
    '<': 7, '>': 7, '<=': 7, '>=': 7, '<<': 8, '>>': 8, '+': 9, '-': 9, '*': 10, '/': 10, '%': 10,
  };

  private binary(minPrec: number, live: boolean): Value {
    let left = this.unary(live);
    for (;;) {
      const t = this.peek();
      if (!t || t.kind !== 'punct') return left;
      const prec = Evaluator.PREC[t.text];
      if (prec === undefined || prec <= minPrec) return left;
      this.i++;
      if (t.text === '&&' || t.text === '||') {
        const short = t.text === '&&' ? left.v === 0n : left.v !== 0n;
        const right = this.binary(prec, live && !short);
        const res = t.text === '&&' ? left.v !== 0n && right.v !== 0n : left.v !== 0n || right.v !== 0n;
        left = this.val(res ? 1n : 0n, this.pp ? LONG : INT);
        continue;
      }
      const right = this.binary(prec, live);
      left = this.apply(t, left, right, live);
    }
  }

  private apply(op: Token, a: Value, b: Value, live: boolean): Value {
    if (op.text === '<<' || op.text === '>>') {
      const t = this.promote(a.t);
      const n = b.v;
      if (live && (n < 0n || n >= BigInt(t.bits))) {
        this.fail(op, 'invalid', `shift count ${n} is out of range for ${typeName(t)}`);
      }
      if (!live) return { v: 0n, t };
      return this.val(op.text === '<<' ? a.v << n : wrap(a.v, t) >> n, t);
    }
    const t = this.common(a.t, b.t);
    const x = wrap(a.v, t);
    const y = wrap(b.v, t);
    const relT = this.pp ? LONG : INT;
    switch (op.text) {
      case '+': return this.val(x + y, t);
      case '-': return this.val(x - y, t);
      case '*': return this.val(x * y, t);
      case '/':
      case '%':
        if (y === 0n) {
          if (live) this.fail(op, 'invalid', 'division by zero');
          return { v: 0n, t };
        }
        return this.val(op.text === '/' ? x / y : x % y, t);
      case '&': return this.val(x & y, t);
      case '|': return this.val(x | y, t);
      case '^': return this.val(x ^ y, t);
      case '==': return this.val(x === y ? 1n : 0n, relT);
      case '!=': return this.val(x !== y ? 1n : 0n, relT);
      case '<': return this.val(x < y ? 1n : 0n, relT);
      case '>': return this.val(x > y ? 1n : 0n, relT);
      case '<=': return this.val(x <= y ? 1n : 0n, relT);
      case '>=': return this.val(x >= y ? 1n : 0n, relT);
    }
    return this.fail(op, 'not-integer', `unsupported operator '${op.text}'`);
  }

  private unary(live: boolean): Value {
    const t = this.peek();
    if (!t) this.fail(undefined, 'invalid', 'expression ends early');
    if (t.kind === 'punct') {
      switch (t.text) {
        case '+': case '-': case '~': case '!': {
          this.i++;
          const a = this.unary(live);
          if (t.text === '!') return this.val(a.v === 0n ? 1n : 0n, this.pp ? LONG : INT);
          const pt = this.promote(a.t);
          if (t.text === '+') return this.val(a.v, pt);
          if (t.text === '-') return this.val(-a.v, pt);
          return this.val(~a.v, pt);
        }
        case '(': {
          const close = this.matching(this.i);
          const inner = this.toks.slice(this.i + 1, close);
          if (!this.pp && this.looksLikeType(inner)) {
            this.i = close + 1;
            if (this.isPunct('{')) this.fail(t, 'not-integer', 'compound literal');
            const target = this.castTarget(inner, t);
            const a = this.unary(live);
            // The result keeps the narrow type: `sizeof((__u8)1)` is 1. Arithmetic promotes it later.
            return { v: convert(a.v, target), t: target };
          }
          this.i++;
          const v = this.comma(live);
          this.expect(')');
          return v;
        }
        case '++': case '--': case '&': case '*':
          this.fail(t, 'not-integer', `'${t.text}' is not allowed in an integer constant expression`);
      }
      this.fail(t, 'not-integer', `unexpected '${t.text}'`);
    }
    if (t.kind === 'ident') {
      if (t.text === 'sizeof' || t.text === '__alignof__' || t.text === '__alignof' || t.text === '_Alignof' || t.text === 'alignof') {
        return this.sizeofLike(t, live);
      }
      return this.identifier(t);
    }
    if (t.kind === 'number') {
      this.i++;
      return this.number(t);
    }
    if (t.kind === 'char') {
      this.i++;
      return this.charLit(t);
    }
    this.i++;
    return this.fail(t, 'not-integer', `string literal ${t.text}`);
  }

  /** Index of the ')' closing the '(' at `open`. */
  private matching(open: number): number {
    let depth = 0;
    for (let j = open; j < this.toks.length; j++) {
      const tk = this.toks[j];
      if (tk.kind !== 'punct') continue;
      if (tk.text === '(') depth++;
      else if (tk.text === ')' && --depth === 0) return j;
    }
    return this.fail(this.toks[open], 'invalid', "unbalanced '('");
  }

  private looksLikeType(inner: Token[]): boolean {
    if (inner.length === 0) return false;
    const first = inner[0];
    if (first.kind !== 'ident') return false;
    if (TYPE_KEYWORDS.has(first.text)) return true;
    // A name followed only by '*'s/qualifiers is a type when the hooks (or the known kernel typedefs) say so.
    if (this.ctx.isTypeName) return this.ctx.isTypeName(inner);
    return first.text in KNOWN_TYPEDEFS && inner.slice(1).every((x) => x.text === '*' || x.text === 'const');
  }

  private castTarget(inner: Token[], at: Token): IntType {
    if (inner.some((x) => x.text === '*')) return ULONG;
    if (inner.some((x) => x.text === '[' || x.text === '(')) this.fail(at, 'not-integer', `cast to '${inner.map((x) => x.text).join(' ')}'`);
    const words = inner.map((x) => x.text).filter((w) => w !== 'const' && w !== 'volatile' && w !== '__const' && w !== '__volatile__');
    const fromHook = this.ctx.castType?.(inner);
    if (fromHook) return fromHook;
    const builtin = builtinType(words);
    if (builtin) return builtin;
    if (words.length === 1 && words[0] in KNOWN_TYPEDEFS) return KNOWN_TYPEDEFS[words[0]];
    // Without layout hooks an enum's underlying type is unknown: guessing int would give wrong values.
    return this.fail(at, 'invalid', `cannot cast to '${words.join(' ')}': not a known integer type`);
  }

  private sizeofLike(kw: Token, live: boolean): Value {
    this.i++;
    const isSizeof = kw.text === 'sizeof';
    if (this.pp) this.fail(kw, 'not-integer', `'${kw.text}' in #if`);
    if (this.isPunct('(')) {
      const close = this.matching(this.i);
      const inner = this.toks.slice(this.i + 1, close);
      if (this.looksLikeType(inner)) {
        this.i = close + 1;
        return { v: live ? this.typeSize(inner, isSizeof, kw) : 0n, t: ULONG };
      }
    }
    const literal = this.stringOperand();
    if (literal !== undefined) {
      if (!isSizeof) this.fail(kw, 'invalid', `${kw.text} of a string literal`);
      return { v: literal, t: ULONG };
    }
    // `sizeof expr`: only the type of the operand matters, so it is parsed but not evaluated. The
    // type is not promoted: `sizeof((__u8)1)` is 1 and `sizeof('a')` is 4 because 'a' is an int.
    const operand = this.unary(false);
    const size = BigInt(operand.t.bits / 8);
    return { v: size, t: ULONG };
  }

  /**
   * `sizeof "ab"` / `sizeof("a" "b")`: the array size of the (concatenated) literal, terminator
   * included. Consumes the operand and returns its size, or returns undefined and consumes nothing.
   */
  private stringOperand(): bigint | undefined {
    let j = this.i;
    let parens = 0;
    while (this.isPunct('(', j)) {
      parens++;
      j++;
    }
    const strings: Token[] = [];
    while (this.toks[j]?.kind === 'string') strings.push(this.toks[j++]);
    if (strings.length === 0) return undefined;
    for (let k = 0; k < parens; k++, j++) if (!this.isPunct(')', j)) return undefined;
    let unit = 1;
    let chars = 0;
    for (const s of strings) {
      const m = /^(u8|u|U|L)?"(.*)"$/s.exec(s.text);
      if (!m) this.fail(s, 'invalid', `bad string literal ${s.text}`);
      if (m[1] !== undefined && m[1] !== 'u8') unit = Math.max(unit, STRING_UNIT[m[1]]);
      chars += literalChars(m[2], s, (tok, msg) => this.fail(tok, 'invalid', msg));
    }
    if (unit > 1 && strings.some((s) => /[^\x00-\x7f]/.test(s.text))) {
      this.fail(strings[0], 'invalid', 'sizeof of a wide string literal with non-ASCII characters');
    }
    this.i = j;
    return BigInt((chars + 1) * unit);
  }

  private typeSize(inner: Token[], isSizeof: boolean, kw: Token): bigint {
    const hook = isSizeof ? this.ctx.sizeof : this.ctx.alignof;
    if (hook) {
      try {
        return hook.call(this.ctx, inner);
      } catch (err) {
        if (err instanceof HeaderError) throw err;
        this.fail(kw, 'invalid', `${kw.text}(${inner.map((x) => x.text).join(' ')}): ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (inner.some((x) => x.text === '*')) return 8n;
    const words = inner.map((x) => x.text);
    const b = builtinType(words) ?? (words.length === 1 ? KNOWN_TYPEDEFS[words[0]] : undefined);
    if (b) return BigInt(b.bits / 8);
    return this.fail(kw, 'invalid', `${kw.text}(${words.join(' ')}) needs type layout information`);
  }

  private identifier(t: Token): Value {
    this.i++;
    if (this.pp) {
      // C 6.10.1: identifiers left after macro expansion evaluate to 0 in #if.
      return { v: 0n, t: LONG };
    }
    if (TYPE_KEYWORDS.has(t.text)) this.fail(t, 'not-integer', `type '${t.text}' where a value is expected`);
    if (STATEMENT_KEYWORDS.has(t.text)) this.fail(t, 'not-integer', `statement keyword '${t.text}'`);
    // A function-like macro would have been expanded already: this calls something undefined.
    if (this.isPunct('(')) this.fail(t, 'unresolved', `call of '${t.text}', which is not a macro`);
    const v = this.ctx.ident?.(t.text);
    if (v === undefined) {
      if (this.ctx.isTypeName?.([t])) this.fail(t, 'not-integer', `type '${t.text}' where a value is expected`);
      this.fail(t, 'unresolved', `unknown identifier '${t.text}'`);
    }
    const known = this.ctx.identType?.(t.text);
    if (known) return { v, t: known };
    // Enumerators are int unless their value needs a wider type (a GCC extension).
    for (const ty of [INT, UINT, LONG, ULONG]) if (fits(v, ty)) return { v, t: ty };
    return this.fail(t, 'invalid', `value of '${t.text}' does not fit 64 bits`);
  }

  private number(t: Token): Value {
    const m = /^(0[xX][0-9a-fA-F]+|0[bB][01]+|[0-9]+)([uUlL]*)$/.exec(t.text);
    if (!m) this.fail(t, 'not-integer', `'${t.text}' is not an integer literal`);
    const [, digits, suffixRaw] = m;
    const suffix = suffixRaw.toLowerCase();
    if (!['', 'u', 'l', 'ul', 'lu', 'll', 'ull', 'llu'].includes(suffix) || /lL|Ll/.test(suffixRaw)) {
      this.fail(t, 'not-integer', `invalid integer suffix in '${t.text}'`);
    }
    let v: bigint;
    const decimal = !/^0[xXbB]/.test(digits) && !(digits.length > 1 && digits[0] === '0');
    if (/^0[xXbB]/.test(digits)) v = BigInt(digits);
    else if (!decimal) {
      if (!/^[0-7]+$/.test(digits)) this.fail(t, 'not-integer', `invalid octal literal '${t.text}'`);
      v = BigInt('0o' + digits.slice(1));
    } else v = BigInt(digits);
    const unsigned = suffix.includes('u');
    const long = suffix.includes('l');
    let candidates: IntType[];
    if (this.pp) candidates = unsigned ? [ULONG] : [LONG, ULONG];
    else if (unsigned) candidates = long ? [ULONG] : [UINT, ULONG];
    else if (decimal) candidates = long ? [LONG, ULONG] : [INT, LONG, ULONG];
    else candidates = long ? [LONG, ULONG] : [INT, UINT, LONG, ULONG];
    for (const ty of candidates) if (fits(v, ty)) return { v, t: ty };
    return this.fail(t, 'invalid', `integer literal '${t.text}' is too large`);
  }

  private charLit(t: Token): Value {
    const m = /^(L|u|U|u8)?'(.*)'$/s.exec(t.text);
    if (!m) this.fail(t, 'not-integer', `bad character literal ${t.text}`);
    const body = m[2];
    let v: number;
    if (body[0] !== '\\') {
      if (body.length !== 1) this.fail(t, 'invalid', `multi-character literal ${t.text}`);
      v = body.charCodeAt(0);
    } else {
      const esc = body.slice(1);
      const simple: Record<string, number> = { n: 10, t: 9, r: 13, '0': 0, '\\': 92, "'": 39, '"': 34, a: 7, b: 8, f: 12, v: 11, e: 27, '?': 63 };
      if (/^[0-7]{1,3}$/.test(esc)) v = parseInt(esc, 8);
      else if (/^x[0-9a-fA-F]+$/.test(esc)) v = parseInt(esc.slice(1), 16);
      else if (esc.length === 1 && esc in simple) v = simple[esc];
      else return this.fail(t, 'invalid', `unknown escape in ${t.text}`);
    }
    const value = m[1] || this.ctx.charUnsigned ? BigInt(v) : BigInt.asIntN(8, BigInt(v));
    return { v: value, t: this.pp ? LONG : INT };
  }
}

/** The integer type named by a list of C type keywords, or undefined when it is not one. */
export function builtinType(words: string[]): IntType | undefined {
  if (words.length === 0) return undefined;
  let unsigned = false;
  let signedSeen = false;
  let longs = 0;
  let base: string | undefined;
  for (const w of words) {
    if (w === 'unsigned') unsigned = true;
    else if (w === 'signed' || w === '__signed__' || w === '__signed') signedSeen = true;
    else if (w === 'long') longs++;
    else if (w === 'int' || w === 'char' || w === 'short' || w === '_Bool') {
      if (base !== undefined) return undefined;
      base = w;
    } else return undefined;
  }
  if (unsigned && signedSeen) return undefined;
  if (base === '_Bool') return longs || unsigned || signedSeen ? undefined : { bits: 8, unsigned: true, bool: true };
  if (base === 'char') return longs ? undefined : { bits: 8, unsigned };
  if (base === 'short') return longs ? undefined : { bits: 16, unsigned };
  if (longs > 2) return undefined;
  return longs > 0 ? { bits: 64, unsigned } : { bits: 32, unsigned };
}

/** Characters (after escape decoding) in the body of a string literal. */
function literalChars(body: string, tok: Token, fail: (tok: Token, msg: string) => never): number {
  let n = 0;
  for (let k = 0; k < body.length; n++) {
    if (body[k] !== '\\') {
      k++;
      continue;
    }
    const rest = body.slice(k + 1);
    const m = /^([0-7]{1,3}|x[0-9a-fA-F]+|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|['"?\\abfnrtve])/.exec(rest);
    if (!m) fail(tok, `unknown escape in ${tok.text}`);
    if (m[1][0] === 'u' || m[1][0] === 'U') fail(tok, `universal character name in ${tok.text}`);
    k += 1 + m[1].length;
  }
  return n;
}
