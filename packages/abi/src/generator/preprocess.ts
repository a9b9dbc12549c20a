import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ExprError, evalConstExpr } from './expr.js';
import { tokenize, type LexToken } from './lexer.js';
import { PackState } from './pragma-pack.js';
import { HeaderError, type PackChange, type SourceLoc, type Token } from './tokens.js';

export interface PreprocessOptions {
  /** Headers to include in order, as `#include <…>` names (e.g. "linux/kvm.h") or file paths. */
  entry: string[];
  includeDirs: string[];
  /** name (or `F(x)` for a function-like macro) → replacement text. */
  predefined: Record<string, string>;
}

export interface PreprocessResult {
  tokens: Token[];
  macros: MacroTable;
  /** Every file read, absolute, in order of first inclusion. */
  files: string[];
  /** The #pragma pack changes, by index into `tokens`. */
  packs: PackChange[];
  /**
   * Every #if/#ifdef/#ifndef/#elif (in a live group) whose condition names __KERNEL__: headers_install
   * strips those groups, so inside a struct body one makes the kernel's layout differ from userspace's.
   */
  kernelConditionals: SourceLoc[];
}

export interface MacroDef {
  name: string;
  loc: SourceLoc;
  functionLike: boolean;
  params: string[];
  /** The last parameter collects the rest (named `args...` or `__VA_ARGS__`). */
  variadic: boolean;
  body: LexToken[];
}

/** A token during expansion: the hide set is the set of macros it must not expand again (Prosser). */
interface PPToken extends LexToken {
  hs?: ReadonlySet<string>;
}

const PLACEMARKER: PPToken = { kind: 'punct', text: '', loc: { file: '<placemarker>', line: 0 } };

const isPunct = (t: Token | undefined, text: string): boolean => t !== undefined && t.kind === 'punct' && t.text === text;

/** The macros defined at the end of preprocessing, and expansion on demand. */
export class MacroTable {
  private readonly defs = new Map<string, MacroDef>();

  define(def: MacroDef): void {
    this.defs.set(def.name, def);
  }
  undef(name: string): void {
    this.defs.delete(name);
  }
  has(name: string): boolean {
    return this.defs.has(name);
  }
  get(name: string): MacroDef | undefined {
    return this.defs.get(name);
  }
  /** Object-like macros with their definition site, in definition order. */
  objectLike(): Array<{ name: string; loc: SourceLoc }> {
    const out: Array<{ name: string; loc: SourceLoc }> = [];
    for (const d of this.defs.values()) if (!d.functionLike) out.push({ name: d.name, loc: d.loc });
    return out;
  }
  /** Function-like macros, in definition order. */
  functionLike(): MacroDef[] {
    return [...this.defs.values()].filter((d) => d.functionLike);
  }
  /** The replacement list exactly as written (no expansion). */
  body(name: string): Token[] | undefined {
    return this.defs.get(name)?.body;
  }

  /**
   * Fully expands `name` as if it appeared alone in the source at its definition site.
   * Names in `stopAt` are left unexpanded (the caller inspects e.g. `_IOC(…)` calls).
   */
  expand(name: string, stopAt?: ReadonlySet<string>): Token[] {
    const def = this.defs.get(name);
    const site: PPToken = { kind: 'ident', text: name, loc: def?.loc ?? { file: '<macro>', line: 0 } };
    return this.expandTokens([site], stopAt);
  }

  expandTokens(input: readonly Token[], stopAt?: ReadonlySet<string>): Token[] {
    return new Expander(this, stopAt).expand(input as PPToken[]);
  }
}

class Expander {
  private readonly hsCache = new Map<ReadonlySet<string> | undefined, Map<string, ReadonlySet<string>>>();

  constructor(
    private readonly macros: MacroTable,
    private readonly stopAt?: ReadonlySet<string>,
  ) {}

