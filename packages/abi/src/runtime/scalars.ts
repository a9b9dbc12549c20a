/**
 * C scalar types as the runtime needs them: size, signedness, float-ness.
 * Deliberately independent of the generator (the runtime must stay light); every arch we
 * support is LP64, so only plain `char` differs between them (spec/arch.ts, shared with the generator).
 */
import { plainCharSigned } from '../spec/arch.js';
import type { Arch } from '../spec/types.js';

export interface ScalarInfo {
  /** Canonical C spelling, e.g. "unsigned long long". */
  readonly name: string;
  readonly size: 1 | 2 | 4 | 8 | 16;
  readonly signed: boolean;
  readonly float: boolean;
}

const QUALIFIERS = new Set(['const', 'volatile', '__user', '__restrict', 'restrict', '__attribute__', '__aligned']);
const MAX_TYPEDEF_DEPTH = 32;

const int = (name: string, size: ScalarInfo['size'], signed: boolean): ScalarInfo => ({ name, size, signed, float: false });

/**
 * Resolves `type` (a typedef name, a C base type, a pointer or an enum) to a scalar, or
 * undefined when it is an aggregate or unknown.
 */
export function resolveScalar(
  type: string,
  arch: Arch,
  typedefs: Readonly<Record<string, string>>,
): ScalarInfo | undefined {
  let current = type.trim();
  for (let depth = 0; depth < MAX_TYPEDEF_DEPTH; depth++) {
    if (current.endsWith('*') || current.includes('(*')) return int('pointer', 8, false);
    const words = current.split(/\s+/).filter((w) => !QUALIFIERS.has(w));
    // Enumerations: GCC makes them unsigned int unless an enumerator is negative; the spec
    // carries no enumerators, so they are read as unsigned.
    if (words[0] === 'enum') return int(current, 4, false);
    if (words[0] === 'struct' || words[0] === 'union') return undefined;
    const normalized = words.join(' ');
    const base = baseType(words, arch);
    if (base) return base;
    const next = Object.hasOwn(typedefs, normalized) ? typedefs[normalized] : undefined;
    if (next === undefined || next === normalized) return undefined;
    current = next.trim();
  }
  return undefined;
}

/** Parses a C base type written with any word order ("long unsigned int", "signed char"...). */
function baseType(words: readonly string[], arch: Arch): ScalarInfo | undefined {
  if (words.length === 0) return undefined;
  if (words.length === 1) {
    switch (words[0]) {
      case '_Bool':
      case 'bool':
        return int('_Bool', 1, false);
      case 'float':
        return { name: 'float', size: 4, signed: true, float: true };
      case 'double':
        return { name: 'double', size: 8, signed: true, float: true };
      case '__int128':
      case '__int128_t':
        return int('__int128', 16, true);
      case '__uint128_t':
        return int('unsigned __int128', 16, false);
    }
  }
  // x87 extended precision has no JS counterpart: its 16 bytes are carried as their raw bits.
  if (words.length === 2 && words[0] === 'long' && words[1] === 'double') return int('long double', 16, false);
  let signedness: 'signed' | 'unsigned' | undefined;
  let longs = 0;
  let base: 'char' | 'short' | 'int' | '__int128' | undefined;
  for (const word of words) {
    switch (word) {
      case 'signed':
      case 'unsigned':
        if (signedness) return undefined;
        signedness = word;
        break;
      case 'long':
        longs++;
        break;
      case 'char':
      case 'short':
      case '__int128':
        if (base) return undefined;
        base = word;
        break;
      case 'int':
        if (base && base !== 'short') return undefined;
        base ??= 'int';
        break;
      default:
        return undefined;
    }
  }
  if (longs > 2 || (longs > 0 && base !== undefined && base !== 'int')) return undefined;
  const signed = signedness !== 'unsigned';
  const prefix = signedness === 'unsigned' ? 'unsigned ' : '';
  if (base === 'char') {
    if (signedness === undefined) return int('char', 1, plainCharSigned(arch));
    return int(`${signedness} char`, 1, signedness === 'signed');
  }
  if (base === 'short') return int(`${prefix}short`, 2, signed);
  if (base === '__int128') return int(`${prefix}__int128`, 16, signed);
  if (longs === 2) return int(`${prefix}long long`, 8, signed);
  if (longs === 1) return int(`${prefix}long`, 8, signed); // LP64 on every supported arch
  return int(`${prefix}int`, 4, signed);
}

/** Inclusive integer range of a scalar (or of a bitfield of `bits` width). */
export function integerRange(signed: boolean, bits: number): { min: bigint; max: bigint } {
  if (signed) return { min: -(1n << BigInt(bits - 1)), max: (1n << BigInt(bits - 1)) - 1n };
  return { min: 0n, max: (1n << BigInt(bits)) - 1n };
}

/** Whether values of this scalar are bigint (8 and 16 bytes) rather than number. */
export function isBigScalar(info: ScalarInfo): boolean {
  return !info.float && info.size >= 8;
}
