import { HeaderSyncError, syncHeaders, type HeaderSyncErrorKind } from '@kvm-ts/abi/headers';
import { parse } from '../args.js';
import { CliError, UsageError } from '../errors.js';

const USAGE = 'kvm-cli abi sync';

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
  const { positionals } = parse(argv, {}, USAGE);
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' (usage: ${USAGE})`);
  try {
    await syncHeaders({ log: (line) => process.stdout.write(`${line}\n`) });
  } catch (err) {
    if (err instanceof HeaderSyncError) throw new CliError(`abi sync: ${err.message}`, EXIT[err.kind]);
    throw err;
  }
  return 0;
}
