import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;
export interface Parsed {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
}

/** node:util parseArgs, with its errors turned into one-line usage errors (exit 2). */
export function parse(argv: string[], options: Options, usage: string): Parsed {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true }) as Parsed;
  } catch (err) {
    let msg = err instanceof Error ? err.message.split('\n')[0] : String(err);
    // Node's text goes on to explain `--` for positionals, which nobody here needs.
    const unknown = /^Unknown option '([^']+)'/.exec(msg);
    if (unknown) msg = `unknown option '${unknown[1]}'`;
    throw new UsageError(`${msg} (usage: ${usage})`);
  }
}
