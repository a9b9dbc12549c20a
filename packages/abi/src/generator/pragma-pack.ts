/**
 * `#pragma pack` as GCC keeps it on Linux targets (c-pragma.cc, handle_pragma_pack): one current
 * maximum member alignment and a stack of the values saved by `push`. A record is laid out with
 * the value in force at its closing brace. The argument is not macro-expanded on these targets.
 */
import type { LexToken } from './lexer.js';
import { HeaderError, type PackChange, type SourceLoc } from './tokens.js';

const VALID = new Set([0, 1, 2, 4, 8, 16]);

export class PackState {
  /** Every change, by index of the first token of the preprocessed stream it applies to. */
  readonly changes: PackChange[] = [];
  private current = 0;
  private readonly stack: Array<{ id?: string; saved: number }> = [];

  /** `args`: the tokens after `pack`; `at`: the number of tokens emitted so far. */
  apply(args: LexToken[], loc: SourceLoc, at: number): void {
    const text = args.map((t) => t.text).join('');
    const bad = (why: string): never => {
      throw new HeaderError(loc, `#pragma pack${text}`, `${why} (gcc ignores it with a warning; the header means something else)`);
    };
    if (args[0]?.text !== '(' || args[args.length - 1]?.text !== ')') bad("expected '(' … ')'");
    const inner = args.slice(1, -1);
    const parts: LexToken[][] = [[]];
    for (const t of inner) {
      if (t.text === ',') parts.push([]);
      else parts[parts.length - 1].push(t);
    }
    if (parts.some((p) => p.length > 1) || (parts.length > 1 && parts.some((p) => p.length === 0))) bad('malformed');
    const words = parts.map((p) => p[0]).filter((t) => t !== undefined);
    const number = (t: LexToken): number => {
      const n = /^(0x[0-9a-f]+|\d+)$/i.test(t.text) ? Number(t.text) : NaN;
      if (!VALID.has(n)) bad(`alignment must be a small power of two, not ${t.text}`);
      return n;
    };
    const [action, ...rest] = words;
    if (action === undefined) this.set(0, at);
    else if (action.kind === 'number' && rest.length === 0) this.set(number(action), at);
    else if (action.text === 'push' && rest.length <= 2) {
      const id = rest[0]?.kind === 'ident' ? rest[0].text : undefined;
      const n = rest.find((t) => t.kind !== 'ident');
      if (rest.length === 2 && (id === undefined || n === undefined)) bad('malformed push');
      if (rest.length === 1 && id === undefined && n === undefined) bad('malformed push');
      const value = n === undefined ? this.current : number(n);
      this.stack.push({ id, saved: this.current });
      this.set(value, at);
    } else if (action.text === 'pop' && rest.length <= 1) {
      if (rest[0] !== undefined && rest[0].kind !== 'ident') bad('pop takes an identifier');
      const id = rest[0]?.text;
      let top = this.stack.length - 1;
      if (id !== undefined) top = this.stack.map((e) => e.id).lastIndexOf(id);
      if (top < 0) bad(`without a matching #pragma pack(push${id !== undefined ? `, ${id}` : ''})`);
      const saved = this.stack[top].saved;
      this.stack.length = top;
      this.set(saved, at);
    } else bad(`unknown action '${action.text}'`);
  }

  private set(value: number, at: number): void {
    this.current = value;
    this.changes.push({ at, maxFieldAlign: value });
  }
}
