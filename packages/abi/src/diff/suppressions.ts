import { readFileSync } from 'node:fs';
import { AbiInputError } from './load.js';
import { RULES_BY_ID } from './rules.js';
import type { Change, SpecLabel } from './types.js';

/**
 * A reviewed exception. `old`/`new`/`arch` narrow where it applies (series ids such as "6.1");
 * an entry that applies to a diff but matches none of its changes is stale and reported.
 */
export interface Suppression {
  rule: string;
  item: string;
  reason: string;
  old?: string;
  new?: string;
  arch?: string;
}

export interface SuppressionFile {
  path: string;
  entries: Suppression[];
}

const MIN_REASON = 10;

export function loadSuppressions(path: string): SuppressionFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new AbiInputError(`${path}: cannot read suppression file (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return parseSuppressions(text, path);
}

export function parseSuppressions(text: string, path: string): SuppressionFile {
  const bad = (where: string, what: string): never => {
    throw new AbiInputError(`${path}: malformed suppression file: ${where}: ${what}`);
  };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return bad('top level', `not JSON (${(err as Error).message.split('\n')[0]})`);
  }
  const list = (raw as { suppressions?: unknown })?.suppressions;
  if (!Array.isArray(list)) return bad('top level', 'expected {"suppressions": [...]}');
  const entries = list.map((e: unknown, i: number): Suppression => {
    const at = `suppressions[${i}]`;
    if (typeof e !== 'object' || e === null || Array.isArray(e)) return bad(at, 'not an object');
    const s = e as Record<string, unknown>;
    for (const key of Object.keys(s)) if (!['rule', 'item', 'reason', 'old', 'new', 'arch'].includes(key)) bad(`${at}.${key}`, 'unknown key');
    if (typeof s.rule !== 'string' || !RULES_BY_ID.has(s.rule)) bad(`${at}.rule`, `not a known rule id (${String(s.rule)})`);
    if (typeof s.item !== 'string' || s.item === '') bad(`${at}.item`, 'not a non-empty string');
    if (typeof s.reason !== 'string' || s.reason.trim().length < MIN_REASON) bad(`${at}.reason`, `a reviewed reason of at least ${MIN_REASON} characters is required`);
    for (const key of ['old', 'new', 'arch']) if (s[key] !== undefined && typeof s[key] !== 'string') bad(`${at}.${key}`, 'not a string');
    return s as unknown as Suppression;
  });
  return { path, entries };
}

export const describeSuppression = (s: Suppression): string =>
  `${s.rule} ${s.item}${s.old || s.new ? ` (${s.old ?? '*'} -> ${s.new ?? '*'})` : ''}${s.arch ? ` [${s.arch}]` : ''}`;

/** Whether an entry is meant for a diff between these two specs. */
export function appliesTo(s: Suppression, old: SpecLabel, neu: SpecLabel): boolean {
  return (s.old === undefined || s.old === old.id) && (s.new === undefined || s.new === neu.id) && (s.arch === undefined || s.arch === neu.arch);
}

/** "*" in an item matches any run of characters; reviewed entries should name one item, but families happen. */
function itemMatcher(pattern: string): (item: string) => boolean {
  if (!pattern.includes('*')) return (item) => item === pattern;
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return (item) => re.test(item);
}

export interface Suppressed {
  change: Change;
  by: Suppression;
}

/**
 * Tracks which entries matched across one or many diffs, so stale entries are found over a whole
 * walk of the pinned history rather than per pair.
 */
export class SuppressionSet {
  private readonly matchers: Array<(item: string) => boolean>;
  private readonly used = new Set<number>();
  private readonly inScope = new Set<number>();

  constructor(readonly file: SuppressionFile | undefined) {
    this.matchers = (file?.entries ?? []).map((e) => itemMatcher(e.item));
  }

  apply(changes: Change[], old: SpecLabel, neu: SpecLabel): { kept: Change[]; suppressed: Suppressed[] } {
    const entries = this.file?.entries ?? [];
    const scoped = entries.map((_, i) => i).filter((i) => appliesTo(entries[i], old, neu));
    for (const i of scoped) this.inScope.add(i);
    const kept: Change[] = [];
    const suppressed: Suppressed[] = [];
    for (const c of changes) {
      const hit = scoped.find((i) => entries[i].rule === c.rule && this.matchers[i](c.item));
      if (hit === undefined) {
        kept.push(c);
      } else {
        this.used.add(hit);
        suppressed.push({ change: c, by: entries[hit] });
      }
    }
    return { kept, suppressed };
  }

  /**
   * Entries that applied to at least one diff seen so far yet matched nothing. An entry for a spec
   * corrected in place (old and new the same series, seen only while the baseline still has the old
   * file) is never stale: once merged, the baseline catches up and it simply stops applying.
   */
  stale(): Suppression[] {
    const entries = this.file?.entries ?? [];
    return entries.filter((e, i) => this.inScope.has(i) && !this.used.has(i) && !(e.old !== undefined && e.old === e.new));
  }

  /** Entries never in scope of any diff seen (e.g. for an arch not walked); `abi check` reports these too. */
  unused(): Suppression[] {
    const entries = this.file?.entries ?? [];
    return entries.filter((_, i) => !this.used.has(i));
  }
}
