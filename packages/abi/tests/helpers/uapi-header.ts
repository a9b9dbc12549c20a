/**
 * fast-check arbitrary for uapi-style headers nobody has written yet: nested named and anonymous
 * structs and unions, 1-D and multi-dimensional arrays sized by macros, flexible arrays,
 * bitfields (named, unnamed, zero-width, of typedefs and enums, of over-aligned typedefs after
 * arbitrary offsets), packed/aligned on structs,
 * members and typedefs, #pragma pack regions (push/pop, with ids, set/reset, opened inside a body),
 * attributes after a tag and on forward declarations, enums, KVM_* macros
 * with casts, shifts, sizeof, ternaries, and ioctls. Every header is valid GNU C: gcc is the
 * oracle (tests/property-gcc.test.ts), so anything it rejects would be a bug here.
 *
 * All names carry the header's prefix, so many headers fit in one translation unit for gcc.
 */
import fc from 'fast-check';

interface IntType {
  spelling: string;
  bits: number;
  /** Usable as an array element (no alignment raised above its size). */
  arrayOk: boolean;
}

const BASE: IntType[] = [
  { spelling: '__u8', bits: 8, arrayOk: true }, { spelling: '__u16', bits: 16, arrayOk: true },
  { spelling: '__u32', bits: 32, arrayOk: true }, { spelling: '__u64', bits: 64, arrayOk: true },
  { spelling: '__s8', bits: 8, arrayOk: true }, { spelling: '__s16', bits: 16, arrayOk: true },
  { spelling: '__s32', bits: 32, arrayOk: true }, { spelling: '__s64', bits: 64, arrayOk: true },
  { spelling: 'unsigned char', bits: 8, arrayOk: true }, { spelling: 'int', bits: 32, arrayOk: true },
  { spelling: 'unsigned long', bits: 64, arrayOk: true }, { spelling: 'long long', bits: 64, arrayOk: true },
];

class HeaderBuilder {
  private readonly lines: string[] = [];
  private readonly ints: IntType[] = [...BASE];
  private readonly overAligned: IntType[] = [];
  /** Structs usable by value: [spelling, may be an array element]. */
  private readonly records: Array<{ spelling: string; arrayOk: boolean }> = [];
  private readonly enums: string[] = [];
  /** Unsigned, non-negative enums: usable as members and bitfields. */
  private readonly memberEnums: string[] = [];
  private readonly enumerators: string[] = [];
  private readonly sizeMacros: string[] = [];
  private readonly allRecords: string[] = [];
  private member = 0;
  private tags = 0;

  constructor(
    private readonly g: fc.GeneratorValue,
    private readonly p: string,
  ) {}

  private int(min: number, max: number): number {
    return this.g(fc.integer, { min, max });
  }
  private pick<T>(list: readonly T[]): T {
    return list[this.int(0, list.length - 1)];
  }
  private chance(percent: number): boolean {
    return this.int(0, 99) < percent;
  }
  private upper(): string {
    return this.p.toUpperCase();
  }

  build(): string {
    const P = this.upper();
    this.lines.push(`#ifndef ${P}_KVM_H`, `#define ${P}_KVM_H`, '#include <linux/types.h>', '#include <linux/ioctl.h>', '#define KVMIO 0xAE');
    for (let i = this.int(0, 3); i > 0; i--) this.sizeMacros.push(this.sizeMacro());
    for (let i = this.int(0, 2); i > 0; i--) this.typedef();
    if (this.chance(40)) this.overAlignedTypedef();
    for (let i = this.int(0, 2); i > 0; i--) this.enumDecl();
    const structs = this.int(1, 4);
    for (let i = 0; i < structs; i++) this.topRecord();
    for (let i = this.int(1, 6); i > 0; i--) this.constant(i);
    this.lines.push('', '/* ioctls for vcpu fds */');
    for (let i = this.int(0, 3); i > 0; i--) this.ioctl(i);
    this.lines.push(`#endif`, '');
    return this.lines.join('\n');
  }

  private sizeMacro(): string {
    const name = `KVM_${this.upper()}_N${this.sizeMacros.length}`;
    const n = this.int(1, 5);
    this.lines.push(`#define ${name} ${this.pick([`${n}`, `(${n} + 0)`, `(1 << ${n - 1})`, `(sizeof(__u32) / 4 * ${n})`])}`);
    return name;
  }

