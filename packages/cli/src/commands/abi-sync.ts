import { HeaderSyncError, syncHeaders, type HeaderSyncErrorKind } from '@kvm-ts/abi/headers';
import { parse } from '../args.js';
import { usageLine, type CommandSpec } from '../usage.js';
import { CliError, UsageError } from '../errors.js';

export const SYNC: CommandSpec = { name: 'abi sync', summary: 'download, verify and install the pinned kernel headers (kernel-headers/README.md)', options: [] };
const USAGE = usageLine(SYNC);

/** Distinct exit statuses so scripts can tell a network problem from a tampered download. */
const EXIT: Record<HeaderSyncErrorKind, number> = {
  config: 1,
  'tool-missing': 3,
  'no-source': 4,
  unreachable: 4,
  'not-found': 4,
  integrity: 5,
  extract: 6,
};

/** kvm-cli abi sync: download, verify and install the pinned kernel headers (kernel-headers/README.md). */
export async function sync(argv: string[]): Promise<number> {
  const args = parse(argv, SYNC);
  if (!args) return 0;
  const { positionals } = args;
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' (usage: ${USAGE})`);
  try {
    await syncHeaders({ log: (line) => process.stdout.write(`${line}\n`) });
  } catch (err) {
    if (err instanceof HeaderSyncError) throw new CliError(`abi sync: ${err.message}`, EXIT[err.kind]);
    throw err;
  }
  return 0;
}
