/**
 * Declaration parser for preprocessed uapi header text: the file-scope declarations that define
 * types (struct/union/enum definitions, typedefs) plus enough of everything else (prototypes,
 * inline function bodies, variables, _Static_assert) to step over it without losing sync.
 *
 * Sizes stay unevaluated token lists: they may mention sizeof(struct …) or enumerators, which only
 * the layout engine (layout.ts) can resolve for a given arch.
 */
import { HeaderError, type PackChange, type SourceLoc, type Token } from './tokens.js';

export interface AlignAttr {
  /** The argument of aligned(n); null for a bare `aligned` (the target's largest useful alignment). */
  tokens: Token[] | null;
  loc: SourceLoc;
}

export interface Attributes {
  packed: boolean;
  aligned: AlignAttr[];
}

export type BaseTypeName =
  | 'void'
  | 'char'
  | 'signed char'
  | 'unsigned char'
  | 'short'
  | 'unsigned short'
  | 'int'
  | 'unsigned int'
  | 'long'
  | 'unsigned long'
  | 'long long'
  | 'unsigned long long'
  | '__int128'
  | 'unsigned __int128'
  | 'float'
  | 'double'
  | 'long double'
  | '_Bool';

/**
 * A C type. Qualifiers never change layout; they are kept (`quals`, normalised to const /
 * volatile / restrict) only so that a pointer's target is spelled right ("const char *").
 */
export type CType =
  | { kind: 'base'; name: BaseTypeName; quals?: string[] }
  | { kind: 'typedef'; name: string; loc: SourceLoc; quals?: string[] }
  | { kind: 'record'; decl: RecordDecl; quals?: string[] }
  | { kind: 'enum'; decl: EnumDecl; quals?: string[] }
  | { kind: 'pointer'; to: CType; quals?: string[] }
  /** `size` null: `[]` (flexible). */
  | { kind: 'array'; of: CType; size: Token[] | null; loc: SourceLoc }
  /** Parameters kept only as text: they never matter for data layout. */
  | { kind: 'function'; returns: CType; params: string };

export interface Member {
  /** Absent for anonymous struct/union members and unnamed bitfields. */
  name?: string;
  type: CType;
  bitWidth?: Token[];
  attrs: Attributes;
  loc: SourceLoc;
}

/**
 * One struct or union type. References by tag share one object, so a forward declaration and the
 * later definition are the same RecordDecl; `members` stays undefined while it is incomplete.
 */
export interface RecordDecl {
  kind: 'struct' | 'union';
  tag?: string;
  members?: Member[];
  attrs: Attributes;
  /** Where the type was first named. */
  loc: SourceLoc;
  /** Where the body was given. */
  defLoc?: SourceLoc;
  /** The body's braces. */
  body?: { open: SourceLoc; close: SourceLoc };
  /** The `#pragma pack(N)` in force at the closing brace (GCC lays the record out there), in bytes. */
  maxFieldAlign?: number;
}

export interface Enumerator {
  name: string;
  value?: Token[];
  loc: SourceLoc;
}

export interface EnumDecl {
  tag?: string;
  enumerators?: Enumerator[];
  attrs: Attributes;
  loc: SourceLoc;
  defLoc?: SourceLoc;
}

export interface TypedefDecl {
  kind: 'typedef';
  name: string;
  type: CType;
  /** Attributes on the typedef itself: aligned(n) here may raise or lower the alignment. */
  attrs: Attributes;
  loc: SourceLoc;
}

/**
 * In source order. A record or enum appears when its closing brace is reached, so nested
 * definitions come before the record that contains them, as in C where they are complete first.
 */
export type Decl =
  | { kind: 'record'; decl: RecordDecl }
  | { kind: 'enum'; decl: EnumDecl }
  | TypedefDecl
  /** A variable or function declaration: not a type, kept so callers can see it was skipped. */
  | { kind: 'object'; name: string; type: CType; loc: SourceLoc }
  | { kind: 'staticAssert'; expr: Token[]; loc: SourceLoc };

export interface TranslationUnit {
  decls: Decl[];
  /** struct, union and enum tags share one namespace in C. */
  tags: Map<string, RecordDecl | EnumDecl>;
  typedefs: Map<string, TypedefDecl>;
}

/** `packs`: the preprocessor's #pragma pack changes, by token index, in order. */
export function parseTranslationUnit(tokens: Token[], packs: PackChange[] = []): TranslationUnit {
  const tu: TranslationUnit = { decls: [], tags: new Map(), typedefs: new Map() };
  new Parser(tokens, tu, true, packs).translationUnit();
  return tu;
}

/**
 * Parses a type name (as inside sizeof(…)) against the tags and typedefs of `tu`, without adding
 * to it. An unknown tag yields an incomplete record, which the caller reports when it needs a size.
 */
