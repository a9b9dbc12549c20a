import type { Spec } from '../spec/types.js';
import { change } from './change.js';
import type { Change } from './types.js';

/** Exact value of a spec constant (numbers and decimal strings alike). */
export function constantValue(v: number | string): bigint | string {
  if (typeof v === 'string') return BigInt(v);
  return Number.isInteger(v) ? BigInt(v) : String(v);
}

const LIMIT_WORDS = new Set(['MAX', 'NUM', 'NR', 'COUNT', 'LIMIT', 'NMAX', 'LAST']);
/** Families whose members are identifiers, even when a word like NR appears in the name (KVM_CAP_NR_VCPUS). */
const IDENTIFIER_FAMILY = /^KVM_(CAP|EXIT)_|_GRP_|_ATTR/;

/** A limit a tool reads as "at most": raising it keeps every old value valid. */
export function isLimit(name: string): boolean {
  return !IDENTIFIER_FAMILY.test(name) && name.split('_').some((w) => LIMIT_WORDS.has(w));
}

/** A mask of valid bits/flags a tool tests values against (KVM_X86_DISABLE_VALID_EXITS, KVM_DIRTY_GFN_F_MASK). */
export function isMask(name: string): boolean {
  const words = name.split('_');
  return words.includes('VALID') || words.at(-1) === 'MASK' || words.at(-1) === 'MASKS';
}

/** Every old bit still set and at least one more: old values stay valid, so old tools keep working. */
function gainedBits(o: bigint | string, n: bigint | string): boolean {
  return typeof o === 'bigint' && typeof n === 'bigint' && o >= 0n && n >= 0n && (o & n) === o && n !== o;
}

export function compareConstants(old: Spec, neu: Spec): Change[] {
  const out: Change[] = [];
  for (const [name, ov] of Object.entries(old.constants)) {
    if (!(name in neu.constants)) {
      out.push(change('constant-removed', 'constant', name, `${name} (= ${ov}) is gone`));
      continue;
    }
    const o = constantValue(ov);
    const n = constantValue(neu.constants[name]);
    if (o === n) continue;
    const grew = typeof o === 'bigint' && typeof n === 'bigint' && n > o;
    const rule = grew && isLimit(name) ? 'limit-grown' : isMask(name) && gainedBits(o, n) ? 'mask-grown' : 'constant-value-changed';
    out.push(change(rule, 'constant', name, `${name} ${ov} -> ${neu.constants[name]}`));
  }
  const families = new Families(old);
  const heuristic = new Map<string, Change>();
  for (const [name, nv] of Object.entries(neu.constants)) {
    if (name in old.constants) continue;
    heuristic.set(name, families.classifyAdded(name, constantValue(nv), nv));
  }
  const reused = numberedFamilyReuse(old, neu);
  for (const [name, c] of heuristic) {
    const r = reused.get(name);
    // One verdict per name: the enumeration heuristic's own reuse verdict stands when it has one.
    out.push(r !== undefined && c.rule !== 'enum-value-reused' ? r : c);
    reused.delete(name);
  }
  out.push(...reused.values());
  return out;
}

/**
 * The numbered families of linux/kvm.h: every member names one number (a capability, an exit reason,
 * a routing entry type, a device type…), so no two members may share one. Families are given
 * explicitly: the last word of a name cannot tell KVM_EXIT_MEMORY_FAULT (an exit reason) from
 * KVM_EXIT_IO_IN (a value of kvm_run.io.direction). Where `subValues` is set, a name that extends
 * another member's name (KVM_EXIT_IO_IN after KVM_EXIT_IO, KVM_SYSTEM_EVENT_RESET_FLAG_PSCI_RESET2)
 * is that member's sub-value, not a member; every KVM_CAP_* is a capability (KVM_CAP_X86_* next to
 * KVM_CAP_X86_ROBUST_SINGLESTEP alike). Limits (KVM_DEV_TYPE_MAX) and aliases (`#define A B`) are
 * no members. Each C enum of the spec is a numbered family as well.
 */
export const NUMBERED_FAMILIES: ReadonlyArray<{ prefix: string; subValues: boolean }> = [
  { prefix: 'KVM_CAP_', subValues: false },
  { prefix: 'KVM_EXIT_', subValues: true },
  { prefix: 'KVM_IRQ_ROUTING_', subValues: true },
  { prefix: 'KVM_DEV_TYPE_', subValues: true },
  { prefix: 'KVM_SYSTEM_EVENT_', subValues: true },
  { prefix: 'KVM_MP_STATE_', subValues: true },
  { prefix: 'KVM_INTERNAL_ERROR_', subValues: true },
];

