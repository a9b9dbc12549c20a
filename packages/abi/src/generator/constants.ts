import { evalConstExpr, ExprError, type ExprContext } from './expr.js';
import { withoutLoc } from './ioctl.js';
import type { MacroTable } from './preprocess.js';
import { HeaderError, type SourceLoc } from './tokens.js';
import type { FunctionMacro } from '../spec/types.js';

/** Macros that name a KVM constant (KVMIO, the ioctl magic, among them). `__KVM_*` ones count only when integer-valued. */
export const CONSTANT_NAME = /^(__)?KVM_|^KVMIO$/;

/**
 * Identifiers some uapi macros use although no uapi header defines them: they only exist inside
 * the kernel (BIT(), GENMASK(), PAGE_SIZE, SZ_64K: Linux 6.4–6.8's x86 asm/kvm.h defined
 * KVM_PMU_EVENT_FLAG_MASKED_EVENTS as BIT(0)) or in a header the uapi file forgot to include
 * (__GENMASK in 6.12's arm64 asm/kvm.h). A C program using such a macro does not compile, so it is
 * not part of the userspace ABI: it is left out and recorded as a diagnostic. Any other unknown
 * identifier fails generation: it usually means an enumerator or macro went missing, and
 * dropping the constant would hide that.
 */
const KERNEL_ONLY_IDENTIFIERS = /^(BIT|BIT_ULL|BIT_MASK|GENMASK|GENMASK_ULL|__GENMASK|__GENMASK_ULL|PAGE_SIZE|PAGE_SHIFT|SZ_[0-9]+[KMG]?)$/;

/** A macro left out because it needs a kernel-only identifier. */
export interface LeftOut {
  name: string;
  loc: SourceLoc;
  reason: string;
}

/**
 * Every object-like KVM_* macro (minus `exclude`, i.e. the ioctls) that is an integer constant
 * expression, evaluated with C semantics. Not-integer macros (types, strings, empty flags,
 * statements) are skipped; kernel-only ones go to `leftOut`; an integer expression that fails to
 * evaluate is a HeaderError.
 */
export function macroConstants(macros: MacroTable, exclude: ReadonlySet<string>, ctx: ExprContext, leftOut: LeftOut[] = []): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const { name, loc } of macros.objectLike()) {
    if (!CONSTANT_NAME.test(name) || exclude.has(name)) continue;
    const body = macros.body(name);
    if (!body || body.length === 0) continue;
    let value: bigint;
    try {
      value = evalConstExpr(macros.expand(name), ctx);
    } catch (err) {
      if (!(err instanceof HeaderError)) throw err;
      if (err instanceof ExprError && err.kind === 'not-integer') continue;
      if (err instanceof ExprError && err.kind === 'unresolved') {
        const ident = /unknown identifier '([^']+)'|call of '([^']+)'/.exec(err.message);
        const id = ident?.[1] ?? ident?.[2];
        if (id !== undefined && KERNEL_ONLY_IDENTIFIERS.test(id)) {
          leftOut.push({ name, loc, reason: `uses ${id}, which only the kernel defines (no uapi header does)` });
          continue;
        }
      }
      // Anything else (a sizeof the layout cannot answer, division by zero, an unknown name).
      throw new HeaderError(loc, `#define ${name}`, withoutLoc(err));
    }
    out.set(name, value);
  }
  return out;
}

/**
 * Every function-like KVM_* macro with its body normalized: tokens joined by one space, each
 * parameter spelled by its position, so renaming a parameter is no change but editing the formula is.
 */
export function functionMacros(macros: MacroTable): Record<string, FunctionMacro> {
  const out: Record<string, FunctionMacro> = {};
  for (const d of macros.functionLike()) {
    if (!CONSTANT_NAME.test(d.name)) continue;
    const body = d.body.map((t) => (t.kind === 'ident' && d.params.includes(t.text) ? `$${d.params.indexOf(t.text)}` : t.text)).join(' ');
    out[d.name] = d.variadic ? { params: d.params.length, variadic: true, body } : { params: d.params.length, body };
  }
  return out;
}

/** `#define KVM_A KVM_B` where KVM_B is a known name: alias -> target. */
export function macroAliases(macros: MacroTable, known: (name: string) => boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const { name } of macros.objectLike()) {
    if (!CONSTANT_NAME.test(name)) continue;
    const body = macros.body(name);
    if (body?.length === 1 && body[0].kind === 'ident' && body[0].text !== name && known(body[0].text)) out[name] = body[0].text;
  }
  return out;
}

/** A spec constant: a JSON number when exactly representable and safe for any JSON reader, else a decimal string. */
export function constantValue(v: bigint): number | string {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}
