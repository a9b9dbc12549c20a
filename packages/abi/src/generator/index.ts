/** The spec generator: uapi headers → Spec. Entry point `@kvm-ts/abi/generator`. */
export { generateSpec, serializeSpec, ENTRY_HEADER, type GenerateOptions } from './generate.js';
export { preprocess, MacroTable, type MacroDef, type PreprocessOptions, type PreprocessResult } from './preprocess.js';
export { evalConstExpr, evalConstExprTyped, ExprError, type ExprContext, type ExprErrorKind, type IntType } from './expr.js';
export { tokenize, type LexToken } from './lexer.js';
export { predefinedMacros } from './predefined.js';
export { IOCTL_FD, ioctlFd } from './fd-table.js';
export { HeaderError, type Token, type SourceLoc, type TokenKind } from './tokens.js';
