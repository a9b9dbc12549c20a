import type { Spec } from '../spec/types.js';
import { diffSpecs, exitBits } from './diff.js';
import { withLocations } from './locate.js';
import { describeSuppression, type Suppressed, type Suppression, SuppressionSet } from './suppressions.js';
import type { Change, SpecLabel } from './types.js';

/** One diff with suppressions applied: the unit both `abi diff` and `abi check` print. */
export interface DiffReport {
  old: SpecLabel;
  new: SpecLabel;
  /** Unsuppressed changes, compatible ones included. */
  changes: Change[];
  suppressed: Suppressed[];
  /** The bitmask for `changes` alone: suppressed changes never count. */
  exit: number;
  counts: { compatible: number; source: number; binary: number; suppressed: number };
}

export function buildReport(old: { spec: Spec; label: SpecLabel }, neu: { spec: Spec; label: SpecLabel }, suppressions: SuppressionSet): DiffReport {
  const all = withLocations(diffSpecs(old.spec, neu.spec), old.spec, neu.spec);
  const { kept, suppressed } = suppressions.apply(all, old.label, neu.label);
  return {
    old: old.label,
    new: neu.label,
    changes: kept,
    suppressed,
    exit: exitBits(kept),
    counts: {
      compatible: kept.filter((c) => c.breaks.length === 0).length,
      source: kept.filter((c) => c.breaks.includes('SOURCE')).length,
      binary: kept.filter((c) => c.breaks.includes('BINARY')).length,
      suppressed: suppressed.length,
    },
  };
}

// A source with no version to name it by (a tree without a Makefile) is named by what the user typed.
const label = (l: SpecLabel) => (l.kernel === 'unknown' ? `${l.source} (${l.arch})` : `${l.id}/${l.arch} (${l.kernel})`);
const verdict = (c: Change) => (c.breaks.length === 0 ? 'compatible' : c.breaks.join('+'));

/**
 * The summary counts each change once: SOURCE-breaking are the changes that break source only,
 * BINARY-breaking every change that breaks binaries (some break source too). With `onlyBreaking`
 * it says how many of the changes are shown.
 */
export function formatReportText(r: DiffReport, opts: { onlyBreaking?: boolean } = {}): string {
  const binary = r.changes.filter((c) => c.breaks.includes('BINARY')).length;
  const sourceOnly = r.changes.filter((c) => c.breaks.includes('SOURCE') && !c.breaks.includes('BINARY')).length;
  const compatible = r.changes.length - binary - sourceOnly;
  const shown = opts.onlyBreaking ? r.changes.filter((c) => c.breaks.length > 0) : r.changes;
  const total = opts.onlyBreaking ? `${shown.length} of ${r.changes.length} change(s) shown (breaking only)` : `${r.changes.length} change(s)`;
  const lines = [
    `${label(r.old)} -> ${label(r.new)}: ${total}: ${compatible} compatible, ` +
      `${sourceOnly} SOURCE-breaking, ${binary} BINARY-breaking; ${r.counts.suppressed} suppressed`,
  ];
  const w = Math.max(0, ...shown.map((c) => c.rule.length));
  for (const c of shown) lines.push(`  ${verdict(c).padEnd(13)} ${c.rule.padEnd(w)}  ${c.item}: ${c.detail}`);
  for (const s of r.suppressed) lines.push(`  suppressed    ${s.change.rule.padEnd(w)}  ${s.change.item}: ${s.by.reason}`);
  return `${lines.join('\n')}\n`;
}

export function formatStaleText(stale: Suppression[], path: string): string {
  return stale.map((s) => `stale suppression in ${path}: ${describeSuppression(s)} matches nothing; remove it\n`).join('');
}

export function reportJson(r: DiffReport): unknown {
  return {
    old: r.old,
    new: r.new,
    exit: r.exit,
    counts: r.counts,
    changes: r.changes,
    suppressed: r.suppressed.map((s) => ({ ...s.change, reason: s.by.reason })),
  };
}
