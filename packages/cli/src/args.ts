import { parseArgs } from 'node:util';
import { UsageError } from './errors.js';
import { allOptions, helpText, parseOptions, usageLine, type CommandSpec } from './usage.js';

export interface Parsed {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
}

/**
 * node:util parseArgs over the command's option table, with its errors turned into one-line usage
 * errors (exit 2). `--help`/`-h` prints the command's help and gives undefined: the command returns 0.
 */
export function parse(argv: string[], spec: CommandSpec): Parsed | undefined {
  let parsed: Parsed;
  try {
    parsed = parseArgs({ args: argv, options: parseOptions(allOptions(spec)), allowPositionals: true, strict: true }) as Parsed;
  } catch (err) {
    let msg = err instanceof Error ? err.message.split('\n')[0] : String(err);
    // Node's text goes on to explain `--` for positionals, which nobody here needs.
    const unknown = /^Unknown option '([^']+)'/.exec(msg);
    if (unknown) msg = `unknown option '${unknown[1]}'`;
    throw new UsageError(`${msg} (usage: ${usageLine(spec)})`);
  }
  if (parsed.values.help === true) {
    process.stdout.write(helpText(spec));
    return undefined;
  }
  return parsed;
}
