import type { IoctlDir } from '../spec/types.js';
import { evalConstExpr, type ExprContext } from './expr.js';
import type { MacroTable } from './preprocess.js';
import { HeaderError, type SourceLoc, type Token } from './tokens.js';

export interface DecodedIoctl {
  number: number;
  dir: IoctlDir;
  size: number;
  type: string | null;
}

const STOP_AT_IOC: ReadonlySet<string> = new Set(['_IOC']);
const STOP_AT_HELPERS: ReadonlySet<string> = new Set(['_IO', '_IOR', '_IOW', '_IOWR']);

/**
 * Decodes the ioctl request macros of one header set. The request number and its fields all
 * come from evaluating the headers' own `_IOC` definition, so no encoding is assumed here.
 */
export class IoctlDecoder {
  private readonly magic: bigint | undefined;
  private readonly dirs: Array<[bigint, IoctlDir]>;
  /** _IOC_SIZEBITS (14 on the three arches): a larger argument would spill into the direction bits. */
  private readonly sizeBits: bigint | undefined;

  constructor(
    private readonly macros: MacroTable,
    private readonly ctx: ExprContext,
    magicMacro = 'KVMIO',
  ) {
    this.magic = macros.has(magicMacro) ? this.evalName(magicMacro) : undefined;
    const v = (n: string): bigint | undefined => (macros.has(n) ? this.evalName(n) : undefined);
    const none = v('_IOC_NONE');
    const read = v('_IOC_READ');
    const write = v('_IOC_WRITE');
    this.sizeBits = v('_IOC_SIZEBITS');
    this.dirs = [];
    if (none !== undefined) this.dirs.push([none, 'none']);
    if (read !== undefined && write !== undefined) {
      this.dirs.push([read | write, 'readwrite'], [read, 'read'], [write, 'write']);
    }
  }

  /**
   * The ioctl `name` expands to, or undefined when its expansion is not an `_IOC(…)` call.
   * `foreign` is set for an `_IOC` call whose type is not the KVM magic.
   */
  decode(
    name: string,
    available: (typeText: string | null) => boolean = () => true,
  ): { ioctl: DecodedIoctl } | { foreign: true } | { unavailable: string } | undefined {
    const def = this.macros.get(name);
    if (!def || def.functionLike) return undefined;
    const loc = def.loc;
    const call = callOf(this.macros.expand(name, STOP_AT_IOC), '_IOC');
    if (!call) return undefined;
    if (call.args.length !== 4) {
      throw new HeaderError(loc, `ioctl ${name}`, `_IOC takes 4 arguments, got ${call.args.length}`);
    }
    const [dirArg, typeArg, , sizeArg] = call.args;
    if (this.magic === undefined) throw new HeaderError(loc, `ioctl ${name}`, 'KVMIO is not defined');
    if (this.evalTokens(typeArg, loc, name) !== this.magic) return { foreign: true };

    // An argument type this arch never declares (x86's struct kvm_lapic_state on arm64) makes the
    // macro unusable in C there: the ioctl is not part of this arch's ABI.
    const type = this.argType(name, sizeArg, loc);
    if (!available(type)) return { unavailable: type ?? '' };
    const number = this.evalTokens(this.macros.expand(name), loc, name);
    if (number < 0n || number > 0xffffffffn) {
      throw new HeaderError(loc, `ioctl ${name}`, `request number ${number} does not fit 32 bits`);
    }
    const dirVal = this.evalTokens(dirArg, loc, name);
    const dir = this.dirs.find(([v]) => v === dirVal)?.[1];
    if (dir === undefined) throw new HeaderError(loc, `ioctl ${name}`, `direction ${dirVal} is not one of _IOC_NONE/_IOC_READ/_IOC_WRITE`);
    const size = this.evalTokens(sizeArg, loc, name);
    if (type === null && size !== 0n) throw new HeaderError(loc, `ioctl ${name}`, `size ${size} but no argument type`);
    if (this.sizeBits !== undefined && size >= 1n << this.sizeBits) {
      throw new HeaderError(loc, `ioctl ${name}`,
        `argument size ${size} does not fit the ${this.sizeBits}-bit _IOC_SIZE field: it overflows into the direction bits`);
    }
    return { ioctl: { number: Number(number), dir, size: Number(size), type } };
  }

