/**
 * LP64 data layout (x86_64 SysV, AAPCS64, RISC-V LP64D) for the types of a parsed header, following
 * what GCC does on those targets: natural alignment, tail padding, packed/aligned attributes, and
 * PCC-style bitfields (a field may not span more alignment units of its declared type than the
 * type itself has; named fields give the record their type's alignment, unnamed ones do not).
 */
import { plainCharSigned } from '../spec/arch.js';
import type { Arch, LayoutLeaf, StructSpec } from '../spec/types.js';
import type { ExprContext, IntType } from './expr.js';
import {
  parseTypeName,
  startsTypeName,
  typeToString,
  type BaseTypeName,
  type CType,
  type EnumDecl,
  type Member,
  type RecordDecl,
  type TranslationUnit,
  type TypedefDecl,
} from './parser.js';
import { HeaderError, type SourceLoc, type Token } from './tokens.js';

export type EvalExpr = (tokens: Token[], ctx?: ExprContext) => bigint;

export interface Layouts {
  /** Struct `file`/`line` and leaf `file` are absolute paths here; the generator makes them relative. */
  structs: Record<string, StructSpec>;
  typedefs: Record<string, string>;
  enumConstants: Record<string, bigint>;
  /** Every enum with enumerators, in source order: its tag, or its first enumerator when anonymous. */
  enums: Array<{ name: string; members: string[]; loc: SourceLoc }>;
  enumeratorLocs: Record<string, SourceLoc>;
  typedefLocs: Record<string, SourceLoc>;
  sizeofType(typeTokens: Token[]): bigint;
  alignofType(typeTokens: Token[]): bigint;
  /** The integer type a cast names (a base type, enum, pointer, or typedef of one), as C converts to it. */
  castType(typeTokens: Token[]): IntType | undefined;
  identType(name: string): IntType | undefined;
}

interface BaseInfo {
  size: number;
  align: number;
  signed: boolean;
  float: boolean;
}

/** The three targets agree on every size; they differ only in plain char's signedness. */
function baseInfo(name: BaseTypeName, arch: Arch): BaseInfo | undefined {
  const int = (size: number, signed: boolean): BaseInfo => ({ size, align: size, signed, float: false });
  const flt = (size: number): BaseInfo => ({ size, align: size, signed: true, float: true });
  switch (name) {
    case 'void':
      return undefined;
    case 'char':
      return int(1, plainCharSigned(arch));
    case 'signed char':
      return int(1, true);
    case 'unsigned char':
    case '_Bool':
      return int(1, false);
    case 'short':
      return int(2, true);
    case 'unsigned short':
      return int(2, false);
    case 'int':
      return int(4, true);
    case 'unsigned int':
      return int(4, false);
    case 'long':
    case 'long long':
      return int(8, true);
    case 'unsigned long':
    case 'unsigned long long':
      return int(8, false);
    case '__int128':
      return int(16, true);
    case 'unsigned __int128':
      return int(16, false);
    case 'float':
      return flt(4);
    case 'double':
      return flt(8);
    case 'long double':
      return flt(16);
  }
}

/**
 * Whether an unnamed bitfield gives its record the alignment of its declared type: AAPCS64 says
 * so (GCC's TARGET_ALIGN_ANON_BITFIELD on aarch64); the x86_64 and RISC-V psABIs say it does not.
 */
function unnamedBitfieldsAlign(arch: Arch): boolean {
  return arch === 'arm64';
}

const POINTER: BaseInfo = { size: 8, align: 8, signed: false, float: false };
/** GCC's __BIGGEST_ALIGNMENT__ (what a bare `aligned` means) on all three targets at default flags. */
const BIGGEST_ALIGNMENT = 16;

export function computeLayouts(tu: TranslationUnit, arch: Arch, evalExpr: EvalExpr): Layouts {
  return new LayoutEngine(tu, arch, evalExpr).run();
}

interface SizeAlign {
  size: number;
  align: number;
}

/** A leaf relative to its record; `anonElem` names an array element type that has no tag yet. */
interface Leaf extends LayoutLeaf {
  anonElem?: RecordDecl;
}

interface RecordLayout {
  size: number;
  align: number;
  leaves: Leaf[];
}

