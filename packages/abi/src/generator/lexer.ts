import { HeaderError, type Token } from './tokens.js';

/**
 * A token as the preprocessor sees it. The extra flags are what C's translation phases keep
 * from whitespace: directives start at the beginning of a line, and `#define F(x)` differs
 * from `#define F (x)`. They are plain optional data, so a LexToken is a Token everywhere.
 */
export interface LexToken extends Token {
  /** First token of a logical line (after line splicing). */
  bol?: boolean;
  /** Preceded by whitespace or a comment on the same logical line. */
  space?: boolean;
  /**
   * A quote with no closing quote on its line. Like GCC, that is only an error where the token
   * is used (in live code or an #if), not in skipped groups or #error/#warning text.
   */
  unterminated?: boolean;
}

// Longest first, so a greedy prefix match picks the maximal munch.
const PUNCTUATORS = [
  '...', '<<=', '>>=',
  '->', '++', '--', '<<', '>>', '<=', '>=', '==', '!=', '&&', '||',
  '*=', '/=', '%=', '+=', '-=', '&=', '^=', '|=', '##',
];
const SINGLE_PUNCT = new Set('[](){}.&*+-~!/%<>^|?:;=,#');

const isIdentStart = (c: number): boolean =>
  (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c === 36;
const isIdentChar = (c: number): boolean => isIdentStart(c) || (c >= 48 && c <= 57);
const isDigit = (c: number): boolean => c >= 48 && c <= 57;

/**
 * Splits C source into preprocessing tokens: comments become whitespace, backslash-newline
 * splices lines, numbers are pp-numbers (suffixes and hex/octal are interpreted by expr.ts).
 */
export function tokenize(text: string, file: string): LexToken[] {
  const out: LexToken[] = [];
  const n = text.length;
  let i = 0;
  let line = 1;
  let bol = true;
  let space = false;

  // Skips any run of backslash-newline splices at i; returns the new index.
  const splice = (j: number): number => {
    while (text.charCodeAt(j) === 92 /* \ */) {
      let k = j + 1;
      if (text.charCodeAt(k) === 13) k++;
      if (text.charCodeAt(k) !== 10) break;
      line++;
      j = k + 1;
    }
    return j;
  };
  const push = (kind: Token['kind'], tokText: string, tokLine: number, unterminated = false): void => {
    const tok: LexToken = { kind, text: tokText, loc: { file, line: tokLine } };
    if (unterminated) tok.unterminated = true;
    if (bol) tok.bol = true;
    if (space) tok.space = true;
    out.push(tok);
    bol = false;
    space = false;
  };

  while (i < n) {
    i = splice(i);
    if (i >= n) break;
    const c = text.charCodeAt(i);
    if (c === 10) {
      line++;
      i++;
      bol = true;
      space = false;
      continue;
    }
    if (c === 32 || c === 9 || c === 13 || c === 12 || c === 11) {
      i++;
      space = true;
      continue;
    }
    if (c === 47 /* / */) {
      const d = splice(i + 1);
      const next = text.charCodeAt(d);
      if (next === 42 /* * */) {
        const start = line;
        let j = d + 1;
        for (;;) {
          if (j >= n) throw new HeaderError({ file, line: start }, 'comment', 'unterminated /* comment');
          const ch = text.charCodeAt(j);
          if (ch === 10) line++;
          else if (ch === 42) {
            const k = splice(j + 1);
            if (text.charCodeAt(k) === 47) {
              j = k + 1;
              break;
            }
            j = k;
            continue;
          }
          j++;
        }
        i = j;
        space = true;
        continue;
      }
      if (next === 47) {
        // A line comment continues across backslash-newline, like any other logical line.
        let j = d + 1;
        while (j < n) {
          j = splice(j);
          if (j >= n || text.charCodeAt(j) === 10) break;
          j++;
        }
        i = j;
        space = true;
        continue;
      }
    }

    const tokLine = line;
    if (isIdentStart(c)) {
      let j = i + 1;
      let s = text[i];
      for (;;) {
        j = splice(j);
        if (j < n && isIdentChar(text.charCodeAt(j))) s += text[j++];
        else break;
      }
      // Wide/UTF prefixes glue onto a following character or string literal.
      const q = text.charCodeAt(j);
      if ((q === 39 || q === 34) && (s === 'L' || s === 'u' || s === 'U' || s === 'u8')) {
        i = j;
        const lit = readQuoted(q);
        push(q === 39 ? 'char' : 'string', s + lit.text, tokLine, lit.unterminated);
        continue;
      }
      push('ident', s, tokLine);
      i = j;
      continue;
    }
    if (isDigit(c) || (c === 46 && isDigit(text.charCodeAt(splice(i + 1))))) {
      let s = text[i];
      let j = i + 1;
      for (;;) {
        j = splice(j);
        if (j >= n) break;
        const ch = text.charCodeAt(j);
        const prev = s.charCodeAt(s.length - 1) | 0x20;
        // pp-number grammar: a sign belongs to the number right after e/E/p/P (so 0x1e+1 is one token, as in C).
        if ((ch === 43 || ch === 45) && (prev === 101 /* e */ || prev === 112 /* p */)) {
          s += text[j++];
        } else if (isIdentChar(ch) || ch === 46) {
          s += text[j++];
        } else break;
      }
      push('number', s, tokLine);
      i = j;
      continue;
    }
    if (c === 39 || c === 34) {
      const lit = readQuoted(c);
      push(c === 39 ? 'char' : 'string', lit.text, tokLine, lit.unterminated);
      continue;
    }
    let matched: string | undefined;
    for (const p of PUNCTUATORS) {
      if (text.startsWith(p, i)) {
        matched = p;
        break;
      }
    }
    if (matched === undefined && SINGLE_PUNCT.has(text[i])) matched = text[i];
    if (matched === undefined) {
      throw new HeaderError({ file, line }, 'character', `unexpected character ${JSON.stringify(text[i])}`);
    }
    push('punct', matched, tokLine);
    i += matched.length;
  }
  return out;

  // Reads a '…' or "…" literal starting at i (the quote), honouring escapes; advances i.
  function readQuoted(quote: number): { text: string; unterminated: boolean } {
    let s = text[i];
    let j = i + 1;
    for (;;) {
      j = splice(j);
      if (j >= n || text.charCodeAt(j) === 10) {
        i = j;
        return { text: s, unterminated: true };
      }
      const ch = text.charCodeAt(j);
      if (ch === 92) {
        const k = splice(j + 1);
        if (k >= n) continue;
        s += '\\' + text[k];
        j = k + 1;
        continue;
      }
      s += text[j++];
      if (ch === quote) break;
    }
    i = j;
    return { text: s, unterminated: false };
  }
}