  expand(input: PPToken[]): PPToken[] {
    const out: PPToken[] = [];
    const stack: PPToken[] = [];
    for (let k = input.length - 1; k >= 0; k--) stack.push(input[k]);
    while (stack.length > 0) {
      const t = stack.pop()!;
      if (t.kind !== 'ident') {
        out.push(t);
        continue;
      }
      const def = this.macros.get(t.text);
      if (def?.functionLike && this.stopAt?.has(t.text) && isPunct(stack[stack.length - 1], '(')) {
        // A stopped call is passed on whole, its arguments as written, for the caller to inspect.
        out.push(t, ...this.rawCall(def, t, stack));
        continue;
      }
      if (!def || this.stopAt?.has(t.text) || t.hs?.has(t.text)) {
        if (!def && (t.text === '__LINE__' || t.text === '__FILE__')) {
          out.push(t.text === '__LINE__'
            ? { kind: 'number', text: String(t.loc.line), loc: t.loc, space: t.space }
            : { kind: 'string', text: JSON.stringify(t.loc.file), loc: t.loc, space: t.space });
          continue;
        }
        out.push(t);
        continue;
      }
      let result: PPToken[];
      if (!def.functionLike) {
        result = this.subst(def, [], this.withName(t.hs, t.text), t);
      } else {
        if (!isPunct(stack[stack.length - 1], '(')) {
          out.push(t);
          continue;
        }
        const { args, close } = this.collectArgs(def, t, stack);
        const hs = intersect(t.hs, close.hs);
        result = this.subst(def, args, this.withName(hs, t.text), t);
      }
      for (let k = result.length - 1; k >= 0; k--) stack.push(result[k]);
    }
    return out;
  }

  private withName(hs: ReadonlySet<string> | undefined, name: string): ReadonlySet<string> {
    let byName = this.hsCache.get(hs);
    if (!byName) this.hsCache.set(hs, (byName = new Map()));
    let s = byName.get(name);
    if (!s) {
      const n = new Set(hs ?? []);
      n.add(name);
      byName.set(name, (s = n));
    }
    return s;
  }

  /** Pops `( … )` off the stack and returns it unchanged. */
  private rawCall(def: MacroDef, site: PPToken, stack: PPToken[]): PPToken[] {
    const toks: PPToken[] = [];
    let depth = 0;
    for (;;) {
      const t = stack.pop();
      if (!t) throw new HeaderError(site.loc, `macro ${def.name}`, 'unterminated argument list');
      toks.push(t);
      if (isPunct(t, '(')) depth++;
      else if (isPunct(t, ')') && --depth === 0) return toks;
    }
  }

  /** Pops `( a, b, … )` off the stack; arguments are raw (unexpanded) token lists. */
  private collectArgs(def: MacroDef, site: PPToken, stack: PPToken[]): { args: PPToken[][]; close: PPToken } {
    stack.pop(); // '('
    const args: PPToken[][] = [[]];
    let depth = 0;
    for (;;) {
      const t = stack.pop();
      if (!t) {
        throw new HeaderError(site.loc, `macro ${def.name}`, 'unterminated argument list');
      }
      if (t.kind === 'punct') {
        if (t.text === '(') depth++;
        else if (t.text === ')') {
          if (depth === 0) {
            this.checkArity(def, site, args);
            return { args, close: t };
          }
          depth--;
        } else if (t.text === ',' && depth === 0 && !(def.variadic && args.length === def.params.length)) {
          args.push([]);
          continue;
        }
      }
      args[args.length - 1].push(t);
    }
  }

  private checkArity(def: MacroDef, site: PPToken, args: PPToken[][]): void {
    if (def.params.length === 0 && args.length === 1 && args[0].length === 0) {
      args.length = 0;
      return;
    }
    if (def.variadic && args.length === def.params.length - 1) args.push([]);
    if (args.length !== def.params.length) {
      throw new HeaderError(site.loc, `macro ${def.name}`, `expects ${def.params.length} argument(s), got ${args.length}`);
    }
  }