interface EnumLayout extends SizeAlign {
  underlying: BaseTypeName;
}

class LayoutEngine {
  private readonly records = new Map<RecordDecl, RecordLayout>();
  private readonly inProgress = new Set<RecordDecl>();
  private readonly enums = new Map<EnumDecl, EnumLayout>();
  private readonly enumConstants: Record<string, bigint> = {};
  private readonly enumTypes: Record<string, IntType> = {};
  private readonly enumList: Layouts['enums'] = [];
  private readonly enumeratorLocs: Record<string, SourceLoc> = {};
  /** Typedefs in force so far: a later one is not visible to earlier declarations. */
  private readonly typedefsSeen = new Map<string, TypedefDecl>();
  private readonly typedefSizes = new Map<TypedefDecl, SizeAlign>();
  private readonly arraySizes = new WeakMap<CType, number>();
  private readonly ctx: ExprContext;

  constructor(
    private readonly tu: TranslationUnit,
    private readonly arch: Arch,
    private readonly evalExpr: EvalExpr,
  ) {
    this.ctx = {
      sizeof: (tokens) => BigInt(this.sizeAlign(this.typeName(tokens), tokens[0]?.loc ?? unknownLoc, 'sizeof').size),
      alignof: (tokens) => BigInt(this.sizeAlign(this.typeName(tokens), tokens[0]?.loc ?? unknownLoc, 'alignof').align),
      ident: (name) => (Object.hasOwn(this.enumConstants, name) ? this.enumConstants[name] : undefined),
      identType: (name) => (Object.hasOwn(this.enumTypes, name) ? this.enumTypes[name] : undefined),
      isTypeName: (tokens) => startsTypeName(tokens, tu),
      castType: (tokens) => this.intType(this.typeName(tokens)),
    };
  }

  run(): Layouts {
    const structs: Record<string, StructSpec> = {};
    for (const d of this.tu.decls) {
      switch (d.kind) {
        case 'typedef':
          this.typedefsSeen.set(d.name, d);
          break;
        case 'enum':
          this.layoutEnum(d.decl);
          break;
        case 'record': {
          const layout = this.layoutRecord(d.decl);
          if (d.decl.tag !== undefined) this.emit(d.decl.tag, d.decl, layout, structs);
          break;
        }
        case 'staticAssert':
          if (this.eval(d.expr, d.loc, '_Static_assert') === 0n) {
            throw new HeaderError(d.loc, '_Static_assert', `assertion failed for ${this.arch}: ${d.expr.map((t) => t.text).join(' ')}`);
          }
          break;
        case 'object':
          break;
      }
    }
    const typedefs: Record<string, string> = {};
    const typedefLocs: Record<string, SourceLoc> = {};
    for (const [name, td] of this.tu.typedefs) {
      typedefs[name] = typeToString(this.resolveDeep(td.type));
      typedefLocs[name] = td.loc;
    }
    return {
      structs,
      typedefs,
      enumConstants: this.enumConstants,
      enums: this.enumList,
      enumeratorLocs: this.enumeratorLocs,
      typedefLocs,
      sizeofType: (tokens) => this.ctx.sizeof!(tokens),
      alignofType: (tokens) => this.ctx.alignof!(tokens),
      castType: (tokens) => this.ctx.castType!(tokens),
      identType: (name) => this.ctx.identType!(name),
    };
  }

  // ---- spec output ----

  private emit(key: string, decl: RecordDecl, layout: RecordLayout, structs: Record<string, StructSpec>): void {
    const leaves = layout.leaves.map((leaf): LayoutLeaf => {
      const { anonElem, ...out } = leaf;
      if (anonElem) {
        const name = `${key}.${leaf.path}`;
        this.emit(name, anonElem, this.records.get(anonElem)!, structs);
        out.type = `${anonElem.kind} ${name}`;
      }
      return out;
    });
    const at = decl.defLoc ?? decl.loc;
    structs[key] = { size: layout.size, align: layout.align, kind: decl.kind, layout: leaves, file: at.file, line: at.line };
  }

  // ---- types ----

  private typeName(tokens: Token[]): CType {
    return parseTypeName(tokens, this.tu);
  }