  /** The argument type as written in the `_IOR/_IOW/_IOWR` use (or in `_IOC`'s size operand). */
  private argType(name: string, sizeArg: Token[], loc: SourceLoc): string | null {
    const helper = callOf(this.macros.expand(name, STOP_AT_HELPERS), '_IO', '_IOR', '_IOW', '_IOWR');
    if (helper) {
      if (helper.name === '_IO') return null;
      const t = helper.args[2];
      if (!t || t.length === 0) throw new HeaderError(loc, `ioctl ${name}`, `${helper.name} without an argument type`);
      return typeText(t);
    }
    // A direct _IOC(dir, type, nr, size): the size operand is `_IOC_TYPECHECK(T)` or `sizeof(T)`.
    const raw = this.rawSizeOperand(name);
    if (raw) return typeText(raw);
    if (sizeArg.length === 1 && sizeArg[0].text === '0') return null;
    throw new HeaderError(loc, `ioctl ${name}`, `cannot tell the argument type from size operand '${typeText(sizeArg)}'`);
  }

  private rawSizeOperand(name: string): Token[] | undefined {
    const stop = new Set(['_IOC', '_IOC_TYPECHECK']);
    const call = callOf(this.macros.expand(name, stop), '_IOC');
    if (!call || call.args.length !== 4) return undefined;
    let size = call.args[3];
    while (size.length >= 2 && size[0].text === '(' && matchingClose(size, 0) === size.length - 1) size = size.slice(1, -1);
    const inner = callOf(size, '_IOC_TYPECHECK', 'sizeof');
    return inner && inner.args.length === 1 ? inner.args[0] : undefined;
  }

  private evalName(n: string): bigint {
    const def = this.macros.get(n);
    return this.evalTokens(this.macros.expand(n), def?.loc ?? { file: '<macro>', line: 0 }, n);
  }

  private evalTokens(toks: Token[], loc: SourceLoc, name: string): bigint {
    const expanded = this.macros.expandTokens(toks);
    try {
      return evalConstExpr(expanded, this.ctx);
    } catch (err) {
      if (err instanceof HeaderError) {
        throw new HeaderError(loc, `ioctl ${name}`, withoutLoc(err));
      }
      throw err;
    }
  }
}

/** `NAME ( a , b … )` spanning the whole list (outer parentheses allowed), split at top-level commas. */
function callOf(toks: Token[], ...names: string[]): { name: string; args: Token[][] } | undefined {
  while (toks.length >= 2 && toks[0].text === '(' && toks[0].kind === 'punct' && matchingClose(toks, 0) === toks.length - 1) {
    toks = toks.slice(1, -1);
  }
  if (toks.length < 3 || toks[0].kind !== 'ident' || !names.includes(toks[0].text) || toks[1].text !== '(') return undefined;
  if (matchingClose(toks, 1) !== toks.length - 1) return undefined;
  const args: Token[][] = [[]];
  let depth = 0;
  for (const t of toks.slice(2, -1)) {
    if (t.kind === 'punct') {
      if (t.text === '(' || t.text === '[' || t.text === '{') depth++;
      else if (t.text === ')' || t.text === ']' || t.text === '}') depth--;
      else if (t.text === ',' && depth === 0) {
        args.push([]);
        continue;
      }
    }
    args[args.length - 1].push(t);
  }
  if (args.length === 1 && args[0].length === 0) args.length = 0;
  return { name: toks[0].text, args };
}

function matchingClose(toks: Token[], open: number): number {
  let depth = 0;
  for (let j = open; j < toks.length; j++) {
    const t = toks[j];
    if (t.kind !== 'punct') continue;
    if (t.text === '(') depth++;
    else if (t.text === ')' && --depth === 0) return j;
  }
  return -1;
}

/** C type text with whitespace normalised: one space only where two words would otherwise merge or '*' follows a word. */
export function typeText(toks: Token[]): string {
  let s = '';
  let prev: Token | undefined;
  for (const t of toks) {
    if (prev) {
      const word = (k: Token): boolean => k.kind === 'ident' || k.kind === 'number';
      if ((word(prev) && word(t)) || (t.text === '*' && word(prev))) s += ' ';
    }
    s += t.text;
    prev = t;
  }
  return s;
}

/** A HeaderError's message without its leading "file:line: ", for wrapping it in an outer context. */
export function withoutLoc(err: HeaderError): string {
  const prefix = `${err.loc.file}:${err.loc.line}: `;
  return err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
}