  private typedef(): void {
    const name = `${this.p}_t${this.ints.length}`;
    const base = this.pick(BASE);
    const raise = this.chance(50);
    const align = raise ? Math.max(base.bits / 8, 1) * this.pick([2, 4]) : 1;
    this.lines.push(`typedef ${base.spelling} ${name} __attribute__((aligned(${Math.min(align, 16)})));`);
    this.ints.push({ spelling: name, bits: base.bits, arrayOk: !raise });
  }

  /** A type aligned beyond BIGGEST_ALIGNMENT (16): GCC places its bitfields relative to 16-byte units. */
  private overAlignedTypedef(): void {
    const name = `${this.p}_t${this.ints.length}`;
    const base = this.pick(BASE);
    this.lines.push(`typedef ${base.spelling} ${name} __attribute__((aligned(${this.pick([32, 64])})));`);
    const t = { spelling: name, bits: base.bits, arrayOk: false };
    this.ints.push(t);
    this.overAligned.push(t);
  }

  private enumDecl(): void {
    const tag = `${this.p}_e${this.enums.length}`;
    const wide = this.chance(30);
    const negative = this.chance(30);
    const members: string[] = [];
    for (let i = this.int(1, 4); i > 0; i--) {
      const name = `KVM_${this.upper()}_E${this.enums.length}_${members.length}`;
      const value = this.chance(50)
        ? ''
        : ` = ${this.pick([`${this.int(0, 300)}`, ...(negative ? [`-${this.int(1, 9)}`] : []), ...(wide ? ['0x80000000', '0x100000000ULL', '(1ULL << 40)'] : [])])}`;
      members.push(`${name}${value}`);
    }
    const anonymous = this.chance(30);
    this.lines.push(`enum ${anonymous ? '' : `${tag} `}{ ${members.join(', ')} };`);
    for (const m of members) this.enumerators.push(m.split(' ')[0]);
    if (!anonymous) {
      this.enums.push(tag);
      if (!wide && !negative) this.memberEnums.push(tag);
    } else this.enums.push(`${tag}_anon`);
  }

  private attr(): string {
    return this.chance(25) ? ` __attribute__((aligned(${this.pick([1, 2, 4, 8, 16])})))` : '';
  }

  private dims(): string {
    const n = this.chance(25) ? 2 : 1;
    let s = '';
    for (let i = 0; i < n; i++) s += `[${this.sizeMacros.length && this.chance(50) ? this.pick(this.sizeMacros) : this.int(1, 4)}]`;
    return s;
  }

  /** Member declarations for a record body; `top` allows a trailing flexible array. */
  private members(depth: number, union: boolean, top: boolean): { text: string[]; flex: boolean } {
    const out: string[] = [];
    const n = this.int(1, union ? 3 : 6);
    for (let i = 0; i < n; i++) out.push(...this.memberDecl(depth, union));
    if (!out.some((m) => /\bm\d+\b/.test(m))) out.push(`__u32 m${this.member++};`);
    let flex = false;
    if (top && !union && this.chance(20)) {
      flex = true;
      const elem = this.pick(this.ints.filter((t) => t.arrayOk));
      out.push(`${elem.spelling} m${this.member++}[${this.pick(['', '0'])}];`);
    }
    return { text: out, flex };
  }

  private memberDecl(depth: number, union: boolean): string[] {
    const kind = this.int(0, 9);
    const name = `m${this.member++}`;
    if (kind <= 2) {
      const t = this.pick(this.ints);
      const arr = t.arrayOk && this.chance(30) ? this.dims() : '';
      return [`${t.spelling} ${name}${arr}${this.attr()};`];
    }
    if (kind <= 5) return this.bitfields(name);
    if (kind === 6 && depth < 2) {
      const inner = this.members(depth + 1, this.chance(50), false);
      const kw = /union/.test(inner.text.join('')) ? 'struct' : this.pick(['struct', 'union']);
      const arr = this.chance(25) ? this.dims() : '';
      const named = arr !== '' || this.chance(40);
      return [`${kw} {`, ...inner.text.map((l) => `  ${l}`), `}${named ? ` ${name}${arr}` : ''};`];
    }
    if (kind === 7 && this.records.length > 0) {
      const r = this.pick(this.records);
      const arr = r.arrayOk && this.chance(30) ? this.dims() : '';
      // The attribute between the tag and the member name applies to the member (GCC).
      const between = this.chance(30) ? ` __attribute__((aligned(${this.pick([4, 8, 16])})))` : '';
      return [`${r.spelling}${between} ${name}${arr};`];
    }
    if (kind === 8 && this.memberEnums.length > 0) {
      const e = this.pick(this.memberEnums);
      return this.chance(50) ? [`enum ${e} ${name};`] : [`enum ${e} ${name} : ${this.int(1, 32)};`, ...(this.chance(40) ? [`enum ${e} : ${this.int(0, 5)};`] : [])];
    }
    void union;
    return [`__u16 ${name}${this.attr()};`];
  }

