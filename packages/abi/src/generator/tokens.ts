/** What the preprocessor hands the declaration parser: fully macro-expanded tokens with origins. */
export type TokenKind = 'ident' | 'number' | 'string' | 'char' | 'punct';

export interface SourceLoc {
  file: string;
  line: number;
}

export interface Token {
  kind: TokenKind;
  text: string;
  loc: SourceLoc;
}

/**
 * A `#pragma pack` state change: from token `at` of the preprocessed stream on, member alignment is
 * capped at `maxFieldAlign` bytes (0: not capped, GCC's default).
 */
export interface PackChange {
  at: number;
  maxFieldAlign: number;
}

/** Header text the generator cannot handle: always names file:line and the construct. */
export class HeaderError extends Error {
  constructor(
    readonly loc: SourceLoc,
    readonly construct: string,
    detail: string,
  ) {
    super(`${loc.file}:${loc.line}: ${construct}: ${detail}`);
    this.name = 'HeaderError';
  }
}
