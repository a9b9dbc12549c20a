import {
  AbiInputError,
  buildReport,
  EXIT,
  formatReportText,
  formatStaleText,
  loadSpecRef,
  loadSuppressions,
  reportJson,
  SuppressionSet,
} from '@kvm-ts/abi/diff';
import { parse } from '../args.js';
import { CliError, UsageError } from '../errors.js';

const USAGE = 'kvm-cli abi diff OLD NEW [--json] [--only-breaking] [--suppressions FILE]  (OLD/NEW: a spec file or a pinned id like 6.1/x86_64)';

/**
 * Exit status is abidiff's bitmask: 0 identical/compatible, 4 SOURCE, 8 BINARY, 12 both; 1 error, 2 usage.
 * Suppressed changes never set a bit; a stale suppression is reported but does not change the verdict.
 */
export async function diff(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { json: { type: 'boolean' }, 'only-breaking': { type: 'boolean' }, suppressions: { type: 'string' } },
    USAGE,
  );
  if (positionals.length !== 2) throw new UsageError(`expected OLD and NEW, got ${positionals.length} argument(s) (usage: ${USAGE})`);
  try {
    const old = loadSpecRef(positionals[0]);
    const neu = loadSpecRef(positionals[1]);
    if (old.spec.arch !== neu.spec.arch) throw new CliError(`cannot diff ${old.spec.arch} against ${neu.spec.arch}: compare one arch at a time`);
    const file = typeof values.suppressions === 'string' ? loadSuppressions(values.suppressions) : undefined;
    const suppressions = new SuppressionSet(file);
    const report = buildReport(old, neu, suppressions);
    const stale = suppressions.stale();
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ ...(reportJson(report) as object), stale }, null, 2)}\n`);
    } else {
      process.stdout.write(formatReportText(report, { onlyBreaking: values['only-breaking'] === true }));
      if (file) process.stderr.write(formatStaleText(stale, file.path));
    }
    return report.exit;
  } catch (err) {
    if (err instanceof AbiInputError) throw new CliError(err.message, EXIT.ERROR);
    throw err;
  }
}