export function parseTypeName(tokens: Token[], tu: TranslationUnit): CType {
  return new Parser(tokens, tu, false).typeNameOnly();
}

/** Whether `tokens` start like a type name rather than an expression (the sizeof/cast question). */
export function startsTypeName(tokens: Token[], tu: TranslationUnit): boolean {
  const t = tokens.find((x) => !QUALIFIERS.has(x.text) && x.text !== '__extension__');
  if (!t || t.kind !== 'ident') return false;
  return TYPE_KEYWORDS.has(t.text) || Object.hasOwn(BUILTIN_TYPEDEFS, t.text) || t.text === 'struct' || t.text === 'union' || t.text === 'enum' || tu.typedefs.has(t.text);
}

/**
 * C spelling of a type as an abstract declarator: "unsigned int", "struct kvm_regs",
 * "const char *", "__u8[16]". Qualifiers of the type itself are left out (a member's `const`
 * does not change what it holds); those of a pointer's target are kept.
 */
export function typeToString(type: CType): string {
  return render(type, '', false);
}

function render(type: CType, inner: string, withQuals: boolean): string {
  const quals = withQuals && 'quals' in type && type.quals?.length ? type.quals : [];
  const join = (base: string) => {
    const spelled = [...quals, base].join(' ');
    return inner ? `${spelled} ${inner}` : spelled;
  };
  switch (type.kind) {
    case 'base':
      return join(type.name);
    case 'typedef':
      return join(type.name);
    case 'record':
      return join(`${type.decl.kind} ${type.decl.tag ?? '<anonymous>'}`);
    case 'enum':
      return join(`enum ${type.decl.tag ?? '<anonymous>'}`);
    case 'pointer': {
      const needsParens = type.to.kind === 'array' || type.to.kind === 'function';
      const ptr = quals.length ? `*${quals.join(' ')}${inner ? ` ${inner}` : ''}` : `*${inner}`;
      return render(type.to, needsParens ? `(${ptr})` : ptr, true);
    }
    case 'array': {
      const size = type.size ? type.size.map((t) => t.text).join(' ') : '';
      return render(type.of, `${inner}[${size}]`, withQuals).replace(/ \[/, '[');
    }
    case 'function':
      return render(type.returns, `${inner}(${type.params})`, false);
  }
}

/** Qualifier spellings and the keyword each one means. */
const QUALIFIER_NAMES: Record<string, string> = {
  const: 'const', __const: 'const', __const__: 'const', volatile: 'volatile', __volatile: 'volatile',
  __volatile__: 'volatile', restrict: 'restrict', __restrict: 'restrict', __restrict__: 'restrict', _Atomic: '_Atomic',
};
const QUALIFIERS = new Set([
  'const', '__const', '__const__', 'volatile', '__volatile', '__volatile__',
  'restrict', '__restrict', '__restrict__', '_Atomic',
]);
const STORAGE = new Set([
  'typedef', 'extern', 'static', 'inline', '__inline', '__inline__', '_Noreturn', 'register', 'auto',
  '_Thread_local', '__thread',
]);
const TYPE_KEYWORDS = new Set([
  'void', 'char', 'short', 'int', 'long', 'signed', '__signed', '__signed__', 'unsigned', 'float', 'double',
  '_Bool', '__int128', '_Complex', '__complex__',
]);
/** Type names GCC predefines (arm64's user_fpsimd_state uses __uint128_t). */
const BUILTIN_TYPEDEFS: Record<string, BaseTypeName> = { __int128_t: '__int128', __uint128_t: 'unsigned __int128' };
/** Attributes that change nothing about size, alignment or member placement. */
const INERT_ATTRIBUTES = new Set([
  'deprecated', 'unused', 'used', 'may_alias', 'nonstring', 'counted_by', 'designated_init', 'warn_unused_result',
  'const', 'pure', 'noreturn', 'format', 'nonnull', 'always_inline', 'noinline', 'visibility', 'cold', 'hot',
  'aligned_if_needed', 'warning', 'error', 'flag_enum', 'fallthrough', 'unavailable', 'noclone', 'malloc',
  'sentinel', 'returns_nonnull', 'weak', 'alias', 'section', 'btf_type_tag', 'btf_decl_tag', 'preserve_access_index',
]);

function noAttrs(): Attributes {
  return { packed: false, aligned: [] };
}

function mergeAttrs(into: Attributes, from: Attributes): Attributes {
  into.packed ||= from.packed;
  into.aligned.push(...from.aligned);
  return into;
}

interface Specifiers {
  type: CType;
  attrs: Attributes;
  isTypedef: boolean;
  /** The struct/union/enum whose body these specifiers contained, if any. */
  defined?: RecordDecl | EnumDecl;
}

interface Declarator {
  name?: string;
  loc: SourceLoc;
  apply(base: CType): CType;
}

type Suffix = { kind: 'array'; size: Token[] | null; loc: SourceLoc } | { kind: 'function'; params: string };

class Parser {
  private pos = 0;
  private readonly endLoc: SourceLoc;

  constructor(
    private readonly toks: Token[],
    private readonly tu: TranslationUnit,
    /** false for parseTypeName: look things up but never add to the unit. */
    private readonly register: boolean,
    private readonly packs: PackChange[] = [],
  ) {
    const last = toks[toks.length - 1];
    this.endLoc = last ? last.loc : { file: '<empty>', line: 0 };
  }

  translationUnit(): void {
    while (!this.atEnd()) this.externalDeclaration();
  }

  typeNameOnly(): CType {
    const spec = this.specifiers('type name');
    const d = this.declarator(true);
    if (!this.atEnd()) this.fail(this.peek()!.loc, 'type name', `unexpected '${this.peek()!.text}'`);
    return d.apply(spec.type);
  }

  // ---- token helpers ----

  private atEnd(): boolean {
    return this.pos >= this.toks.length;
  }

  private peek(k = 0): Token | undefined {
    return this.toks[this.pos + k];
  }

  private is(text: string, k = 0): boolean {
    const t = this.toks[this.pos + k];
    return t !== undefined && t.text === text && t.kind !== 'string' && t.kind !== 'char';
  }

  private loc(): SourceLoc {
    return this.peek()?.loc ?? this.endLoc;
  }

  private next(construct: string): Token {
    const t = this.toks[this.pos];
    if (!t) this.fail(this.endLoc, construct, 'unexpected end of input');
    this.pos++;
    return t;
  }

  private expect(text: string, construct: string): Token {
    const t = this.peek();
    if (!t || !this.is(text)) this.fail(this.loc(), construct, `expected '${text}' but found ${t ? `'${t.text}'` : 'end of input'}`);
    this.pos++;
    return t;
  }

  private fail(loc: SourceLoc, construct: string, detail: string): never {
    throw new HeaderError(loc, construct, detail);
  }

  /** Tokens up to the bracket matching the one just consumed; the closer is consumed too. */
  private balanced(open: string, close: string, construct: string): Token[] {
    const out: Token[] = [];
    let depth = 1;
    const startLoc = this.toks[this.pos - 1]?.loc ?? this.loc();
    for (;;) {
      const t = this.peek();
      if (!t) this.fail(startLoc, construct, `unbalanced '${open}'`);
      this.pos++;
      if (t.kind === 'punct' && t.text === open) depth++;
      else if (t.kind === 'punct' && t.text === close && --depth === 0) return out;
      out.push(t);
    }
  }

  /** Skips to the next ',' or ';' outside brackets (an initializer), leaving it unconsumed. */
  private skipInitializer(): void {
    let depth = 0;
    const startLoc = this.loc();
    for (;;) {
      const t = this.peek();
      if (!t) this.fail(startLoc, 'initializer', 'unterminated initializer');
      if (t.kind === 'punct') {
        if (t.text === '(' || t.text === '[' || t.text === '{') depth++;
        else if (t.text === ')' || t.text === ']' || t.text === '}') depth--;
        else if (depth === 0 && (t.text === ',' || t.text === ';')) return;
      }
      this.pos++;
    }
  }

  // ---- declarations ----

  private externalDeclaration(): void {
    if (this.is(';')) {
      this.pos++;
      return;
    }
    if (this.is('_Static_assert') || this.is('static_assert')) {
      this.staticAssert();
      return;
    }
    if (this.is('asm') || this.is('__asm__') || this.is('__asm')) {
      this.fail(this.loc(), 'file-scope asm', 'top-level asm statements are not declarations');
    }
    const spec = this.specifiers('declaration');
    if (this.is(';')) {
      this.pos++;
      return; // only a tag declaration or definition, already recorded
    }
    for (;;) {
      const d = this.declarator(false);
      const attrs = mergeAttrs(this.attributesAndAsm(), spec.attrs);
      if (d.name === undefined) this.fail(d.loc, 'declaration', 'declarator without a name');
      const type = d.apply(spec.type);
      if (spec.isTypedef) this.addTypedef(d.name, type, attrs, d.loc);
      else this.tu.decls.push({ kind: 'object', name: d.name, type, loc: d.loc });
      if (this.is('{')) {
        if (type.kind !== 'function' || spec.isTypedef) this.fail(this.loc(), 'function definition', `'{' after non-function '${d.name}'`);
        this.pos++;
        this.balanced('{', '}', 'function body');
        return;
      }
      if (this.is('=')) {
        this.pos++;
        this.skipInitializer();
      }
      if (this.is(',')) {
        this.pos++;
        continue;
      }
      this.expect(';', 'declaration');
      return;
    }
  }

  private staticAssert(): void {
    const loc = this.next('_Static_assert').loc;
    this.expect('(', '_Static_assert');
    const inner = this.balanced('(', ')', '_Static_assert');
    // The message (if any) follows the last top-level comma.
    let depth = 0;
    let comma = -1;
    inner.forEach((t, i) => {
      if (t.kind !== 'punct') return;
      if (t.text === '(' || t.text === '[') depth++;
      else if (t.text === ')' || t.text === ']') depth--;
      else if (t.text === ',' && depth === 0) comma = i;
    });
    const expr = comma >= 0 && inner[comma + 1]?.kind === 'string' ? inner.slice(0, comma) : inner;
    this.expect(';', '_Static_assert');
    this.tu.decls.push({ kind: 'staticAssert', expr, loc });
  }

  private addTypedef(name: string, type: CType, attrs: Attributes, loc: SourceLoc): void {
    if (!this.register) return;
    const prev = this.tu.typedefs.get(name);
    if (prev && typeToString(prev.type) !== typeToString(type)) {
      this.fail(loc, 'typedef', `'${name}' redefined with a different type (first at ${prev.loc.file}:${prev.loc.line})`);
    }
    const decl: TypedefDecl = { kind: 'typedef', name, type, attrs, loc };
    if (!prev) this.tu.typedefs.set(name, decl);
    this.tu.decls.push(decl);
  }

  private specifiers(construct: string): Specifiers {
    const attrs = noAttrs();
    const words: Token[] = [];
    let named: CType | undefined;
    let defined: RecordDecl | EnumDecl | undefined;
    let isTypedef = false;
    const quals = new Set<string>();
    const startLoc = this.loc();
    for (;;) {
      const t = this.peek();
      if (!t || t.kind !== 'ident') break;
      const w = t.text;
      if (QUALIFIERS.has(w) || w === '__extension__') {
        this.pos++;
        if (QUALIFIERS.has(w)) quals.add(QUALIFIER_NAMES[w]);
        if (w === '_Atomic' && this.is('(')) this.fail(t.loc, '_Atomic(type)', 'atomic types are not supported');
      } else if (STORAGE.has(w)) {
        this.pos++;
        if (w === 'typedef') isTypedef = true;
      } else if (w === '__attribute__' || w === '__attribute') {
        mergeAttrs(attrs, this.attributes());
      } else if (w === '_Alignas' || w === 'alignas') {
        this.pos++;
        this.expect('(', w);
        const arg = this.balanced('(', ')', w);
        // _Alignas(type) means _Alignas(_Alignof(type)); the evaluator only knows the latter.
        const tokens = startsTypeName(arg, this.tu)
          ? [{ ...t, text: '_Alignof' }, { ...t, kind: 'punct' as const, text: '(' }, ...arg, { ...t, kind: 'punct' as const, text: ')' }]
          : arg;
        attrs.aligned.push({ tokens, loc: t.loc });
      } else if (w === 'typeof' || w === '__typeof__' || w === '__typeof' || w === '_BitInt' || w === '__auto_type') {
        this.fail(t.loc, w, 'not supported in uapi type declarations');
      } else if (TYPE_KEYWORDS.has(w)) {
        if (named) this.fail(t.loc, construct, `'${w}' after a complete type specifier`);
        this.pos++;
        words.push(t);
      } else if (w === 'struct' || w === 'union' || w === 'enum') {
        if (named || words.length) this.fail(t.loc, construct, `'${w}' after another type specifier`);
        const r = w === 'enum' ? this.enumSpecifier() : this.recordSpecifier(w);
        named = r.type;
        defined = r.defined;
        if (r.declAttrs) mergeAttrs(attrs, r.declAttrs);
      } else if (!named && words.length === 0 && Object.hasOwn(BUILTIN_TYPEDEFS, w)) {
        this.pos++;
        named = { kind: 'base', name: BUILTIN_TYPEDEFS[w] };
      } else if (!named && words.length === 0 && this.tu.typedefs.has(w)) {
        this.pos++;
        named = { kind: 'typedef', name: w, loc: t.loc };
      } else {
        break;
      }
    }
    if (!named && words.length === 0) {
      const t = this.peek();
      if (t && t.kind === 'ident') this.fail(t.loc, construct, `unknown type name '${t.text}'`);
      this.fail(t?.loc ?? startLoc, construct, `expected a type but found ${t ? `'${t.text}'` : 'end of input'}`);
    }
    let type: CType = named ?? { kind: 'base', name: baseTypeName(words) };
    if (quals.size && type.kind !== 'array' && type.kind !== 'function') type = { ...type, quals: [...quals].sort() };
    return { type, attrs, isTypedef, defined };
  }

  /** __attribute__((a, b(args))) — possibly several in a row. */
  private attributes(): Attributes {
    const attrs = noAttrs();
    while (this.is('__attribute__') || this.is('__attribute')) {
      this.next('__attribute__');
      this.expect('(', '__attribute__');
      this.expect('(', '__attribute__');
      const list = this.balanced('(', ')', '__attribute__');
      this.expect(')', '__attribute__');
      this.attributeList(list, attrs);
    }
    return attrs;
  }

  private attributeList(list: Token[], attrs: Attributes): void {
    let i = 0;
    while (i < list.length) {
      const nameTok = list[i++];
      if (nameTok.kind === 'punct' && nameTok.text === ',') continue;
      if (nameTok.kind !== 'ident') this.fail(nameTok.loc, '__attribute__', `unexpected '${nameTok.text}'`);
      let args: Token[] | null = null;
      if (list[i]?.text === '(') {
        let depth = 0;
        const start = ++i;
        for (; i < list.length; i++) {
          if (list[i].text === '(') depth++;
          else if (list[i].text === ')' && depth-- === 0) break;
        }
        if (i >= list.length) this.fail(nameTok.loc, '__attribute__', 'unbalanced parentheses');
        args = list.slice(start, i);
        i++;
      }
      const name = nameTok.text.replace(/^__(.*)__$/, '$1');
      if (name === 'packed') attrs.packed = true;
      else if (name === 'aligned') attrs.aligned.push({ tokens: args && args.length ? args : null, loc: nameTok.loc });
      else if (!INERT_ATTRIBUTES.has(name)) {
        this.fail(nameTok.loc, `__attribute__((${nameTok.text}))`, 'attribute may change the layout and is not supported');
      }
    }
  }

  /** Attributes and asm labels after a declarator. */
  private attributesAndAsm(): Attributes {
    const attrs = noAttrs();
    for (;;) {
      if (this.is('__attribute__') || this.is('__attribute')) mergeAttrs(attrs, this.attributes());
      else if (this.is('asm') || this.is('__asm__') || this.is('__asm')) {
        this.pos++;
        this.expect('(', 'asm label');
        this.balanced('(', ')', 'asm label');
      } else return attrs;
    }
  }

  /**
   * `declAttrs`: attributes written after the tag of a reference without a body
   * (`struct tag __attribute__((aligned(16))) m;`), which GCC applies to the declared member or
   * object, not to the type. Attributes before the tag of such a reference, and on a forward
   * declaration (`struct __attribute__((packed)) tag;`), GCC ignores.
   */
  private recordSpecifier(kw: 'struct' | 'union'): { type: CType; defined?: RecordDecl; declAttrs?: Attributes } {
    const kwTok = this.next(kw);
    const attrs = this.attributes();
    let tag: string | undefined;
    let tagLoc = kwTok.loc;
    if (this.peek()?.kind === 'ident' && !this.is('__attribute__')) {
      const t = this.next(kw);
      tag = t.text;
      tagLoc = t.loc;
    }
    const afterTag = this.attributes();
    const hasBody = this.is('{');
    if (hasBody) mergeAttrs(attrs, afterTag);
    if (!tag && !hasBody) this.fail(this.loc(), `${kw} specifier`, `expected a tag or '{' after '${kw}'`);

    let decl: RecordDecl;
    const existing = tag !== undefined ? this.tu.tags.get(tag) : undefined;
    if (existing) {
      if (!('kind' in existing) || existing.kind !== kw) {
        this.fail(tagLoc, `${kw} ${tag}`, `tag '${tag}' was declared as a different kind at ${existing.loc.file}:${existing.loc.line}`);
      }
      decl = existing;
    } else {
      decl = { kind: kw, tag, attrs: noAttrs(), loc: tagLoc };
      if (tag !== undefined && this.register) this.tu.tags.set(tag, decl);
    }
    if (!hasBody) return { type: { kind: 'record', decl }, declAttrs: afterTag };
    if (!this.register) this.fail(this.loc(), `${kw} definition`, 'a type definition inside a type name is not supported');
    if (decl.members) {
      this.fail(tagLoc, `${kw} ${tag}`, `redefinition (first defined at ${decl.defLoc!.file}:${decl.defLoc!.line})`);
    }
    const bodyLoc = this.next('{').loc;
    const members: Member[] = [];
    while (!this.is('}')) {
      if (this.atEnd()) this.fail(bodyLoc, `${kw} body`, `unterminated '{'`);
      this.memberDeclaration(members);
    }
    const maxFieldAlign = this.packAt(this.pos);
    if (maxFieldAlign) decl.maxFieldAlign = maxFieldAlign;
    decl.body = { open: bodyLoc, close: this.peek()!.loc };
    this.pos++;
    mergeAttrs(attrs, this.attributes());
    mergeAttrs(decl.attrs, attrs);
    decl.members = members;
    decl.defLoc = tag ? tagLoc : kwTok.loc;
    this.tu.decls.push({ kind: 'record', decl });
    return { type: { kind: 'record', decl }, defined: decl };
  }

  /** The #pragma pack maximum in force at token `index`. */
  private packAt(index: number): number {
    let value = 0;
    for (const p of this.packs) {
      if (p.at > index) break;
      value = p.maxFieldAlign;
    }
    return value;
  }

  private memberDeclaration(members: Member[]): void {
    if (this.is(';')) {
      this.pos++;
      return;
    }
    if (this.is('_Static_assert') || this.is('static_assert')) {
      this.staticAssert();
      return;
    }
    const startLoc = this.loc();
    const spec = this.specifiers('member declaration');
    if (spec.isTypedef) this.fail(startLoc, 'member declaration', 'typedef inside a struct');
    if (this.is(';')) {
      this.pos++;
      // Without a declarator, only an untagged struct/union body is a member (an anonymous one);
      // `struct tag;` or a tagged body merely declares the tag.
      const d = spec.defined;
      if (d && 'kind' in d && d.tag === undefined) {
        members.push({ type: spec.type, attrs: spec.attrs, loc: d.defLoc ?? startLoc });
      } else if (spec.type.kind !== 'record' && spec.type.kind !== 'enum') {
        this.fail(startLoc, 'member declaration', 'declaration does not declare anything');
      }
      return;
    }
    for (;;) {
      const d: Declarator = this.is(':')
        ? { loc: this.loc(), apply: (t) => t }
        : this.declarator(false);
      let bitWidth: Token[] | undefined;
      if (this.is(':')) {
        const colon = this.next(':');
        bitWidth = [];
        let depth = 0;
        for (;;) {
          const t = this.peek();
          if (!t) this.fail(colon.loc, 'bitfield width', 'unterminated member declaration');
          if (t.kind === 'punct') {
            if (t.text === '(') depth++;
            else if (t.text === ')') depth--;
            else if (depth === 0 && (t.text === ',' || t.text === ';')) break;
          }
          if (depth === 0 && (t.text === '__attribute__' || t.text === '__attribute')) break;
          bitWidth.push(this.next('bitfield width'));
        }
        if (bitWidth.length === 0) this.fail(colon.loc, 'bitfield width', 'missing width');
      }
      if (d.name === undefined && bitWidth === undefined) this.fail(d.loc, 'member declaration', 'member without a name');
      const attrs = mergeAttrs(this.attributes(), spec.attrs);
      const type = d.apply(spec.type);
      if (type.kind === 'function') this.fail(d.loc, 'member declaration', `member '${d.name}' has function type`);
      const member: Member = { type, attrs, loc: d.loc };
      if (d.name !== undefined) member.name = d.name;
      if (bitWidth) member.bitWidth = bitWidth;
      members.push(member);
      if (this.is(',')) {
        this.pos++;
        continue;
      }
      this.expect(';', 'member declaration');
      return;
    }
  }

  /** Attributes around the tag follow the rules of recordSpecifier. */
  private enumSpecifier(): { type: CType; defined?: EnumDecl; declAttrs?: Attributes } {
    const kwTok = this.next('enum');
    const attrs = this.attributes();
    let tag: string | undefined;
    let tagLoc = kwTok.loc;
    if (this.peek()?.kind === 'ident' && !this.is('__attribute__')) {
      const t = this.next('enum');
      tag = t.text;
      tagLoc = t.loc;
    }
    const afterTag = this.attributes();
    // `enum tag : 3;` is an unnamed bitfield; only `enum tag : type {` is C23's fixed underlying type.
    if (this.is(':') && this.fixedUnderlyingType()) this.fail(this.loc(), 'enum with fixed underlying type', 'not supported');
    const hasBody = this.is('{');
    if (hasBody) mergeAttrs(attrs, afterTag);
    if (!tag && !hasBody) this.fail(this.loc(), 'enum specifier', `expected a tag or '{' after 'enum'`);
    let decl: EnumDecl;
    const existing = tag !== undefined ? this.tu.tags.get(tag) : undefined;
    if (existing) {
      if ('kind' in existing) this.fail(tagLoc, `enum ${tag}`, `tag '${tag}' was declared as a ${existing.kind} at ${existing.loc.file}:${existing.loc.line}`);
      decl = existing;
    } else {
      decl = { tag, attrs: noAttrs(), loc: tagLoc };
      if (tag !== undefined && this.register) this.tu.tags.set(tag, decl);
    }
    if (!hasBody) return { type: { kind: 'enum', decl }, declAttrs: afterTag };
    if (!this.register) this.fail(this.loc(), 'enum definition', 'a type definition inside a type name is not supported');
    if (decl.enumerators) this.fail(tagLoc, `enum ${tag}`, `redefinition (first defined at ${decl.defLoc!.file}:${decl.defLoc!.line})`);
    const bodyLoc = this.next('{').loc;
    const enumerators: Enumerator[] = [];
    while (!this.is('}')) {
      const nameTok = this.next('enumerator');
      if (nameTok.kind !== 'ident') this.fail(nameTok.loc, 'enumerator', `expected a name but found '${nameTok.text}'`);
      this.attributes();
      const e: Enumerator = { name: nameTok.text, loc: nameTok.loc };
      if (this.is('=')) {
        this.pos++;
        const value: Token[] = [];
        let depth = 0;
        for (;;) {
          const t = this.peek();
          if (!t) this.fail(bodyLoc, 'enum body', `unterminated '{'`);
          if (t.kind === 'punct') {
            if (t.text === '(' || t.text === '[') depth++;
            else if (t.text === ')' || t.text === ']') depth--;
            else if (depth === 0 && (t.text === ',' || t.text === '}')) break;
          }
          value.push(this.next('enumerator value'));
        }
        if (value.length === 0) this.fail(nameTok.loc, 'enumerator', `'${nameTok.text}' has an empty value`);
        e.value = value;
      }
      enumerators.push(e);
      if (this.is(',')) this.pos++;
      else if (!this.is('}')) this.fail(this.loc(), 'enum body', `expected ',' or '}' but found '${this.peek()?.text ?? 'end of input'}'`);
    }
    this.pos++;
    mergeAttrs(attrs, this.attributes());
    mergeAttrs(decl.attrs, attrs);
    decl.enumerators = enumerators;
    decl.defLoc = tagLoc;
    this.tu.decls.push({ kind: 'enum', decl });
    return { type: { kind: 'enum', decl }, defined: decl };
  }

  /** At ':' after an enum tag: does a '{' follow before the declaration ends? */
  private fixedUnderlyingType(): boolean {
    let depth = 0;
    for (let k = 1; this.peek(k); k++) {
      const t = this.peek(k)!;
      if (t.kind !== 'punct') continue;
      if (t.text === '(') depth++;
      else if (t.text === ')') depth--;
      else if (depth === 0 && t.text === '{') return true;
      else if (depth === 0 && (t.text === ';' || t.text === ',' || t.text === '}')) return false;
    }
    return false;
  }

  // ---- declarators ----

  private declarator(abstract: boolean): Declarator {
    // Qualifiers after a '*' qualify that pointer itself.
    const pointers: Set<string>[] = [];
    for (;;) {
      if (this.is('*')) {
        this.pos++;
        pointers.push(new Set());
      } else if (this.peek()?.kind === 'ident' && QUALIFIERS.has(this.peek()!.text)) {
        if (!pointers.length) this.fail(this.loc(), 'declarator', `'${this.peek()!.text}' before any '*'`);
        pointers[pointers.length - 1].add(QUALIFIER_NAMES[this.next('declarator').text]);
      } else if (this.is('__attribute__') || this.is('__attribute')) {
        // GCC applies attributes here to the declaration; only aligned/packed would matter and
        // they never appear between '*'s in uapi headers.
        const a = this.attributes();
        if (a.packed || a.aligned.length) this.fail(this.loc(), '__attribute__ inside a declarator', 'not supported');
      } else break;
    }
    const direct = this.directDeclarator(abstract);
    return {
      name: direct.name,
      loc: direct.loc,
      apply: (base) => {
        let t = base;
        for (const q of pointers) t = q.size ? { kind: 'pointer', to: t, quals: [...q].sort() } : { kind: 'pointer', to: t };
        return direct.apply(t);
      },
    };
  }

  private directDeclarator(abstract: boolean): Declarator {
    let inner: Declarator | undefined;
    let name: string | undefined;
    let loc = this.loc();
    if (this.is('(') && this.isGroupingParen()) {
      this.pos++;
      inner = this.declarator(abstract);
      this.expect(')', 'declarator');
      loc = inner.loc;
      name = inner.name;
    } else if (this.peek()?.kind === 'ident' && !this.is('__attribute__') && !this.is('__attribute')) {
      const t = this.next('declarator');
      if (abstract) this.fail(t.loc, 'type name', `unexpected identifier '${t.text}'`);
      if (TYPE_KEYWORDS.has(t.text) || STORAGE.has(t.text) || t.text === 'struct' || t.text === 'union' || t.text === 'enum') {
        this.fail(t.loc, 'declarator', `unexpected keyword '${t.text}'`);
      }
      name = t.text;
      loc = t.loc;
    } else if (!abstract) {
      const t = this.peek();
      this.fail(t?.loc ?? this.endLoc, 'declarator', `expected a name but found ${t ? `'${t.text}'` : 'end of input'}`);
    }
    const suffixes: Suffix[] = [];
    for (;;) {
      if (this.is('[')) {
        const open = this.next('[');
        const size = this.balanced('[', ']', 'array size').filter((t) => !(t.kind === 'ident' && (QUALIFIERS.has(t.text) || t.text === 'static')));
        suffixes.push({ kind: 'array', size: size.length ? size : null, loc: open.loc });
      } else if (this.is('(')) {
        this.pos++;
        const params = this.balanced('(', ')', 'parameter list');
        suffixes.push({ kind: 'function', params: params.map((t) => t.text).join(' ').replace(/ ,/g, ',') });
      } else break;
    }
    // The first suffix binds tightest: int *a[2][3] is array 2 of array 3 of pointer.
    const apply = (base: CType): CType => {
      let t = base;
      for (let i = suffixes.length - 1; i >= 0; i--) {
        const s = suffixes[i];
        if (s.kind === 'array') {
          if (t.kind === 'function') this.fail(s.loc, 'declarator', 'array of functions');
          t = { kind: 'array', of: t, size: s.size, loc: s.loc };
        } else {
          t = { kind: 'function', returns: t, params: s.params };
        }
      }
      return inner ? inner.apply(t) : t;
    };
    return { name, loc, apply };
  }

  /** After '(' in a declarator: a nested declarator, or (for abstract ones) a parameter list? */
  private isGroupingParen(): boolean {
    const t = this.peek(1);
    if (!t) return false;
    if (t.kind === 'punct') return t.text === '*' || t.text === '(' || t.text === '[' || t.text === '^';
    if (t.kind !== 'ident') return false;
    if (t.text === '__attribute__' || t.text === '__attribute') return true;
    return !(TYPE_KEYWORDS.has(t.text) || Object.hasOwn(BUILTIN_TYPEDEFS, t.text) || QUALIFIERS.has(t.text) || STORAGE.has(t.text) || t.text === 'struct' ||
      t.text === 'union' || t.text === 'enum' || this.tu.typedefs.has(t.text));
  }
}

function baseTypeName(words: Token[]): BaseTypeName {
  const count = new Map<string, number>();
  for (const w of words) {
    const k = w.text === '__signed' || w.text === '__signed__' ? 'signed' : w.text;
    count.set(k, (count.get(k) ?? 0) + 1);
  }
  const n = (k: string) => count.get(k) ?? 0;
  const loc = words[0].loc;
  const spelled = words.map((w) => w.text).join(' ');
  const bad = (): never => {
    throw new HeaderError(loc, 'type specifier', `invalid combination '${spelled}'`);
  };
  if (n('_Complex') || n('__complex__')) throw new HeaderError(loc, 'type specifier', `complex types are not supported ('${spelled}')`);
  for (const [k, c] of count) if (c > 1 && !(k === 'long' && c === 2)) bad();
  if (n('signed') && n('unsigned')) bad();
  const uns = n('unsigned') > 0;
  const others = (...allowed: string[]) => {
    for (const k of count.keys()) if (!allowed.includes(k)) bad();
  };
  if (n('void')) return others('void'), 'void';
  if (n('_Bool')) return others('_Bool'), '_Bool';
  if (n('float')) return others('float'), 'float';
  if (n('double')) {
    others('double', 'long');
    if (n('long') > 1) bad();
    return n('long') ? 'long double' : 'double';
  }
  if (n('__int128')) return others('__int128', 'signed', 'unsigned'), uns ? 'unsigned __int128' : '__int128';
  if (n('char')) return others('char', 'signed', 'unsigned'), uns ? 'unsigned char' : n('signed') ? 'signed char' : 'char';
  if (n('short')) return others('short', 'int', 'signed', 'unsigned'), uns ? 'unsigned short' : 'short';
  if (n('long') === 2) return others('long', 'int', 'signed', 'unsigned'), uns ? 'unsigned long long' : 'long long';
  if (n('long') === 1) return others('long', 'int', 'signed', 'unsigned'), uns ? 'unsigned long' : 'long';
  others('int', 'signed', 'unsigned');
  return uns ? 'unsigned int' : 'int';
}
