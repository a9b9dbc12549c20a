/**
 * CI renderings of diff results, shared by `abi diff` and `abi check`: GitHub Actions workflow
 * commands (one annotation line per change, at the header line of the item) and JUnit XML (one
 * testsuite per spec pair, one testcase per breaking change).
 */
import type { DiffReport } from './report.js';
import type { Change } from './types.js';

export type OutputFormat = 'text' | 'json' | 'junit' | 'github';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['text', 'json', 'junit', 'github'];

export type Level = 'error' | 'warning' | 'notice';

/** Workflow-command escaping: the message loses only %, CR and LF; properties also ':' and ','. */
const escapeData = (s: string): string => s.replaceAll('%', '%25').replaceAll('\r', '%0D').replaceAll('\n', '%0A');
const escapeProperty = (s: string): string => escapeData(s).replaceAll(':', '%3A').replaceAll(',', '%2C');

/** `::error file=…,line=…,title=…::message`; file and line only when the change has them. */
export function annotation(level: Level, title: string, message: string, at: { file?: string; line?: number } = {}): string {
  const props = [
    ...(at.file !== undefined ? [`file=${escapeProperty(at.file)}`] : []),
    ...(at.file !== undefined && at.line !== undefined ? [`line=${at.line}`] : []),
    `title=${escapeProperty(title)}`,
  ];
  return `::${level} ${props.join(',')}::${escapeData(message)}`;
}

const pairName = (r: DiffReport): string => `${r.old.id}/${r.old.arch} -> ${r.new.id}/${r.new.arch}`;
const verdict = (c: Change): string => (c.breaks.length === 0 ? 'compatible' : c.breaks.join('+'));

/** BINARY breaks are errors, SOURCE-only breaks warnings, compatible changes notices. */
export function levelOf(c: Change): Level {
  return c.breaks.includes('BINARY') ? 'error' : c.breaks.includes('SOURCE') ? 'warning' : 'notice';
}

export function changeAnnotation(c: Change, r: DiffReport, level: Level = levelOf(c)): string {
  return annotation(level, `${verdict(c)} ${c.rule}: ${c.item}`, `${c.item}: ${c.detail} (${pairName(r)})`, c);
}

/** One line per unsuppressed change of every report. */
export function formatGithub(reports: readonly DiffReport[]): string {
  return reports.flatMap((r) => r.changes.map((c) => `${changeAnnotation(c, r)}\n`)).join('');
}

const xml = (s: string): string =>
  s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&apos;')
    // XML 1.0 admits no other control characters, not even escaped.
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');

export interface JunitOptions {
  /** The categories that fail a testcase; others are reported as skipped (abi check: SOURCE is not fatal). */
  failOn: ReadonlyArray<'BINARY' | 'SOURCE'>;
  name: string;
}

/**
 * One testsuite per report, one testcase per breaking change (classname = rule, name = item). A
 * pair without a breaking change gets one passing testcase, so that no suite is empty.
 */
export function formatJunit(reports: readonly DiffReport[], opts: JunitOptions): string {
  const suites: string[] = [];
  let total = 0;
  let failed = 0;
  for (const r of reports) {
    const breaking = r.changes.filter((c) => c.breaks.length > 0);
    const cases: string[] = [];
    let suiteFailed = 0;
    let skipped = 0;
    for (const c of breaking) {
      const where = c.file !== undefined ? ` at ${c.file}${c.line !== undefined ? `:${c.line}` : ''}` : '';
      const head = `    <testcase classname="${xml(c.rule)}" name="${xml(c.item)}"${c.file !== undefined ? ` file="${xml(c.file)}"` : ''}${c.line !== undefined ? ` line="${c.line}"` : ''}>`;
      if (c.breaks.some((b) => opts.failOn.includes(b))) {
        suiteFailed++;
        cases.push(head, `      <failure type="${xml(verdict(c))}" message="${xml(`${c.rule}: ${c.detail}`)}">${xml(`${c.item}: ${c.detail}${where}`)}</failure>`, '    </testcase>');
      } else {
        skipped++;
        cases.push(head, `      <skipped message="${xml(`${verdict(c)} only: not fatal here`)}"/>`, '    </testcase>');
      }
    }
    if (breaking.length === 0) cases.push(`    <testcase classname="abi" name="${xml(`${pairName(r)}: no breaking change`)}"/>`);
    const tests = Math.max(breaking.length, 1);
    total += tests;
    failed += suiteFailed;
    suites.push(
      `  <testsuite name="${xml(pairName(r))}" tests="${tests}" failures="${suiteFailed}" errors="0" skipped="${skipped}">`,
      ...cases,
      '  </testsuite>',
    );
  }
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="${xml(opts.name)}" tests="${total}" failures="${failed}" errors="0">`,
    ...suites,
    '</testsuites>',
    '',
  ].join('\n');
}