  private subst(def: MacroDef, args: PPToken[][], hs: ReadonlySet<string>, site: PPToken): PPToken[] {
    const body = def.body;
    const paramIndex = (t: PPToken | undefined): number =>
      def.functionLike && t !== undefined && t.kind === 'ident' ? def.params.indexOf(t.text) : -1;
    const expanded = new Map<number, PPToken[]>();
    const pasteMark = new Set<PPToken>();
    const res: PPToken[] = [];

    for (let j = 0; j < body.length; j++) {
      const tok = body[j];
      if (def.variadic && isPunct(tok, ',') && isPunct(body[j + 1], '##') && paramIndex(body[j + 2]) === def.params.length - 1) {
        // GNU `, ## __VA_ARGS__`: no comma when the variable arguments are empty, else `, args`
        // with the arguments unexpanded, like any operand of ##.
        const rest = args[def.params.length - 1];
        if (rest.length > 0) res.push(tok, ...rest.map((r, k) => (k === 0 ? { ...r, space: body[j + 2].space } : r)));
        j += 2;
        continue;
      }
      if (def.functionLike && isPunct(tok, '#')) {
        const p = paramIndex(body[j + 1]);
        res.push({ kind: 'string', text: stringize(args[p]), loc: site.loc, space: tok.space });
        j++;
        continue;
      }
      if (isPunct(tok, '##')) {
        const mark: PPToken = { kind: 'punct', text: '##', loc: tok.loc };
        pasteMark.add(mark);
        res.push(mark);
        continue;
      }
      const p = paramIndex(tok);
      if (p < 0) {
        res.push(tok);
        continue;
      }
      const arg = args[p];
      const nearPaste = isPunct(body[j - 1], '##') || isPunct(body[j + 1], '##');
      if (nearPaste) {
        if (arg.length === 0) res.push(PLACEMARKER);
        else for (let a = 0; a < arg.length; a++) res.push(a === 0 ? { ...arg[a], space: tok.space } : arg[a]);
        continue;
      }
      let exp = expanded.get(p);
      if (!exp) expanded.set(p, (exp = this.expand(arg)));
      for (let a = 0; a < exp.length; a++) res.push(a === 0 ? { ...exp[a], space: tok.space } : exp[a]);
    }

    const pasted: PPToken[] = pasteMark.size === 0 ? res : [];
    if (pasteMark.size > 0) {
      for (let j = 0; j < res.length; j++) {
        const tok = res[j];
        if (!pasteMark.has(tok)) {
          pasted.push(tok);
          continue;
        }
        const left = pasted.pop() ?? PLACEMARKER;
        const right = res[++j] ?? PLACEMARKER;
        pasted.push(paste(left, right, def, site));
      }
    }

    const out: PPToken[] = [];
    for (let j = 0; j < pasted.length; j++) {
      const tok = pasted[j];
      if (tok === PLACEMARKER) continue;
      const own = tok.hs;
      const merged = own === undefined || own === hs ? hs : union(own, hs);
      out.push({ kind: tok.kind, text: tok.text, loc: site.loc, space: out.length === 0 ? site.space : tok.space, hs: merged });
    }
    return out;
  }
}

function paste(left: PPToken, right: PPToken, def: MacroDef, site: PPToken): PPToken {
  if (left === PLACEMARKER) return right;
  if (right === PLACEMARKER) return left;
  const text = left.text + right.text;
  let toks: LexToken[];
  try {
    toks = tokenize(text, site.loc.file);
  } catch {
    toks = [];
  }
  if (toks.length !== 1) {
    throw new HeaderError(site.loc, `macro ${def.name}`, `'##' of '${left.text}' and '${right.text}' does not form one token`);
  }
  return { kind: toks[0].kind, text, loc: site.loc, space: left.space, hs: left.hs };
}

