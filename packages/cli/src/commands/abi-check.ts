import { execFileSync } from 'node:child_process';
import {
  AbiInputError,
  annotation,
  buildReport,
  changeAnnotation,
  defaultRoot,
  describeSuppression,
  EXIT,
  formatJunit,
  historyByArch,
  loadSuppressions,
  readSpecDir,
  RECORDED_BASELINE_PATH,
  rule,
  runCheck,
  SUPPRESSIONS_PATH,
  SuppressionSet,
  type CheckResult,
  type DiffReport,
  writeRecordedBaseline,
} from '@kvm-ts/abi/diff';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from '../args.js';
import { usageLine, type CommandSpec } from '../usage.js';
import { CliError, UsageError } from '../errors.js';
import { archOption, FORMAT_OPTION, formatOption, JSON_FORMAT_OPTION, loadSource, SOURCES_HELP } from './abi-source.js';

export const CHECK: CommandSpec = {
  name: 'abi check',
  summary: 'the CI gate: the working tree\'s specs against the baseline and the pinned history; exit 8 on an unsuppressed BINARY break',
  options: [
    { flag: 'root', kind: 'string', arg: 'DIR', help: 'the checkout to check (default: this one)' },
    { flag: 'baseline', kind: 'string', arg: 'DIR|FILE', help: 'the specs to compare against (default: git merge-base with main, else the recorded baseline)' },
    { flag: 'suppressions', kind: 'string', arg: 'FILE', help: 'the reviewed suppressions (default: the checkout\'s)' },
    FORMAT_OPTION,
    JSON_FORMAT_OPTION,
    { flag: 'record-baseline', kind: 'boolean', help: 'record the working tree\'s specs as the baseline, in FILE if given after it' },
    { flag: 'against', kind: 'string', arg: 'SOURCE', help: 'check SOURCE (a kernel patch) against the newest pinned spec of its arch instead' },
    { flag: 'arch', kind: 'string', arg: 'ARCH', help: 'with --against: the arch to generate SOURCE for (default x86_64)' },
    { flag: 'strict', kind: 'boolean', help: 'with --against: a macro left out for a kernel-only helper fails generation' },
  ],
  notes: [`SOURCE: ${SOURCES_HELP}`],
};
const USAGE = `${usageLine(CHECK)}  (SOURCE: ${SOURCES_HELP})`;

/**
 * The CI gate. Regenerates nothing: the specs in the working tree against the baseline (git merge-base
 * with main, else a recorded baseline), then every arch's pinned series in order. Exit 8 on an
 * unsuppressed BINARY break, 1 on a stale suppression or a missing spec, 0 otherwise.
 */
export async function check(argv: string[]): Promise<number> {
  const args = parse(argv, CHECK);
  if (!args) return 0;
  const { values, positionals } = args;
  const format = formatOption(values, USAGE);
  if (positionals.length > 1 || (positionals.length === 1 && !values['record-baseline'])) {
    throw new UsageError(`unexpected argument '${positionals[0]}' (usage: ${USAGE})`);
  }
  const root = resolve(typeof values.root === 'string' ? values.root : defaultRoot());
  if (typeof values.against === 'string') {
    if (values.baseline || values['record-baseline']) throw new UsageError(`--against replaces the baseline: it cannot go with --baseline or --record-baseline (usage: ${USAGE})`);
    return against(root, values.against, archOption(values.arch, USAGE), values.strict === true, values.suppressions as string | undefined, format);
  }
  try {
    if (values['record-baseline']) return record(root, positionals[0] ?? join(root, RECORDED_BASELINE_PATH));
    const result = runCheck({
      root,
      baseline: values.baseline as string | undefined,
      suppressions: values.suppressions as string | undefined,
    });
    process.stdout.write(render(result, format));
    return result.exit;
  } catch (err) {
    if (err instanceof AbiInputError) throw new CliError(err.message, EXIT.ERROR);
    throw err;
  }
}

function record(root: string, path: string): number {
  const dir = join(root, 'packages/abi/spec');
  const specs = readSpecDir(dir);
  if (specs.size === 0) throw new CliError(`abi check: no <id>/<arch>.json spec under ${dir}: nothing to record`, EXIT.ERROR);
  let from = 'working tree';
  try {
    from = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    // Outside git the working tree is all there is to record.
  }
  writeRecordedBaseline(path, specs, from);
  process.stdout.write(`abi check: recorded ${specs.size} spec(s) as the baseline in ${path}\n`);
  return EXIT.OK;
}

function render(r: CheckResult, format: 'text' | 'json' | 'junit' | 'github'): string {
  switch (format) {
    case 'json':
      return `${JSON.stringify(toJson(r), null, 2)}\n`;
    case 'github':
      return toGithub(r);
    case 'junit':
      // SOURCE-only breaks never fail the gate, so they are skipped testcases, not failures.
      return formatJunit([...(r.baseline?.reports ?? []), ...r.history], { name: 'kvm-cli abi check', failOn: ['BINARY'] });
    case 'text':
      return toText(r);
  }
}

