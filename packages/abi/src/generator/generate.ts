import { relative, resolve, sep } from 'node:path';
import { plainCharSigned } from '../spec/arch.js';
import type { Arch, Diagnostic, FdSource, IoctlSpec, LayoutLeaf, SourceLocation, Spec, StructSpec } from '../spec/types.js';
import { constantValue, CONSTANT_NAME, functionMacros, macroAliases, macroConstants, type LeftOut } from './constants.js';
import { evalConstExpr, type ExprContext } from './expr.js';
import { fdSections, sectionAt } from './fd-sections.js';
import { ioctlFd, ioctlFds } from './fd-table.js';
import { IoctlDecoder } from './ioctl.js';
import { computeLayouts } from './layout.js';
import { parseTranslationUnit, startsTypeName, type TranslationUnit } from './parser.js';
import { predefinedMacros } from './predefined.js';
import { preprocess, type PreprocessResult } from './preprocess.js';
import { HeaderError, type SourceLoc } from './tokens.js';

export interface GenerateOptions {
  /** Include roots searched in order; together they must resolve <linux/kvm.h> and <asm/kvm.h>. */
  includeDirs: string[];
  arch: Arch;
  /** Recorded verbatim as the spec's `kernel`. */
  kernel: string;
  /** A macro left out for a kernel-only helper (a diagnostic) fails generation instead. */
  strict?: boolean;
  /** Receives one line per warning: each diagnostic, each fd class taken from a header section. */
  warn?: (line: string) => void;
  /** How a header's absolute path is recorded; default: relative to the include dir holding it. */
  displayPath?: (path: string) => string;
  /** Receives the absolute path of every header read, in order. */
  included?: (files: readonly string[]) => void;
}

/** The header every spec is generated from; it includes asm/kvm.h and the generic headers. */
export const ENTRY_HEADER = 'linux/kvm.h';
/**
 * Ioctls are the public KVM_* request macros. `__KVM_DEPRECATED_*` ones are placeholders for removed
 * ioctls (kept so their numbers are never reused): neither ioctls nor constants in the spec.
 */
const IOCTL_NAME = /^KVM_/;

export function generateSpec(opts: GenerateOptions): Spec {
  const pp = preprocess({ entry: [ENTRY_HEADER], includeDirs: opts.includeDirs, predefined: predefinedMacros(opts.arch) });
  opts.included?.(pp.files);
  const display = opts.displayPath ?? relativeToIncludeDir(opts.includeDirs);
  return specFrom(pp, opts, display);
}

/** `path` relative to the first include dir that holds it ("linux/kvm.h"), so specs name no machine paths. */
export function relativeToIncludeDir(includeDirs: string[]): (path: string) => string {
  const dirs = includeDirs.map((d) => resolve(d));
  return (path) => {
    const dir = dirs.find((d) => path.startsWith(d + sep));
    return dir === undefined ? path : relative(dir, path).split(sep).join('/');
  };
}

/**
 * A `#ifdef __KERNEL__` inside a struct or union body: headers_install strips the group, so the
 * kernel compiles one layout and userspace another, and no diff of the userspace view can see it.
 */
function refuseKernelOnlyMembers(tu: TranslationUnit, conditionals: SourceLoc[]): void {
  for (const d of tu.decls) {
    if (d.kind !== 'record' || !d.decl.body) continue;
    const { open, close } = d.decl.body;
    const inside = conditionals.find((c) => c.file === open.file && c.file === close.file && c.line >= open.line && c.line <= close.line);
    if (inside) {
      const what = `${d.decl.kind} ${d.decl.tag ?? '(anonymous)'}`;
      throw new HeaderError(inside, what, 'a __KERNEL__ conditional inside the body: headers_install strips it, so the kernel\'s layout and userspace\'s differ');
    }
  }
}

