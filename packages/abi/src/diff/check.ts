import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT } from './diff.js';
import { repoRoot } from '../headers/paths.js';
import { AbiInputError } from './load.js';
import { buildReport, type DiffReport } from './report.js';
import { rule } from './rules.js';
import { gitBaseline, explicitBaseline, readRecordedBaseline, type Baseline } from './baseline.js';
import { historyByArch, readSpecDir, type SpecSet } from './specs.js';
import { loadSuppressions, type Suppression, SuppressionSet } from './suppressions.js';
import type { Change } from './types.js';

export const SUPPRESSIONS_PATH = 'kernel-headers/suppressions.json';
export const RECORDED_BASELINE_PATH = 'kernel-headers/abi-baseline.json';

export interface CheckOptions {
  /** Repository root: holds kernel-headers/ and, by default, packages/abi/spec. */
  root: string;
  specDir?: string;
  /** Explicit baseline (directory or recorded file); otherwise git merge-base, then the recorded file. */
  baseline?: string;
  suppressions?: string;
}

export interface Failure {
  report: DiffReport;
  change: Change;
  hint: string;
}

export interface CheckResult {
  baseline: { source: string; reports: DiffReport[]; missing: string[] } | undefined;
  history: DiffReport[];
  failures: Failure[];
  /** Unsuppressed SOURCE-only breaks: reported, never fatal (the gate is about compiled tools). */
  warnings: Failure[];
  stale: Suppression[];
  exit: number;
}

/** The monorepo root (the one repo-root finder, shared with the header sync). */
export function defaultRoot(): string {
  return repoRoot();
}

function findBaseline(opts: CheckOptions, specDir: string): Baseline | undefined {
  if (opts.baseline) return explicitBaseline(opts.baseline);
  const fromGit = gitBaseline(opts.root, specDir);
  if (fromGit) return fromGit;
  const recorded = join(opts.root, RECORDED_BASELINE_PATH);
  return existsSync(recorded) ? readRecordedBaseline(recorded) : undefined;
}

/** The CI gate: baseline -> working tree for every spec, then each arch's pinned history in order. */
export function runCheck(opts: CheckOptions): CheckResult {
  const specDir = opts.specDir ?? join(opts.root, 'packages/abi/spec');
  const suppressionPath = opts.suppressions ?? join(opts.root, SUPPRESSIONS_PATH);
  const suppressions = new SuppressionSet(existsSync(suppressionPath) || opts.suppressions ? loadSuppressions(suppressionPath) : undefined);
  const working = readSpecDir(specDir);
  // A wrong --root (or a deleted spec tree) would otherwise compare nothing and pass.
  if (working.size === 0) throw new AbiInputError(`${specDir}: no <id>/<arch>.json spec to check`);
  const baseline = findBaseline(opts, specDir);

  const baselineReports: DiffReport[] = [];
  const missing: string[] = [];
  if (baseline) {
    for (const [key, before] of baseline.specs) {
      const now = working.get(key);
      if (!now) missing.push(key);
      else baselineReports.push(buildReport(before, now, suppressions));
    }
  }
  const history = walkHistory(working, suppressions);

  const failures: Failure[] = [];
  const warnings: Failure[] = [];
  for (const report of [...baselineReports, ...history]) {
    for (const change of report.changes) {
      const entry = { report, change, hint: rule(change.rule).hint };
      if (change.breaks.includes('BINARY')) failures.push(entry);
      else if (change.breaks.includes('SOURCE')) warnings.push(entry);
    }
  }
  const stale = suppressions.stale();
  const exit = failures.length > 0 ? EXIT.BINARY : missing.length > 0 || stale.length > 0 ? EXIT.ERROR : EXIT.OK;
  return { baseline: baseline && { source: baseline.source, reports: baselineReports, missing }, history, failures, warnings, stale, exit };
}

function walkHistory(working: SpecSet, suppressions: SuppressionSet): DiffReport[] {
  const out: DiffReport[] = [];
  for (const list of historyByArch(working).values()) {
    for (let i = 1; i < list.length; i++) out.push(buildReport(list[i - 1], list[i], suppressions));
  }
  return out;
}