  private typedef(type: { name: string; loc: SourceLoc }): TypedefDecl {
    const td = this.typedefsSeen.get(type.name);
    if (!td) throw new HeaderError(type.loc, `typedef ${type.name}`, 'used before it is declared');
    return td;
  }

  /** Follows typedefs at the outermost level only. */
  private resolve(type: CType): CType {
    let t = type;
    while (t.kind === 'typedef') {
      const td = this.tu.typedefs.get(t.name);
      if (!td) throw new HeaderError(t.loc, 'type', `unknown type name '${t.name}'`);
      t = td.type;
    }
    return t;
  }

  private resolveDeep(type: CType): CType {
    const t = this.resolve(type);
    switch (t.kind) {
      case 'pointer':
        return { kind: 'pointer', to: this.resolveDeep(t.to) };
      case 'array':
        return { ...t, of: this.resolveDeep(t.of) };
      case 'function':
        return { ...t, returns: this.resolveDeep(t.returns) };
      default:
        return t;
    }
  }

  private sizeAlign(type: CType, loc: SourceLoc, use: string): SizeAlign {
    switch (type.kind) {
      case 'base': {
        const info = baseInfo(type.name, this.arch);
        if (!info) throw new HeaderError(loc, use, `'${type.name}' has no size`);
        return { size: info.size, align: info.align };
      }
      case 'pointer':
        return POINTER;
      case 'typedef': {
        const td = this.typedef(type);
        let sa = this.typedefSizes.get(td);
        if (!sa) {
          sa = { ...this.sizeAlign(td.type, type.loc, use) };
          // On a typedef, aligned(n) sets the alignment, lowering it too (GCC documents this).
          if (td.attrs.aligned.length) sa.align = this.userAlign(td.attrs.aligned);
          this.typedefSizes.set(td, sa);
        }
        return sa;
      }
      case 'record': {
        const layout = this.records.get(type.decl);
        if (!layout) throw new HeaderError(loc, `${use} of ${recordName(type.decl)}`, this.whyIncomplete(type.decl));
        return { size: layout.size, align: layout.align };
      }
      case 'enum': {
        const layout = this.enums.get(type.decl);
        if (!layout) throw new HeaderError(loc, `${use} of enum ${type.decl.tag ?? '<anonymous>'}`, 'incomplete enum type');
        return layout;
      }
      case 'array': {
        const elem = this.sizeAlign(type.of, loc, use);
        return { size: elem.size * this.arrayCount(type), align: elem.align };
      }
      case 'function':
        throw new HeaderError(loc, use, 'a function type has no size');
    }
  }

  private whyIncomplete(decl: RecordDecl): string {
    if (this.inProgress.has(decl)) return 'contains itself by value';
    if (decl.members) {
      return `used by value before its definition at ${decl.defLoc!.file}:${decl.defLoc!.line}`;
    }
    return 'incomplete type (declared but never defined)';
  }

  private arrayCount(type: Extract<CType, { kind: 'array' }>): number {
    if (type.size === null) return 0;
    let n = this.arraySizes.get(type);
    if (n === undefined) {
      n = toNumber(this.eval(type.size, type.loc, 'array size'), type.loc, 'array size');
      this.arraySizes.set(type, n);
    }
    return n;
  }

  private intType(type: CType): IntType | undefined {
    const t = this.resolve(type);
    let size: number;
    let signed: boolean;
    if (t.kind === 'base') {
      const info = baseInfo(t.name, this.arch);
      if (!info || info.float || info.size > 8) return undefined;
      size = info.size;
      signed = info.signed;
      if (t.name === '_Bool') return { bits: 8, unsigned: true, bool: true };
    } else if (t.kind === 'enum') {
      const e = this.enums.get(t.decl);
      if (!e) return undefined;
      size = e.size;
      signed = baseInfo(e.underlying, this.arch)!.signed;
    } else if (t.kind === 'pointer') {
      size = 8;
      signed = false;
    } else return undefined;
    return { bits: (size * 8) as IntType['bits'], unsigned: !signed };
  }

  private eval(tokens: Token[], loc: SourceLoc, what: string): bigint {
    if (tokens.length === 0) throw new HeaderError(loc, what, 'empty expression');
    return this.evalExpr(tokens, this.ctx);
  }

