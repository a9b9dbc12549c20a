import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  buildReport,
  DEFAULT_SPEC_ROOT,
  defaultRoot,
  type DiffReport,
  historyByArch,
  loadSuppressions,
  readSpecDir,
  type SpecEntry,
  SUPPRESSIONS_PATH,
  SuppressionSet,
} from '@kvm-ts/abi/diff';
import type { Arch } from '@kvm-ts/abi';
import type { StructPair } from './struct-compat.js';

export const REPO_ROOT = defaultRoot();

/** The pinned history as committed: per arch, every series present, oldest first ("+local" last). */
export function pinnedHistory(specDir = DEFAULT_SPEC_ROOT): Map<Arch, SpecEntry[]> {
  return historyByArch(readSpecDir(specDir));
}

export interface VersionPair {
  arch: Arch;
  old: SpecEntry;
  new: SpecEntry;
}

/** Every pair of consecutive versions on every arch both carry. */
export function consecutivePairs(history = pinnedHistory()): VersionPair[] {
  const out: VersionPair[] = [];
  for (const [arch, list] of history) for (let i = 1; i < list.length; i++) out.push({ arch, old: list[i - 1], new: list[i] });
  return out;
}

export const pairName = (p: VersionPair): string => `${p.old.id} -> ${p.new.id} ${p.arch}`;

export function repoSuppressions(): SuppressionSet {
  const path = join(REPO_ROOT, SUPPRESSIONS_PATH);
  return new SuppressionSet(existsSync(path) ? loadSuppressions(path) : undefined);
}

export function pairReport(p: VersionPair, suppressions = repoSuppressions()): DiffReport {
  return buildReport(p.old, p.new, suppressions);
}

/** The layout facts of a struct: where its members are declared (file/line) moves with every header edit and is no layout change. */
const layoutKey = (s: { size: number; align: number; kind: string; layout: Array<{ file?: string; line?: number }> }) =>
  JSON.stringify([s.size, s.align, s.kind, s.layout.map(({ file: _file, line: _line, ...facts }) => facts)]);

/** Structs present in both versions whose layout changed. */
export function changedStructs(p: VersionPair): StructPair[] {
  const out: StructPair[] = [];
  for (const [name, o] of Object.entries(p.old.spec.structs)) {
    const n = p.new.spec.structs[name];
    if (n && layoutKey(o) !== layoutKey(n)) out.push({ name, old: o, new: n, oldSpec: p.old.spec, newSpec: p.new.spec });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}

/**
 * fast-check parameters for every property here: the violation text goes into the report next to the
 * seed, path and shrunk counterexample, and FC_SEED / FC_PATH replay a reported failure
 * (`FC_SEED=<seed> FC_PATH=<path> npx ava tests/<file>.test.ts`, docs/compat-tests.md).
 */
export function propertyParameters(numRuns: number): { numRuns: number; includeErrorInReport: boolean; seed?: number; path?: string } {
  const seed = process.env.FC_SEED;
  const path = process.env.FC_PATH;
  return { numRuns, includeErrorInReport: true, ...(seed !== undefined && seed !== '' ? { seed: Number(seed) } : {}), ...(path ? { path } : {}) };
}