  private bitfields(first: string): string[] {
    const out: string[] = [];
    const n = this.int(1, 4);
    for (let i = 0; i < n; i++) {
      const t = this.pick(this.ints);
      const roll = this.int(0, 9);
      if (roll === 0) out.push(`${t.spelling} : 0${this.chance(30) ? ` __attribute__((aligned(${this.pick([2, 4, 8])})))` : ''};`);
      else if (roll === 1 && this.overAligned.length > 0) {
        // Unnamed, of an over-aligned type, after whatever the previous members left.
        const o = this.pick(this.overAligned);
        out.push(`${o.spelling} : ${this.int(1, o.bits)};`);
      } else if (roll <= 2) out.push(`${t.spelling} : ${this.int(1, t.bits)}${this.chance(30) ? ` __attribute__((aligned(${this.pick([1, 2, 4, 8])})))` : ''};`);
      else {
        const width = this.chance(30) ? this.pick([8, 16, 32, 64].filter((w) => w <= t.bits)) : this.int(1, t.bits);
        out.push(`${t.spelling} ${i === 0 ? first : `m${this.member++}`} : ${width}${this.attr()};`);
      }
    }
    return out;
  }

  private topRecord(): void {
    const kw = this.chance(25) ? 'union' : 'struct';
    const tag = `${this.p}_s${this.tags++}`;
    const packed = this.chance(25);
    if (this.chance(15)) this.lines.push(`${kw} __attribute__((packed)) ${tag};`); // ignored by GCC
    const body = this.members(0, kw === 'union', true);
    const aligned = this.chance(20) ? ` __attribute__((aligned(${this.pick([8, 16, 32])})))` : '';
    const before = packed && this.chance(50) ? ' __attribute__((packed))' : '';
    const after = packed && !before ? ' __attribute__((packed))' : '';
    // A #pragma pack region around the record, opened inside its body, or set and reset around it.
    const pack = this.chance(20) ? this.pick([1, 2, 4, 8, 16]) : 0;
    const style = pack ? this.int(0, 2) : -1;
    const text = body.text.map((l) => `  ${l}`);
    if (style === 1) text.splice(this.int(0, text.length), 0, `#pragma pack(push, ${pack})`);
    if (style === 0) this.lines.push(this.chance(50) ? `#pragma pack(push, ${pack})` : `#pragma pack(push, ${this.p}_r, ${pack})`);
    if (style === 2) this.lines.push(`#pragma pack(${pack})`);
    this.lines.push(`${kw}${before} ${tag} {`, ...text, `}${after}${aligned};`);
    if (style === 0 || style === 1) this.lines.push('#pragma pack(pop)');
    if (style === 2) this.lines.push('#pragma pack()');
    this.allRecords.push(`${kw} ${tag}`);
    if (!body.flex) this.records.push({ spelling: `${kw} ${tag}`, arrayOk: true });
  }

  private leafExpr(): string {
    const roll = this.int(0, 9);
    if (roll <= 2) return `${this.int(0, 999)}${this.pick(['', 'U', 'UL', 'ULL', 'L'])}`;
    if (roll === 3 && this.enumerators.length) return this.pick(this.enumerators);
    if (roll === 4 && this.allRecords.length) return `sizeof(${this.pick(this.allRecords)})`;
    if (roll === 5) return this.pick(['sizeof((__u8)1)', 'sizeof((__u16)-1)', 'sizeof((_Bool)7)', 'sizeof("kvm")', 'sizeof(\'a\')', '_Alignof(__u64)']);
    if (roll === 6) return this.int(0, 1) ? `(1ULL << ${this.int(0, 63)})` : `(1U << ${this.int(0, 31)})`;
    if (roll === 7) return `(${this.pick(['__u8', '__u16', '__s8', '__s16', '__u32', '_Bool', ...this.ints.slice(BASE.length).map((t) => t.spelling)])})${this.int(-300, 70000)}`;
    if (roll === 8 && this.memberEnums.length) return `(enum ${this.pick(this.memberEnums)})-${this.int(1, 3)}`;
    return `${this.int(0, 50)}`;
  }