/** Family id -> member names of `spec`. */
function numberedFamilies(spec: Spec): Map<string, string[]> {
  const aliases = spec.aliases ?? {};
  const eligible = (name: string) => name in spec.constants && !isLimit(name) && !(name in aliases);
  const out = new Map<string, string[]>();
  for (const { prefix, subValues } of NUMBERED_FAMILIES) {
    const names = Object.keys(spec.constants).filter((n) => n.startsWith(prefix) && eligible(n));
    out.set(`${prefix}*`, subValues ? names.filter((n) => !names.some((m) => n.startsWith(`${m}_`))) : names);
  }
  for (const [tag, members] of Object.entries(spec.enums ?? {})) out.set(`enum ${tag}`, members.filter(eligible));
  return out;
}

/**
 * Members of a numbered family that now share a value with another member, or take a value a
 * removed member had (a retired capability's number given to a new feature): an old binary asking
 * for that number gets something else. Pairs the old spec already had are history.
 */
function numberedFamilyReuse(old: Spec, neu: Spec): Map<string, Change> {
  const out = new Map<string, Change>();
  const before = numberedFamilies(old);
  for (const [family, members] of numberedFamilies(neu)) {
    const oldMembers = before.get(family) ?? [];
    const oldByValue = new Map<string, string[]>();
    for (const m of oldMembers) {
      const key = String(constantValue(old.constants[m]));
      oldByValue.set(key, [...(oldByValue.get(key) ?? []), m]);
    }
    const byValue = new Map<string, string[]>();
    for (const m of members) {
      const key = String(constantValue(neu.constants[m]));
      byValue.set(key, [...(byValue.get(key) ?? []), m]);
    }
    for (const m of members) {
      const key = String(constantValue(neu.constants[m]));
      const moved = old.constants[m] === undefined || String(constantValue(old.constants[m])) !== key;
      if (!moved) continue;
      const holders = new Set([...(byValue.get(key) ?? []), ...(oldByValue.get(key) ?? [])]);
      holders.delete(m);
      if (holders.size === 0) continue;
      const names = [...holders].sort();
      const gone = names.filter((h) => !(h in neu.constants));
      const what = gone.length === names.length ? `which ${names.join(', ')} had` : `shared with ${names.join(', ')}`;
      out.set(m, change('family-value-reused', 'constant', m, `${m} = ${neu.constants[m]}, ${what} (numbered family ${family})`));
    }
  }
  return out;
}

/**
 * Constants whose names differ only in the last word (KVM_EXIT_*, KVM_DEV_TYPE_*) behave like a C
 * enumeration: a new member must take a value no old member has, or a tool switching on the value
 * misreads it. Only the immediate family counts, and limits (KVM_DEV_TYPE_MAX) are no members:
 * sibling families that merely share a longer prefix (KVM_SEV_SNP_PAGE_TYPE_* under KVM_SEV_*)
 * reuse small values legitimately.
 */
class Families {
  private readonly members = new Map<string, Array<bigint | string>>();

  constructor(old: Spec) {
    for (const [name, v] of Object.entries(old.constants)) {
      if (isLimit(name)) continue;
      const family = familyOf(name);
      if (family === undefined) continue;
      const list = this.members.get(family);
      if (list) list.push(constantValue(v));
      else this.members.set(family, [constantValue(v)]);
    }
  }

  classifyAdded(name: string, value: bigint | string, raw: number | string): Change {
    const family = familyOf(name);
    const values = family === undefined ? undefined : this.members.get(family);
    if (family === undefined || values === undefined || values.length < 2 || isLimit(name)) {
      return change('constant-added', 'constant', name, `${name} = ${raw}`);
    }
    const distinct = new Set(values).size === values.length;
    if (distinct && values.includes(value)) {
      return change('enum-value-reused', 'constant', name, `${name} = ${raw} duplicates an existing ${family}_* value`);
    }
    return change('enum-value-added', 'constant', name, `${name} = ${raw} (family ${family}_*)`);
  }
}

/** "KVM_EXIT_ARM_SEA" -> "KVM_EXIT_ARM"; names of two words have no family. */
function familyOf(name: string): string | undefined {
  const cut = name.lastIndexOf('_');
  return cut > 0 && name.indexOf('_') < cut ? name.slice(0, cut) : undefined;
}