  private userAlign(aligned: { tokens: Token[] | null; loc: SourceLoc }[]): number {
    let max = 0;
    for (const a of aligned) {
      const n = a.tokens ? toNumber(this.eval(a.tokens, a.loc, 'aligned'), a.loc, 'aligned') : BIGGEST_ALIGNMENT;
      if (n === 0 || (n & (n - 1)) !== 0) throw new HeaderError(a.loc, `aligned(${n})`, 'alignment is not a power of two');
      max = Math.max(max, n);
    }
    return max;
  }

  // ---- enums ----

  private layoutEnum(decl: EnumDecl): void {
    const declaredHere = new Map<string, SourceLoc>();
    let next = 0n;
    let min = 0n;
    let max = 0n;
    for (const e of decl.enumerators ?? []) {
      const v = e.value ? this.eval(e.value, e.loc, `enumerator ${e.name}`) : next;
      if (Object.hasOwn(this.enumConstants, e.name)) {
        // GCC refuses any redeclaration, even with the same value.
        const first = this.enumeratorLocs[e.name] ?? declaredHere.get(e.name);
        throw new HeaderError(e.loc, `enumerator ${e.name}`, `redeclared${first ? ` (first declared at ${first.file}:${first.line})` : ''}`);
      }
      declaredHere.set(e.name, e.loc);
      this.enumConstants[e.name] = v;
      if (v < min) min = v;
      if (v > max) max = v;
      next = v + 1n;
    }
    const underlying = enumUnderlying(min, max, decl.attrs.packed);
    if (!underlying) throw new HeaderError(decl.defLoc ?? decl.loc, `enum ${decl.tag ?? '<anonymous>'}`, 'values do not fit in 64 bits');
    const info = baseInfo(underlying, this.arch)!;
    // Once the enum is complete, an enumerator that fits int is an int; any other has the enum's type.
    const own: IntType = { bits: (info.size * 8) as IntType['bits'], unsigned: !info.signed };
    const members = decl.enumerators ?? [];
    for (const e of members) {
      const v = this.enumConstants[e.name];
      this.enumTypes[e.name] = v >= -0x80000000n && v <= 0x7fffffffn ? { bits: 32, unsigned: false } : own;
      this.enumeratorLocs[e.name] ??= e.loc;
    }
    if (members.length > 0) {
      this.enumList.push({ name: decl.tag ?? members[0].name, members: members.map((e) => e.name), loc: decl.defLoc ?? decl.loc });
    }
    let align = info.align;
    if (decl.attrs.aligned.length) align = Math.max(align, this.userAlign(decl.attrs.aligned));
    this.enums.set(decl, { size: info.size, align, underlying });
  }

  // ---- records ----