  private expr(depth: number): string {
    if (depth >= 3 || this.chance(35)) return this.leafExpr();
    const roll = this.int(0, 7);
    const a = this.expr(depth + 1);
    switch (roll) {
      case 0: return `(${a} ? ${this.expr(depth + 1)} : ${this.expr(depth + 1)})`;
      case 1: return `(${a} * ${this.int(0, 15)})`;
      case 2: return `(${a} / ${this.int(1, 9)})`;
      case 3: return `(${a} >> ${this.int(0, 7)})`;
      case 4: return `(${this.pick(['-', '~', '!'])}${a})`;
      case 5: return `((__u8)(${a}))`;
      default: return `(${a} ${this.pick(['+', '-', '|', '&', '^', '<', '==', '&&', '||'])} ${this.expr(depth + 1)})`;
    }
  }

  private constant(i: number): void {
    this.lines.push(`#define KVM_${this.upper()}_C${i} ${this.expr(0)}`);
  }

  private ioctl(i: number): void {
    const nr = `0x${(0x40 + i).toString(16)}`;
    const name = `KVM_${this.upper()}_IOC${i}`;
    if (this.allRecords.length === 0 || this.chance(20)) {
      this.lines.push(`#define ${name} _IO(KVMIO, ${nr})`);
      return;
    }
    const helper = this.pick(['_IOR', '_IOW', '_IOWR']);
    const arg = this.chance(80) ? this.pick(this.allRecords) : this.pick(['__u64', '__u32', `${this.pick(this.allRecords)}[2]`]);
    this.lines.push(`#define ${name} ${helper}(KVMIO, ${nr}, ${arg})`);
  }
}

/** One header text; `prefix` (a C identifier) names every type and macro in it. */
export function uapiHeader(prefix: string): fc.Arbitrary<string> {
  return fc.gen().map((g) => new HeaderBuilder(g, prefix).build());
}

/** The generic headers every generated header includes: our own LP64 types and the usual ioctl encoding. */
export const SHARED_HEADERS: Record<string, string> = {
  'linux/types.h': [
    '#ifndef PROP_TYPES_H', '#define PROP_TYPES_H',
    'typedef unsigned char __u8; typedef signed char __s8; typedef unsigned short __u16; typedef signed short __s16;',
    'typedef unsigned int __u32; typedef signed int __s32; typedef unsigned long long __u64; typedef signed long long __s64;',
    '#endif', '',
  ].join('\n'),
  'linux/ioctl.h': [
    '#ifndef PROP_IOCTL_H', '#define PROP_IOCTL_H',
    '#define _IOC_NRBITS 8', '#define _IOC_TYPEBITS 8', '#define _IOC_SIZEBITS 14', '#define _IOC_DIRBITS 2',
    '#define _IOC_NRSHIFT 0', '#define _IOC_TYPESHIFT (_IOC_NRSHIFT + _IOC_NRBITS)',
    '#define _IOC_SIZESHIFT (_IOC_TYPESHIFT + _IOC_TYPEBITS)', '#define _IOC_DIRSHIFT (_IOC_SIZESHIFT + _IOC_SIZEBITS)',
    '#define _IOC_NONE 0U', '#define _IOC_WRITE 1U', '#define _IOC_READ 2U',
    '#define _IOC(dir, type, nr, size) (((dir) << _IOC_DIRSHIFT) | ((type) << _IOC_TYPESHIFT) | ((nr) << _IOC_NRSHIFT) | ((size) << _IOC_SIZESHIFT))',
    '#define _IO(type, nr) _IOC(_IOC_NONE, (type), (nr), 0)',
    '#define _IOR(type, nr, t) _IOC(_IOC_READ, (type), (nr), sizeof(t))',
    '#define _IOW(type, nr, t) _IOC(_IOC_WRITE, (type), (nr), sizeof(t))',
    '#define _IOWR(type, nr, t) _IOC(_IOC_READ | _IOC_WRITE, (type), (nr), sizeof(t))',
    '#define _IOC_DIR(nr) (((nr) >> _IOC_DIRSHIFT) & ((1 << _IOC_DIRBITS) - 1))',
    '#define _IOC_SIZE(nr) (((nr) >> _IOC_SIZESHIFT) & ((1 << _IOC_SIZEBITS) - 1))',
    '#endif', '',
  ].join('\n'),
};