/**
 * `--against SOURCE`: the gate for a kernel patch. The newest pinned spec of SOURCE's arch against
 * SOURCE (a Linux tree, a git ref, headers, a spec file), with the reviewed suppressions; exit 8 on
 * an unsuppressed BINARY break. Stale suppressions are not reported: they belong to the pinned history.
 */
async function against(root: string, source: string, arch: ReturnType<typeof archOption>, strict: boolean, suppressionPath: string | undefined,
  format: 'text' | 'json' | 'junit' | 'github'): Promise<number> {
  const neu = await loadSource(source, { arch, strict });
  const pinned = historyByArch(readSpecDir(join(root, 'packages/abi/spec'))).get(neu.spec.arch)?.filter((e) => !e.id.includes('+')).at(-1);
  if (!pinned) throw new CliError(`abi check: no pinned ${neu.spec.arch} spec under ${join(root, 'packages/abi/spec')} to check ${source} against`, EXIT.ERROR);
  const path = suppressionPath ?? join(root, SUPPRESSIONS_PATH);
  let suppressions: SuppressionSet;
  try {
    suppressions = new SuppressionSet(existsSync(path) || suppressionPath ? loadSuppressions(path) : undefined);
  } catch (err) {
    throw new CliError(err instanceof Error ? err.message : String(err), EXIT.ERROR);
  }
  const report = buildReport(pinned, neu, suppressions);
  const failures = report.changes.filter((c) => c.breaks.includes('BINARY')).map((change) => ({ report, change, hint: rule(change.rule).hint }));
  const warnings = report.changes.filter((c) => !c.breaks.includes('BINARY') && c.breaks.includes('SOURCE')).map((change) => ({ report, change, hint: '' }));
  const result: CheckResult = {
    baseline: { source: `${pinned.label.source} (newest pinned ${neu.spec.arch} spec)`, reports: [report], missing: [] },
    history: [],
    failures,
    warnings,
    stale: [],
    exit: failures.length > 0 ? EXIT.BINARY : EXIT.OK,
  };
  process.stdout.write(render(result, format));
  return result.exit;
}

/** Annotations: BINARY failures are errors, SOURCE-only warnings warnings, gate problems errors without a file. */
function toGithub(r: CheckResult): string {
  const lines: string[] = [];
  for (const key of r.baseline?.missing ?? []) lines.push(annotation('error', 'missing spec', `spec ${key} is in the baseline but not in the working tree: pinned specs are never deleted`));
  for (const w of r.warnings) lines.push(changeAnnotation(w.change, w.report, 'warning'));
  for (const f of r.failures) lines.push(changeAnnotation({ ...f.change, detail: `${f.change.detail}; fix: ${f.hint}` }, f.report, 'error'));
  for (const s of r.stale) lines.push(annotation('error', 'stale suppression', `${describeSuppression(s)} matches no change any more; remove it`));
  return lines.map((l) => `${l}\n`).join('');
}

const pair = (r: DiffReport) => `${r.old.id}/${r.old.arch} -> ${r.new.id}/${r.new.arch}`;

function toText(r: CheckResult): string {
  const lines: string[] = [];
  if (r.baseline) {
    const changed = r.baseline.reports.filter((x) => x.changes.length + x.suppressed.length > 0).length;
    lines.push(`abi check: baseline ${r.baseline.source}: ${r.baseline.reports.length} spec(s) compared, ${changed} changed`);
    for (const key of r.baseline.missing) lines.push(`FAIL spec ${key} is in the baseline but not in the working tree: pinned specs are never deleted`);
  } else {
    lines.push('abi check: no baseline (not a git checkout with main, no recorded baseline): checking the pinned history only');
  }
  for (const h of r.history) {
    const c = h.counts;
    lines.push(`abi check: ${pair(h)}: ${c.compatible} compatible, ${c.source} source-only, ${c.binary} binary-breaking, ${c.suppressed} suppressed`);
  }
  for (const w of r.warnings) lines.push(`warning SOURCE ${w.change.rule} ${w.change.item} (${pair(w.report)}): ${w.change.detail}`);
  for (const f of r.failures) {
    lines.push(`FAIL BINARY ${f.change.rule} ${f.change.item} (${pair(f.report)}): ${f.change.detail}`);
    lines.push(`  fix: ${f.hint}`);
  }
  for (const s of r.stale) lines.push(`FAIL stale suppression ${describeSuppression(s)}: it matches no change any more; remove it`);
  lines.push(r.exit === EXIT.OK ? 'abi check: ok' : `abi check: failed (${r.failures.length} binary break(s), ${r.stale.length} stale suppression(s))`);
  return `${lines.join('\n')}\n`;
}

function toJson(r: CheckResult): unknown {
  const flat = (f: CheckResult['failures'][number]) => ({ ...f.change, old: f.report.old, new: f.report.new, hint: f.hint });
  return {
    exit: r.exit,
    baseline: r.baseline && { source: r.baseline.source, compared: r.baseline.reports.length, missing: r.baseline.missing },
    history: r.history.map((h) => ({ old: h.old, new: h.new, counts: h.counts })),
    failures: r.failures.map(flat),
    warnings: r.warnings.map(flat),
    stale: r.stale,
  };
}