  private layoutRecord(decl: RecordDecl): RecordLayout {
    const done = this.records.get(decl);
    if (done) return done;
    this.inProgress.add(decl);
    const isUnion = decl.kind === 'union';
    const packedRecord = decl.attrs.packed;
    // GCC keeps a field's position as an offset in units of offset_align (BIGGEST_ALIGNMENT, or the
    // record's own aligned(N) if larger) plus a bit position below it (stor-layout.cc, normalize_rli).
    const maxFieldAlign = decl.maxFieldAlign ?? 0;
    const offsetAlignBits = Math.max(BIGGEST_ALIGNMENT, decl.attrs.aligned.length ? this.userAlign(decl.attrs.aligned) : 0) * 8;
    let bitpos = 0;
    let unionBits = 0;
    let align = 1;
    const leaves: Leaf[] = [];
    const names = new Map<string, SourceLoc>();
    // GCC counts an anonymous struct/union as a named member here (c-decl.cc, finish_struct).
    let sawNamed = false;
    for (const [i, m] of decl.members!.entries()) {
      const where = recordName(decl) + (m.name ? `.${m.name}` : '');
      const r = this.resolve(m.type);
      if (r.kind === 'array' && r.size === null) {
        if (isUnion) throw new HeaderError(m.loc, `member ${where}`, 'flexible array member in a union');
        if (i !== decl.members!.length - 1) throw new HeaderError(m.loc, `member ${where}`, 'flexible array member is not the last member');
        if (!sawNamed) throw new HeaderError(m.loc, `member ${where}`, 'flexible array member in a struct with no named members');
      }
      this.declareNames(m, r, names, decl);
      sawNamed ||= m.name !== undefined || (r.kind === 'record' && !m.bitWidth);
      const packed = packedRecord || m.attrs.packed;
      const user = m.attrs.aligned.length ? this.userAlign(m.attrs.aligned) : 0;
      if (m.bitWidth) {
        const placed = this.placeBitfield(m, where, isUnion ? 0 : bitpos, packed, user, offsetAlignBits, maxFieldAlign);
        if (placed === undefined) continue;
        if (isUnion) unionBits = Math.max(unionBits, placed.end);
        else bitpos = placed.end;
        align = Math.max(align, placed.recordAlign);
        if (placed.leaf) leaves.push(placed.leaf);
        continue;
      }
      const { size, align: typeAlign } = this.sizeAlign(m.type, m.loc, `member ${where}`);
      // #pragma pack(N) caps every member's alignment, an aligned(N) on it included.
      const fieldAlign = clampAlign(Math.max(packed ? 1 : typeAlign, user), maxFieldAlign);
      const offsetBits = isUnion ? 0 : alignUp(bitpos, fieldAlign * 8);
      if (isUnion) unionBits = Math.max(unionBits, size * 8);
      else bitpos = offsetBits + size * 8;
      align = Math.max(align, fieldAlign);
      this.memberLeaves(m, offsetBits / 8, leaves, where);
    }
    if (decl.attrs.aligned.length) align = Math.max(align, this.userAlign(decl.attrs.aligned));
    const dataBytes = Math.ceil((isUnion ? unionBits : bitpos) / 8);
    const layout: RecordLayout = { size: alignUp(dataBytes, align), align, leaves: stableSortByOffset(leaves) };
    this.inProgress.delete(decl);
    this.records.set(decl, layout);
    return layout;
  }

  /**
   * Adds the names `m` brings into its record's scope (an anonymous struct/union brings its own
   * members') to `names`, refusing a duplicate as GCC does.
   */
  private declareNames(m: Member, resolved: CType, names: Map<string, SourceLoc>, decl: RecordDecl): void {
    const add = (name: string, loc: SourceLoc) => {
      const first = names.get(name);
      if (first) throw new HeaderError(loc, `member ${recordName(decl)}.${name}`, `duplicate member '${name}' (first declared at ${first.file}:${first.line})`);
      names.set(name, loc);
    };
    if (m.name !== undefined) add(m.name, m.loc);
    else if (resolved.kind === 'record' && resolved.decl.tag === undefined && !m.bitWidth) {
      for (const [name, loc] of this.scopeNames(resolved.decl)) add(name, loc);
    }
  }

  /** The member names visible in a record: its named members and those of its anonymous ones. */
  private scopeNames(decl: RecordDecl): Array<[string, SourceLoc]> {
    const out: Array<[string, SourceLoc]> = [];
    for (const m of decl.members ?? []) {
      const r = this.resolve(m.type);
      if (m.name !== undefined) out.push([m.name, m.loc]);
      else if (r.kind === 'record' && r.decl.tag === undefined && !m.bitWidth) out.push(...this.scopeNames(r.decl));
    }
    return out;
  }

