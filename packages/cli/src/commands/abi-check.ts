import { execFileSync } from 'node:child_process';
import {
  AbiInputError,
  defaultRoot,
  describeSuppression,
  EXIT,
  readSpecDir,
  RECORDED_BASELINE_PATH,
  runCheck,
  type CheckResult,
  type DiffReport,
  writeRecordedBaseline,
} from '@kvm-ts/abi/diff';
import { join, resolve } from 'node:path';
import { parse } from '../args.js';
import { CliError, UsageError } from '../errors.js';

const USAGE = 'kvm-cli abi check [--root DIR] [--baseline DIR|FILE] [--suppressions FILE] [--json] [--record-baseline [FILE]]';

/**
 * The CI gate. Regenerates nothing: the specs in the working tree against the baseline (git merge-base
 * with main, else a recorded baseline), then every arch's pinned series in order. Exit 8 on an
 * unsuppressed BINARY break, 1 on a stale suppression or a missing spec, 0 otherwise.
 */
export async function check(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      root: { type: 'string' },
      baseline: { type: 'string' },
      suppressions: { type: 'string' },
      json: { type: 'boolean' },
      'record-baseline': { type: 'boolean' },
    },
    USAGE,
  );
  if (positionals.length > 1 || (positionals.length === 1 && !values['record-baseline'])) {
    throw new UsageError(`unexpected argument '${positionals[0]}' (usage: ${USAGE})`);
  }
  const root = resolve(typeof values.root === 'string' ? values.root : defaultRoot());
  try {
    if (values['record-baseline']) return record(root, positionals[0] ?? join(root, RECORDED_BASELINE_PATH));
    const result = runCheck({
      root,
      baseline: values.baseline as string | undefined,
      suppressions: values.suppressions as string | undefined,
    });
    process.stdout.write(values.json ? `${JSON.stringify(toJson(result), null, 2)}\n` : toText(result));
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
