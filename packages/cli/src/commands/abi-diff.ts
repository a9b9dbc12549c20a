import { buildReport, EXIT, formatGithub, formatJunit, formatReportText, formatStaleText, loadSuppressions, reportJson, SuppressionSet } from '@kvm-ts/abi/diff';
import { parse } from '../args.js';
import { CliError, UsageError } from '../errors.js';
import { archOption, formatOption, loadSource, SOURCES_HELP } from './abi-source.js';

const USAGE =
  'kvm-cli abi diff OLD NEW [--format text|json|junit|github] [--json] [--only-breaking] [--suppressions FILE] [--arch ARCH] [--strict]' +
  `  (OLD/NEW: ${SOURCES_HELP})`;

/**
 * Exit status is abidiff's bitmask: 0 identical/compatible, 4 SOURCE, 8 BINARY, 12 both; 1 error, 2 usage
 * (a source that names nothing usable included). Suppressed changes never set a bit; a stale
 * suppression is reported but does not change the verdict. The format changes nothing but the output.
 */
export async function diff(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      json: { type: 'boolean' },
      format: { type: 'string' },
      'only-breaking': { type: 'boolean' },
      suppressions: { type: 'string' },
      arch: { type: 'string' },
      strict: { type: 'boolean' },
    },
    USAGE,
  );
  if (positionals.length !== 2) throw new UsageError(`expected OLD and NEW, got ${positionals.length} argument(s) (usage: ${USAGE})`);
  const format = formatOption(values, USAGE);
  const arch = archOption(values.arch, USAGE);
  const strict = values.strict === true;
  const old = await loadSource(positionals[0], { arch, strict });
  const neu = await loadSource(positionals[1], { arch, strict });
  if (old.spec.arch !== neu.spec.arch) throw new CliError(`cannot diff ${old.spec.arch} against ${neu.spec.arch}: compare one arch at a time`);
  let file;
  try {
    file = typeof values.suppressions === 'string' ? loadSuppressions(values.suppressions) : undefined;
  } catch (err) {
    throw new CliError(err instanceof Error ? err.message : String(err), EXIT.ERROR);
  }
  const suppressions = new SuppressionSet(file);
  const report = buildReport(old, neu, suppressions);
  const stale = suppressions.stale();
  const onlyBreaking = values['only-breaking'] === true;
  // Text prints the whole count next to what it shows; the other formats list the breaking changes only.
  const listed = onlyBreaking ? { ...report, changes: report.changes.filter((c) => c.breaks.length > 0) } : report;
  switch (format) {
    case 'json':
      process.stdout.write(`${JSON.stringify({ ...(reportJson(listed) as object), stale }, null, 2)}\n`);
      break;
    case 'github':
      process.stdout.write(formatGithub([listed]));
      break;
    case 'junit':
      process.stdout.write(formatJunit([listed], { name: 'kvm-cli abi diff', failOn: ['BINARY', 'SOURCE'] }));
      break;
    case 'text':
      process.stdout.write(formatReportText(report, { onlyBreaking }));
      break;
  }
  if (file && format !== 'json') process.stderr.write(formatStaleText(stale, file.path));
  return report.exit;
}
