import { constantValue, type DiffReport, ioctlNumberGroups, type SpecEntry, type Suppression } from '@kvm-ts/abi/diff';
import type { Spec } from '@kvm-ts/abi';
import type { VersionPair } from './history.js';

/** The exit union's reserved tail: `char padding[256]` inside kvm_run's anonymous exit union. */
export const EXIT_UNION_BYTES = 256;

const hasReviewed = (report: DiffReport, kind: string, item: string) =>
  report.suppressed.some((s) => s.change.kind === kind && s.change.item === item) &&
  !report.changes.some((c) => c.kind === kind && c.item === item && c.breaks.length > 0);

/**
 * (c) Every old ioctl number and constant value survives unchanged, unless a reviewed suppression
 * covers the item. A grown limit (limit-grown) is a compatible change, not a changed value.
 */
export function changedNumbers(p: VersionPair, report: DiffReport): string[] {
  const out: string[] = [];
  for (const [name, o] of Object.entries(p.old.spec.ioctls)) {
    const n = p.new.spec.ioctls[name];
    if (n?.number === o.number) continue;
    if (!hasReviewed(report, 'ioctl', name)) out.push(`ioctl ${name}: 0x${o.number.toString(16)} -> ${n ? `0x${n.number.toString(16)}` : 'gone'}`);
  }
  for (const [name, o] of Object.entries(p.old.spec.constants)) {
    const n = p.new.spec.constants[name];
    if (n !== undefined && constantValue(n) === constantValue(o)) continue;
    const grownLimit = report.changes.some((c) => c.item === name && c.rule === 'limit-grown');
    if (!grownLimit && !hasReviewed(report, 'constant', name)) out.push(`constant ${name}: ${o} -> ${n ?? 'gone'}`);
  }
  return out;
}

/** Where kvm_run's exit union starts, from its `padding[256]` leaf. */
export function exitUnionOffset(spec: Spec): number | undefined {
  return spec.structs.kvm_run?.layout.find((l) => l.path === 'padding' && l.count === EXIT_UNION_BYTES && l.size === 1)?.offset;
}

/** (d) kvm_run keeps its size and its 256-byte exit union, and every exit struct fits inside it. */
export function kvmRunViolations(p: VersionPair): string[] {
  const out: string[] = [];
  const o = p.old.spec.structs.kvm_run;
  const n = p.new.spec.structs.kvm_run;
  if (!o) return out;
  if (!n) return ['kvm_run is gone'];
  if (o.size !== n.size) out.push(`kvm_run size ${o.size} -> ${n.size}`);
  const uo = exitUnionOffset(p.old.spec);
  const un = exitUnionOffset(p.new.spec);
  if (un === undefined) return [...out, 'kvm_run has no 256-byte exit union padding'];
  if (uo !== un) out.push(`kvm_run exit union moved from ${uo} to ${un}`);
  for (const l of n.layout) {
    const end = l.offset + (l.count !== undefined ? l.size * l.count : l.size);
    if (l.offset >= un && l.offset < un + EXIT_UNION_BYTES && end > un + EXIT_UNION_BYTES) {
      out.push(`kvm_run.${l.path} ends at ${end}, past the exit union's ${un + EXIT_UNION_BYTES}`);
    }
  }
  return out;
}

/**
 * (e) Within one fd class no two ioctls share a request number unless the oldest version already had
 * that sharing, or a reviewed `ioctl-number-collision` suppression names the ioctl.
 */
export function sharedNumberViolations(history: SpecEntry[], suppressions: readonly Suppression[]): string[] {
  if (history.length === 0) return [];
  const key = (fd: string, n: number) => `${fd}:${n}`;
  const oldest = new Map(ioctlNumberGroups(history[0].spec).map((g) => [key(g.fd, g.number), new Set(g.names)]));
  const reviewed = new Set(suppressions.filter((s) => s.rule === 'ioctl-number-collision').map((s) => s.item));
  const out: string[] = [];
  for (const e of history) {
    for (const g of ioctlNumberGroups(e.spec)) {
      const before = oldest.get(key(g.fd, g.number)) ?? new Set<string>();
      const fresh = g.names.filter((name) => !before.has(name) && !reviewed.has(name));
      if (fresh.length > 0) out.push(`${e.id}/${e.arch}: ${g.names.join(', ')} share 0x${g.number.toString(16)} on the ${g.fd} fd`);
    }
  }
  return out;
}