  /** undefined for a zero-width field; otherwise where the field ends and what it adds. */
  private placeBitfield(
    m: Member,
    where: string,
    bitpos: number,
    packed: boolean,
    user: number,
    offsetAlignBits: number,
    maxFieldAlign: number,
  ): { end: number; recordAlign: number; leaf?: Leaf } | undefined {
    const { size, align } = this.sizeAlign(m.type, m.loc, `bitfield ${where}`);
    const t = this.resolve(m.type);
    if (t.kind !== 'enum' && !(t.kind === 'base' && !baseInfo(t.name, this.arch)?.float)) {
      throw new HeaderError(m.loc, `bitfield ${where}`, `type '${typeToString(m.type)}' is not an integer type`);
    }
    const width = toNumber(this.eval(m.bitWidth!, m.loc, `bitfield ${where} width`), m.loc, `bitfield ${where} width`);
    // A _Bool holds one bit, whatever its storage size.
    const typeBits = t.kind === 'base' && t.name === '_Bool' ? 1 : size * 8;
    if (width > typeBits) throw new HeaderError(m.loc, `bitfield ${where}`, `width ${width} exceeds its type (${typeBits} bit${typeBits === 1 ? '' : 's'})`);
    const unitBits = size * 8;
    const alignBits = align * 8;
    if (width === 0) {
      if (m.name !== undefined) throw new HeaderError(m.loc, `bitfield ${where}`, 'named bitfield has zero width');
      // GCC moves to the declared type's boundary (or a larger aligned(N)) even in packed records;
      // where unnamed fields align the record, packed does not lower a zero-width one's type
      // alignment and an aligned(N) on it counts too (stor-layout.cc, update_alignment_for_field).
      // #pragma pack does not apply to them either.
      return { end: alignUp(bitpos, Math.max(alignBits, user * 8)), recordAlign: unnamedBitfieldsAlign(this.arch) ? Math.max(align, user) : 1 };
    }
    // GCC (layout_decl) lays a bitfield of exactly 8/16/32/64 bits that sits on a boundary of its
    // width out as an ordinary integer of that width: the type's own (possibly raised) alignment
    // then does not move it, and the width's alignment counts for the record.
    const modeBits = [8, 16, 32, 64].includes(width) && !(packed && width > 8) && bitpos % width === 0 ? width : 0;
    const ownAlign = clampAlign(user, maxFieldAlign);
    let start = ownAlign ? alignUp(bitpos, ownAlign * 8) : bitpos;
    // Under #pragma pack GCC skips the PCC placement entirely (maximum_field_alignment != 0).
    if (!modeBits && !packed && !maxFieldAlign && excessUnitSpan(start, width, alignBits, unitBits)) {
      // GCC rounds only the bit position within the current offset_align unit, so a type aligned
      // beyond offset_align moves to that unit's start plus its alignment, not to a multiple of it.
      const unitStart = start - (start % offsetAlignBits);
      start = unitStart + alignUp(start - unitStart, alignBits);
    }
    // Only named bitfields give the record alignment (unless the psABI says unnamed ones do too):
    // neither the type's nor an aligned(N) on an unnamed field counts on x86_64 and RISC-V.
    const counts = m.name !== undefined || unnamedBitfieldsAlign(this.arch);
    // Under #pragma pack the type's alignment counts capped, even for a packed field.
    const typeAlign = maxFieldAlign ? Math.min(align, maxFieldAlign) : packed ? 1 : align;
    const recordAlign = counts ? Math.max(typeAlign, clampAlign(Math.max(user, modeBits / 8), maxFieldAlign)) : 1;
    if (m.name === undefined) return { end: start + width, recordAlign };
    const unitOffset = Math.floor(start / unitBits) * size;
    const bitOffset = start - unitOffset * 8;
    if (bitOffset + width > unitBits) {
      throw new HeaderError(m.loc, `bitfield ${where}`,
        `packed bitfield at bit ${start} straddles its ${size}-byte storage unit, which the spec format cannot express`);
    }
    const leaf: Leaf = { path: m.name, offset: unitOffset, size, type: this.scalarTypeString(m, where), bitOffset, bitWidth: width, ...at(m.loc) };
    return { end: start + width, recordAlign, leaf };
  }

  /**
   * A scalar leaf's type as spelled. Enum leaves must be unsigned int underneath (what the runtime's
   * resolveScalar assumes for "enum X"); an anonymous enum cannot be named, so its leaf says "unsigned int".
   */
  private scalarTypeString(m: Member, where: string): string {
    const t = this.resolve(m.type);
    if (t.kind === 'enum') {
      const e = this.enums.get(t.decl)!;
      if (e.underlying !== 'unsigned int') {
        throw new HeaderError(m.loc, `member ${where}`,
          `enum ${t.decl.tag ?? '<anonymous>'} has underlying type ${e.underlying}; spec leaves only describe unsigned int enums`);
      }
      if (m.type.kind === 'enum' && t.decl.tag === undefined) return e.underlying;
    }
    return typeToString(m.type);
  }