function stringize(arg: PPToken[]): string {
  let s = '';
  for (let k = 0; k < arg.length; k++) {
    const t = arg[k];
    if (k > 0 && t.space) s += ' ';
    s += t.kind === 'string' || t.kind === 'char' ? t.text.replace(/[\\"]/g, (c) => '\\' + c) : t.text;
  }
  return `"${s}"`;
}

function intersect(a: ReadonlySet<string> | undefined, b: ReadonlySet<string> | undefined): ReadonlySet<string> | undefined {
  if (!a || !b) return undefined;
  if (a === b) return a;
  const s = new Set<string>();
  for (const x of a) if (b.has(x)) s.add(x);
  return s;
}

function union(a: ReadonlySet<string>, b: ReadonlySet<string>): ReadonlySet<string> {
  const s = new Set(a);
  for (const x of b) s.add(x);
  return s;
}

// ---------------------------------------------------------------------------------------------

interface FileInfo {
  tokens: LexToken[];
  /** `G` when the whole file is `#ifndef G … #endif`: a second include is skipped without reading. */
  guard: string | null;
}

// Header files are immutable inputs during a run; caching their tokens makes the 8-spec run cheap.
const fileCache = new Map<string, { mtimeMs: number; size: number; info: FileInfo }>();

function loadFile(path: string): FileInfo {
  const st = statSync(path);
  const hit = fileCache.get(path);
  if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit.info;
  const tokens = tokenize(readFileSync(path, 'latin1'), path);
  const info: FileInfo = { tokens, guard: findGuard(tokens) };
  fileCache.set(path, { mtimeMs: st.mtimeMs, size: st.size, info });
  return info;
}

function findGuard(toks: LexToken[]): string | null {
  if (toks.length < 4 || !isPunct(toks[0], '#') || toks[1].text !== 'ifndef' || toks[2].kind !== 'ident') return null;
  let depth = 0;
  for (let k = 0; k < toks.length; k++) {
    if (!toks[k].bol || !isPunct(toks[k], '#')) continue;
    const d = toks[k + 1]?.text;
    if (d === 'if' || d === 'ifdef' || d === 'ifndef') depth++;
    else if (d === 'endif') {
      depth--;
      if (depth === 0) {
        // The guard's #endif must be the last line of the file.
        let m = k + 2;
        while (m < toks.length && !toks[m].bol) m++;
        return m === toks.length ? toks[2].text : null;
      }
    }
  }
  return null;
}

interface Cond {
  /** Lines in this group are processed. */
  active: boolean;
  /** Some branch of this #if chain was already taken (so later #elif/#else are skipped). */
  done: boolean;
  sawElse: boolean;
  loc: SourceLoc;
  /** The enclosing group was active. */
  parentActive: boolean;
}

const MAX_INCLUDE_DEPTH = 200;

export function preprocess(opts: PreprocessOptions): PreprocessResult {
  return new Preprocessor(opts).run();
}

function namesKernel(args: LexToken[]): boolean {
  return args.some((a) => a.text === '__KERNEL__');
}

class Preprocessor {
  private readonly kernelConditionals: SourceLoc[] = [];
  private readonly macros = new MacroTable();
  private readonly out: Token[] = [];
  private readonly files: string[] = [];
  private readonly seen = new Set<string>();
  private readonly once = new Set<string>();
  private readonly pack = new PackState();
  private readonly includeDirs: string[];

  constructor(private readonly opts: PreprocessOptions) {
    this.includeDirs = opts.includeDirs.map((d) => resolve(d));
  }

  run(): PreprocessResult {
    const pre = Object.entries(this.opts.predefined)
      .map(([k, v]) => `#define ${k} ${v}\n`)
      .join('');
    this.processTokens(tokenize(pre, '<predefined>'), '<predefined>', 0);
    for (const e of this.opts.entry) {
      const loc = { file: '<command line>', line: 0 };
      const path = existsSync(e) && statSync(e).isFile() ? resolve(e) : this.find(e, false, undefined, loc, `#include <${e}>`);
      this.includeFile(path, 0);
    }
    return { tokens: this.out, macros: this.macros, files: this.files, packs: this.pack.changes, kernelConditionals: this.kernelConditionals };
  }

  private find(name: string, quoted: boolean, from: string | undefined, loc: SourceLoc, construct: string): string {
    const dirs = quoted && from ? [dirname(from), ...this.includeDirs] : this.includeDirs;
    for (const d of dirs) {
      const p = join(d, name);
      if (existsSync(p) && statSync(p).isFile()) return p;
    }
    throw new HeaderError(loc, construct, `not found in ${this.includeDirs.length ? this.includeDirs.join(', ') : '(no include dirs)'}`);
  }

  private includeFile(path: string, depth: number): void {
    if (this.once.has(path)) return;
    const info = loadFile(path);
    if (info.guard && this.macros.has(info.guard)) return;
    if (!this.seen.has(path)) {
      this.seen.add(path);
      this.files.push(path);
    }
    this.processTokens(info.tokens, path, depth);
  }

  private processTokens(toks: LexToken[], file: string, depth: number): void {
    const conds: Cond[] = [];
    let text: LexToken[] = [];
    const active = (): boolean => conds.length === 0 || conds[conds.length - 1].active;
    const flush = (): void => {
      if (text.length === 0) return;
      const bad = text.find((t) => t.unterminated);
      if (bad) throw new HeaderError(bad.loc, bad.kind === 'char' ? 'character literal' : 'string literal', `missing terminating ${bad.kind === 'char' ? "'" : '"'}`);
      for (const t of this.macros.expandTokens(text)) this.out.push({ kind: t.kind, text: t.text, loc: t.loc });
      text = [];
    };

    let k = 0;
    while (k < toks.length) {
      const t = toks[k];
      if (!(t.bol && isPunct(t, '#'))) {
        if (active()) text.push(t);
        k++;
        continue;
      }
      // A directive: '#' at the start of a line up to the end of that logical line.
      let end = k + 1;
      while (end < toks.length && !toks[end].bol) end++;
      const name = toks[k + 1] && k + 1 < end ? toks[k + 1] : undefined;
      const args = toks.slice(k + 2, end);
      const loc = t.loc;
      k = end;
      flush();
      if (!name) continue; // the null directive
      const d = name.text;
      const top = conds[conds.length - 1];

      switch (d) {
        case 'if':
        case 'ifdef':
        case 'ifndef': {
          const parentActive = active();
          if (parentActive && namesKernel(args)) this.kernelConditionals.push(loc);
          let taken = false;
          if (parentActive) {
            if (d === 'if') taken = this.evalIf(args, loc, '#if');
            else taken = this.macros.has(this.definedName(args, loc, `#${d}`)) === (d === 'ifdef');
          }
          conds.push({ active: parentActive && taken, done: taken, sawElse: false, loc, parentActive });
          continue;
        }
        case 'elif': {
          if (!top) throw new HeaderError(loc, '#elif', 'without #if');
          if (top.sawElse) throw new HeaderError(loc, '#elif', 'after #else');
          if (!top.parentActive || top.done) {
            top.active = false;
            continue;
          }
          if (namesKernel(args)) this.kernelConditionals.push(loc);
          const taken = this.evalIf(args, loc, '#elif');
          top.active = taken;
          top.done = taken;
          continue;
        }
        case 'else':
          if (!top) throw new HeaderError(loc, '#else', 'without #if');
          if (top.sawElse) throw new HeaderError(loc, '#else', 'after #else');
          top.sawElse = true;
          top.active = top.parentActive && !top.done;
          top.done = true;
          continue;
        case 'endif':
          if (!top) throw new HeaderError(loc, '#endif', 'without #if');
          conds.pop();
          continue;
      }
      if (!active()) continue;

      switch (d) {
        case 'define':
          this.define(args, loc);
          break;
        case 'undef':
          this.macros.undef(this.definedName(args, loc, '#undef'));
          break;
        case 'include':
        case 'include_next': {
          if (depth >= MAX_INCLUDE_DEPTH) throw new HeaderError(loc, `#${d}`, `nested more than ${MAX_INCLUDE_DEPTH} deep`);
          const { name: header, quoted } = this.headerName(args, loc, d);
          const construct = quoted ? `#${d} "${header}"` : `#${d} <${header}>`;
          const path = d === 'include_next' ? this.findNext(header, file, loc, construct) : this.find(header, quoted, file, loc, construct);
          this.includeFile(path, depth + 1);
          break;
        }
        case 'error':
          throw new HeaderError(loc, '#error', lineText(args) || '(no message)');
        case 'pragma':
          if (args[0]?.text === 'once') this.once.add(file);
          else if (args[0]?.text === 'pack') this.pack.apply(args.slice(1), loc, this.out.length);
          break;
        case 'warning':
        case 'line':
        case 'ident':
        case 'sccs':
          break;
        default:
          throw new HeaderError(loc, `#${d}`, 'unknown preprocessing directive');
      }
    }
    flush();
    if (conds.length > 0) {
      const c = conds[conds.length - 1];
      throw new HeaderError(c.loc, '#if', `unterminated conditional (no #endif before end of ${file})`);
    }
  }

  private findNext(name: string, from: string, loc: SourceLoc, construct: string): string {
    const idx = this.includeDirs.findIndex((d) => from.startsWith(d + '/'));
    for (const d of this.includeDirs.slice(idx + 1)) {
      const p = join(d, name);
      if (existsSync(p) && statSync(p).isFile()) return p;
    }
    throw new HeaderError(loc, construct, 'not found in the include dirs after the current one');
  }

  private headerName(args: LexToken[], loc: SourceLoc, d: string): { name: string; quoted: boolean } {
    let toks: Token[] = args;
    if (toks[0]?.kind === 'ident') toks = this.macros.expandTokens(toks);
    if (toks.length === 1 && toks[0].kind === 'string') return { name: toks[0].text.slice(1, -1), quoted: true };
    if (isPunct(toks[0], '<') && isPunct(toks[toks.length - 1], '>') && toks.length > 2) {
      // Header names never contain spaces, so the tokens between < and > concatenate back.
      return { name: toks.slice(1, -1).map((x) => x.text).join(''), quoted: false };
    }
    throw new HeaderError(loc, `#${d}`, `expected "FILE" or <FILE>, got '${lineText(args)}'`);
  }

  private definedName(args: LexToken[], loc: SourceLoc, construct: string): string {
    if (args.length === 0 || args[0].kind !== 'ident') throw new HeaderError(loc, construct, 'expected a macro name');
    return args[0].text;
  }

  private define(args: LexToken[], loc: SourceLoc): void {
    const nameTok = args[0];
    if (!nameTok || nameTok.kind !== 'ident') throw new HeaderError(loc, '#define', 'expected a macro name');
    const name = nameTok.text;
    if (name === 'defined') throw new HeaderError(loc, '#define defined', "'defined' cannot be a macro name");
    const params: string[] = [];
    let variadic = false;
    let j = 1;
    const functionLike = isPunct(args[1], '(') && !args[1].space;
    if (functionLike) {
      j = 2;
      const bad = (): never => {
        throw new HeaderError(loc, `#define ${name}(…)`, 'malformed parameter list');
      };
      if (isPunct(args[j], ')')) j++;
      else {
        for (;;) {
          const p = args[j++];
          if (!p) bad();
          if (isPunct(p, '...')) {
            params.push('__VA_ARGS__');
            variadic = true;
          } else if (p.kind === 'ident') {
            params.push(p.text);
            if (isPunct(args[j], '...')) {
              variadic = true;
              j++;
            }
          } else bad();
          const sep = args[j++];
          if (isPunct(sep, ')')) break;
          if (!isPunct(sep, ',') || variadic) bad();
        }
      }
    }
    const body = args.slice(j);
    if (body.length > 0) body[0] = { ...body[0], space: false };
    if (isPunct(body[0], '##') || (body.length > 0 && isPunct(body[body.length - 1], '##'))) {
      throw new HeaderError(loc, `#define ${name}`, "'##' cannot appear at either end of a macro body");
    }
    if (functionLike) {
      for (let m = 0; m < body.length; m++) {
        if (isPunct(body[m], '#') && !(body[m + 1]?.kind === 'ident' && params.includes(body[m + 1].text))) {
          throw new HeaderError(loc, `#define ${name}`, "'#' is not followed by a macro parameter");
        }
      }
    }
    this.macros.define({ name, loc, functionLike, params, variadic, body });
  }

  private evalIf(args: LexToken[], loc: SourceLoc, construct: string): boolean {
    if (args.length === 0) throw new HeaderError(loc, construct, 'missing expression');
    if (args.some((t) => t.unterminated)) throw new HeaderError(loc, construct, 'missing terminating quote');
    // `defined` is resolved before expansion, as C requires.
    const replaced: Token[] = [];
    for (let j = 0; j < args.length; j++) {
      const t = args[j];
      if (t.kind === 'ident' && t.text === 'defined') {
        let nameTok: Token | undefined;
        if (isPunct(args[j + 1], '(')) {
          nameTok = args[j + 2];
          if (!isPunct(args[j + 3], ')')) throw new HeaderError(loc, construct, "missing ')' after 'defined('");
          j += 3;
        } else {
          nameTok = args[j + 1];
          j += 1;
        }
        if (!nameTok || nameTok.kind !== 'ident') throw new HeaderError(loc, construct, "'defined' without a macro name");
        replaced.push({ kind: 'number', text: this.macros.has(nameTok.text) ? '1' : '0', loc: t.loc });
        continue;
      }
      replaced.push(t);
    }
    const expanded = this.macros.expandTokens(replaced);
    try {
      return evalConstExpr(expanded.map((t) => ({ ...t, loc })), { preprocessor: true }) !== 0n;
    } catch (err) {
      if (err instanceof ExprError) {
        throw new HeaderError(loc, `${construct} ${lineText(args)}`, err.message.replace(/^[^:]*:\d+: /, ''));
      }
      throw err;
    }
  }
}

function lineText(toks: LexToken[]): string {
  return toks.map((t, k) => (k > 0 && t.space ? ' ' : '') + t.text).join('');
}