function specFrom(pp: PreprocessResult, opts: GenerateOptions, display: (path: string) => string): Spec {
  const { arch, kernel } = opts;
  const warn = opts.warn ?? (() => {});
  const tu = parseTranslationUnit(pp.tokens, pp.packs);
  refuseKernelOnlyMembers(tu, pp.kernelConditionals);
  const layout = computeLayouts(tu, arch, evalConstExpr);
  const enumValues = layout.enumConstants;
  const ctx: ExprContext = {
    sizeof: (t) => layout.sizeofType(t),
    alignof: (t) => layout.alignofType(t),
    ident: (name) => (Object.hasOwn(enumValues, name) ? enumValues[name] : undefined),
    identType: (name) => layout.identType(name),
    isTypeName: (t) => startsTypeName(t, tu),
    castType: (t) => layout.castType(t),
    charUnsigned: !plainCharSigned(arch),
  };
  const where = (loc: SourceLoc) => `${display(loc.file)}:${loc.line}`;

  const decoder = new IoctlDecoder(pp.macros, ctx);
  const ioctls: Record<string, IoctlSpec> = {};
  const notConstants = new Set<string>();
  // An argument struct the arch never declares (x86's kvm_lapic_state on arm64) means the macro
  // does not compile there, so the ioctl is not part of that arch's ABI and is left out.
  const available = (type: string | null): boolean => {
    const m = type === null ? null : /^(struct|union) (\w+)$/.exec(type);
    return m === null || Object.hasOwn(layout.structs, m[2]);
  };
  const kvmHeader = pp.files[0];
  const sections = kvmHeader === undefined ? [] : fdSections(kvmHeader);
  for (const { name, loc } of pp.macros.objectLike()) {
    if (!CONSTANT_NAME.test(name)) continue;
    const d = decoder.decode(name, available);
    if (d === undefined) continue;
    notConstants.add(name);
    if (!('ioctl' in d) || !IOCTL_NAME.test(name)) continue;
    let fd = ioctlFd(name);
    let fdSource: FdSource = 'api.rst';
    if (fd === undefined) {
      const section = loc.file === kvmHeader ? sectionAt(sections, loc.line) : undefined;
      if (section === undefined) {
        throw new HeaderError(loc, `ioctl ${name}`,
          'outside every "ioctls for … fds" section of linux/kvm.h and not in the fd table: add it to packages/abi/src/generator/fd-table.ts (see Documentation/virt/kvm/api.rst)');
      }
      fd = section.fd;
      fdSource = 'header-section';
      warn(`${where(loc)}: warning: ioctl ${name}: fd class '${fd}' from the linux/kvm.h section at line ${section.line} (no fd-table.ts entry)`);
    }
    const fds = fdSource === 'api.rst' ? ioctlFds(name) : undefined;
    ioctls[name] = { ...d.ioctl, fd, ...(fds ? { fds: [...fds] } : {}), fdSource, file: display(loc.file), line: loc.line };
  }

  const leftOut: LeftOut[] = [];
  const constants: Record<string, number | string> = {};
  const constantLocs: Record<string, SourceLocation> = {};
  for (const [name, v] of macroConstants(pp.macros, notConstants, ctx, leftOut)) {
    constants[name] = constantValue(v);
    constantLocs[name] = location(pp.macros.get(name)!.loc, display);
  }
  for (const [name, v] of Object.entries(enumValues)) {
    if (CONSTANT_NAME.test(name) && !notConstants.has(name)) {
      constants[name] = constantValue(v);
      constantLocs[name] = location(layout.enumeratorLocs[name], display);
    }
  }
  const diagnostics: Diagnostic[] = [];
  for (const l of leftOut) {
    if (opts.strict) throw new HeaderError(l.loc, `#define ${l.name}`, `${l.reason} (an error with --strict)`);
    warn(`${where(l.loc)}: warning: #define ${l.name} left out: ${l.reason}`);
    diagnostics.push({ name: l.name, ...location(l.loc, display), reason: l.reason });
  }

  const enums: Record<string, string[]> = {};
  for (const e of layout.enums) {
    const members = e.members.filter((m) => Object.hasOwn(constants, m));
    if (members.length > 0 && !Object.hasOwn(enums, e.name)) enums[e.name] = members;
  }
  const typedefLocs: Record<string, SourceLocation> = {};
  for (const [name, loc] of Object.entries(layout.typedefLocs)) typedefLocs[name] = location(loc, display);

  const aliases = macroAliases(pp.macros, (n) => Object.hasOwn(constants, n) || Object.hasOwn(ioctls, n));

  return {
    kernel,
    arch,
    ioctls,
    structs: relativeStructs(layout.structs, display),
    constants,
    typedefs: layout.typedefs,
    enums,
    aliases,
    macros: functionMacros(pp.macros),
    locations: { constants: constantLocs, typedefs: typedefLocs },
    diagnostics,
  };
}

function location(loc: SourceLoc, display: (path: string) => string): SourceLocation {
  return { file: display(loc.file), line: loc.line };
}

/** Struct and leaf files made relative; a leaf keeps `file` only where it differs from its struct's. */
function relativeStructs(structs: Record<string, StructSpec>, display: (path: string) => string): Record<string, StructSpec> {
  const out: Record<string, StructSpec> = {};
  for (const [name, s] of Object.entries(structs)) {
    const file = s.file === undefined ? undefined : display(s.file);
    const layout = s.layout.map((l) => {
      if (l.file === undefined) return l;
      const leafFile = display(l.file);
      const { file: _abs, ...rest } = l;
      return leafFile === file ? rest : { ...rest, file: leafFile };
    });
    out[name] = { ...s, file, layout };
  }
  return out;
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
    ioctls: sortedRecord(spec.ioctls, (i: IoctlSpec) => ({
      number: i.number, dir: i.dir, size: i.size, type: i.type, fd: i.fd, fds: i.fds, fdSource: i.fdSource, file: i.file, line: i.line,
    })),
    structs: sortedRecord(spec.structs, (s: StructSpec) => ({ size: s.size, align: s.align, kind: s.kind, file: s.file, line: s.line, layout: s.layout.map(leaf) })),
    constants: sortedRecord(spec.constants, (v) => v),
    enums: spec.enums && sortedRecord(spec.enums, (v) => v),
    aliases: spec.aliases && sortedRecord(spec.aliases, (v) => v),
    macros: spec.macros && sortedRecord(spec.macros, (m) => ({ params: m.params, variadic: m.variadic, body: m.body })),
    typedefs: sortedRecord(spec.typedefs, (v) => v),
    locations: spec.locations && {
      constants: sortedRecord(spec.locations.constants, (l: SourceLocation) => ({ file: l.file, line: l.line })),
      typedefs: sortedRecord(spec.locations.typedefs, (l: SourceLocation) => ({ file: l.file, line: l.line })),
    },
    diagnostics: spec.diagnostics && [...spec.diagnostics]
      .sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)))
      .map((d) => ({ name: d.name, file: d.file, line: d.line, reason: d.reason })),
  };
  return JSON.stringify(canonical, null, 2) + '\n';
}

const LEAF_KEYS = ['path', 'offset', 'size', 'type', 'count', 'dims', 'bitOffset', 'bitWidth', 'file', 'line'];

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