  /** Appends the leaves of member `m` placed at byte `offset` of its record. */
  private memberLeaves(m: Member, offset: number, out: Leaf[], where: string): void {
    const t = this.resolve(m.type);
    if (t.kind === 'record') {
      const sub = this.records.get(t.decl)!;
      for (const leaf of sub.leaves) {
        out.push({ ...leaf, path: m.name !== undefined ? `${m.name}.${leaf.path}` : leaf.path, offset: leaf.offset + offset });
      }
      return;
    }
    if (m.name === undefined) throw new HeaderError(m.loc, 'member', 'unnamed member that is not a struct or union');
    if (t.kind === 'array') {
      const dims: number[] = [];
      let elem: CType = m.type;
      let r: CType = t;
      while (r.kind === 'array') {
        dims.push(this.arrayCount(r));
        elem = r.of;
        r = this.resolve(r.of);
      }
      const count = dims.reduce((a, b) => a * b, 1);
      const { size } = this.sizeAlign(elem, m.loc, `member ${m.name}`);
      const leaf: Leaf = { path: m.name, offset, size, type: '', count, ...at(m.loc) };
      if (dims.length > 1) leaf.dims = dims;
      if (r.kind === 'record') {
        if (r.decl.tag !== undefined) leaf.type = `${r.decl.kind} ${r.decl.tag}`;
        else leaf.anonElem = r.decl;
      } else {
        leaf.type = this.scalarTypeString({ ...m, type: elem }, where);
      }
      out.push(leaf);
      return;
    }
    const { size } = this.sizeAlign(m.type, m.loc, `member ${m.name}`);
    out.push({ path: m.name, offset, size, type: this.scalarTypeString(m, where), ...at(m.loc) });
  }
}

const unknownLoc: SourceLoc = { file: '<type name>', line: 0 };

/** Where a leaf was declared (file absolute until the generator makes it relative). */
const at = (loc: SourceLoc): { file: string; line: number } => ({ file: loc.file, line: loc.line });

function recordName(decl: RecordDecl): string {
  return `${decl.kind} ${decl.tag ?? `<anonymous at ${(decl.defLoc ?? decl.loc).file}:${(decl.defLoc ?? decl.loc).line}>`}`;
}

/** An alignment capped by #pragma pack's maximum (0: none in force). */
function clampAlign(align: number, maxFieldAlign: number): number {
  return maxFieldAlign ? Math.min(align, maxFieldAlign) : align;
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** GCC's excess_unit_span: would the field cover more `align`-sized units than its type has? */
function excessUnitSpan(bitpos: number, width: number, alignBits: number, typeBits: number): boolean {
  const offset = bitpos % alignBits;
  return Math.floor((offset + width + alignBits - 1) / alignBits) > Math.floor(typeBits / alignBits);
}

/** GCC: unsigned int unless a negative value needs int; 64-bit types when 32 bits are not enough. */
function enumUnderlying(min: bigint, max: bigint, packed: boolean): BaseTypeName | undefined {
  const candidates: [BaseTypeName, bigint, bigint][] = [
    ['unsigned char', 0n, 0xffn], ['signed char', -0x80n, 0x7fn],
    ['unsigned short', 0n, 0xffffn], ['short', -0x8000n, 0x7fffn],
    ['unsigned int', 0n, 0xffffffffn], ['int', -0x80000000n, 0x7fffffffn],
    ['unsigned long', 0n, 0xffffffffffffffffn], ['long', -0x8000000000000000n, 0x7fffffffffffffffn],
  ];
  for (const [name, lo, hi] of packed ? candidates : candidates.slice(4)) {
    if (min >= lo && max <= hi) return name;
  }
  return undefined;
}

function toNumber(v: bigint, loc: SourceLoc, what: string): number {
  if (v < 0n || v > 0x7fffffffn) throw new HeaderError(loc, what, `value ${v} is out of range`);
  return Number(v);
}

function stableSortByOffset(leaves: Leaf[]): Leaf[] {
  return leaves.map((leaf, i) => ({ leaf, i })).sort((a, b) => a.leaf.offset - b.leaf.offset || a.i - b.i).map((x) => x.leaf);
}
