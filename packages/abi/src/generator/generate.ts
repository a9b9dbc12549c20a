import { plainCharSigned } from '../spec/arch.js';
import type { Arch, IoctlSpec, LayoutLeaf, Spec, StructSpec } from '../spec/types.js';
import { constantValue, CONSTANT_NAME, macroConstants } from './constants.js';
import { builtinType, evalConstExpr, type ExprContext, type IntType } from './expr.js';
import { ioctlFd } from './fd-table.js';
import { IoctlDecoder } from './ioctl.js';
import { computeLayouts } from './layout.js';
import { parseTranslationUnit, startsTypeName } from './parser.js';
import { predefinedMacros } from './predefined.js';
import { preprocess, type PreprocessResult } from './preprocess.js';
import { HeaderError, type Token } from './tokens.js';

export interface GenerateOptions {
  /** Include roots searched in order; together they must resolve <linux/kvm.h> and <asm/kvm.h>. */
  includeDirs: string[];
  arch: Arch;
  /** Recorded verbatim as the spec's `kernel`. */
  kernel: string;
}

/** The header every spec is generated from; it includes asm/kvm.h and the generic headers. */
export const ENTRY_HEADER = 'linux/kvm.h';
/**
 * Ioctls are the public KVM_* request macros. `__KVM_DEPRECATED_*` ones are placeholders for removed
 * ioctls (kept so their numbers are never reused): neither ioctls nor constants in the spec.
 */
const IOCTL_NAME = /^KVM_/;
const QUALIFIERS = new Set(['const', 'volatile', '__const', '__volatile__', '__extension__']);

export function generateSpec(opts: GenerateOptions): Spec {
  const pp = preprocess({ entry: [ENTRY_HEADER], includeDirs: opts.includeDirs, predefined: predefinedMacros(opts.arch) });
  return specFrom(pp, opts.arch, opts.kernel);
}

function specFrom(pp: PreprocessResult, arch: Arch, kernel: string): Spec {
  const tu = parseTranslationUnit(pp.tokens);
  const layout = computeLayouts(tu, arch, evalConstExpr);
  const enums = layout.enumConstants;
  const ctx: ExprContext = {
    sizeof: (t) => layout.sizeofType(t),
    alignof: (t) => layout.alignofType(t),
    ident: (name) => (Object.hasOwn(enums, name) ? enums[name] : undefined),
    isTypeName: (t) => startsTypeName(t, tu),
    castType: (t) => castType(t, layout.typedefs),
    charUnsigned: !plainCharSigned(arch),
  };

  const decoder = new IoctlDecoder(pp.macros, ctx);
  const ioctls: Record<string, IoctlSpec> = {};
  const notConstants = new Set<string>();
  // An argument struct the arch never declares (x86's kvm_lapic_state on arm64) means the macro
  // does not compile there, so the ioctl is not part of that arch's ABI and is left out.
  const available = (type: string | null): boolean => {
    const m = type === null ? null : /^(struct|union) (\w+)$/.exec(type);
    return m === null || Object.hasOwn(layout.structs, m[2]);
  };
  for (const { name, loc } of pp.macros.objectLike()) {
    if (!CONSTANT_NAME.test(name)) continue;
    const d = decoder.decode(name, available);
    if (d === undefined) continue;
    notConstants.add(name);
    if (!('ioctl' in d) || !IOCTL_NAME.test(name)) continue;
    const fd = ioctlFd(name);
    if (fd === undefined) {
      throw new HeaderError(loc, `ioctl ${name}`, 'no fd class known: add it to packages/abi/src/generator/fd-table.ts (see Documentation/virt/kvm/api.rst)');
    }
    ioctls[name] = { ...d.ioctl, fd };
  }

  const constants: Record<string, number | string> = {};
  for (const [name, v] of macroConstants(pp.macros, notConstants, ctx)) constants[name] = constantValue(v);
  for (const [name, v] of Object.entries(enums)) {
    if (CONSTANT_NAME.test(name) && !notConstants.has(name)) constants[name] = constantValue(v);
  }

  return { kernel, arch, ioctls, structs: layout.structs, constants, typedefs: layout.typedefs };
}

/** The integer type a typedef name stands for, for casts such as `(__u64)1`. */
function castType(tokens: Token[], typedefs: Record<string, string>): IntType | undefined {
  const words = tokens.filter((t) => !QUALIFIERS.has(t.text)).map((t) => t.text);
  if (words.length !== 1 || !Object.hasOwn(typedefs, words[0])) return undefined;
  return builtinType(typedefs[words[0]].split(/\s+/));
}

/**
 * Deterministic JSON for a spec: fixed key order for records, sorted names within ioctls,
 * structs, constants and typedefs, 2-space indent, trailing newline. Regenerating from the same
 * headers is byte-identical.
 */
export function serializeSpec(spec: Spec): string {
  const canonical = {
    kernel: spec.kernel,
    arch: spec.arch,
    ioctls: sortedRecord(spec.ioctls, (i: IoctlSpec) => ({ number: i.number, dir: i.dir, size: i.size, type: i.type, fd: i.fd })),
    structs: sortedRecord(spec.structs, (s: StructSpec) => ({ size: s.size, align: s.align, kind: s.kind, layout: s.layout.map(leaf) })),
    constants: sortedRecord(spec.constants, (v) => v),
    typedefs: sortedRecord(spec.typedefs, (v) => v),
  };
  return JSON.stringify(canonical, null, 2) + '\n';
}

const LEAF_KEYS = ['path', 'offset', 'size', 'type', 'count', 'dims', 'bitOffset', 'bitWidth'];

/** A leaf with its keys in a fixed order; members added to LayoutLeaf later follow, sorted, rather than vanish. */
function leaf(l: LayoutLeaf): LayoutLeaf {
  const src = l as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  const extra = Object.keys(src).filter((k) => !LEAF_KEYS.includes(k)).sort();
  for (const k of [...LEAF_KEYS, ...extra]) if (src[k] !== undefined) out[k] = src[k];
  return out as unknown as LayoutLeaf;
}

function sortedRecord<T, U>(rec: Record<string, T>, map: (v: T) => U): Record<string, U> {
  const out: Record<string, U> = {};
  // Code-unit order, not localeCompare: the output must not depend on the machine's locale.
  for (const k of Object.keys(rec).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) out[k] = map(rec[k]);
  return out;
}
