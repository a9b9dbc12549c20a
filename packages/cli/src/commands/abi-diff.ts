import { buildReport, EXIT, formatGithub, formatJunit, formatReportText, formatStaleText, loadSuppressions, reportJson, SuppressionSet } from '@kvm-ts/abi/diff';
import { parse } from '../args.js';
import { usageLine, type CommandSpec } from '../usage.js';
import { CliError, UsageError } from '../errors.js';
import { ARCH_OPTION, archOption, FORMAT_OPTION, formatOption, JSON_FORMAT_OPTION, loadSource, SOURCES_HELP, STRICT_OPTION } from './abi-source.js';

export const DIFF: CommandSpec = {
  name: 'abi diff',
  args: 'OLD NEW',
  summary: 'classify every difference between two specs (exit 0 compatible, 4 SOURCE, 8 BINARY, 12 both)',
  options: [
    FORMAT_OPTION,
    JSON_FORMAT_OPTION,
    { flag: 'only-breaking', kind: 'boolean', help: 'show only the changes that break source or binaries' },
    { flag: 'suppressions', kind: 'string', arg: 'FILE', help: 'reviewed changes that set no exit bit (a YAML or JSON suppressions file)' },
    ARCH_OPTION,
    STRICT_OPTION,
  ],
  notes: [`OLD/NEW: ${SOURCES_HELP}`],
};
const USAGE = `${usageLine(DIFF)}  (OLD/NEW: ${SOURCES_HELP})`;

/**
 * Exit status is abidiff's bitmask: 0 identical/compatible, 4 SOURCE, 8 BINARY, 12 both; 1 error, 2 usage
 * (a source that names nothing usable included). Suppressed changes never set a bit; a stale
 * suppression is reported but does not change the verdict. The format changes nothing but the output.
 */
export async function diff(argv: string[]): Promise<number> {
  const args = parse(argv, DIFF);
  if (!args) return 0;
  const { values, positionals } = args;
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
