/**
 * Every command's options in one table per command: the parser (node:util parseArgs), the usage
 * line in its errors and its `--help` all derive from that table, so none can drift from another.
 */

export interface OptionSpec {
  /** The long flag, without `--`. */
  flag: string;
  short?: string;
  /** `string` takes a value, `boolean` is a switch, `strings` is repeatable. */
  kind: 'string' | 'boolean' | 'strings';
  /** The flag's value in the usage line (`MEM`, `FILE`), for `string` and `strings`. */
  arg?: string;
  /** One line: what the option does. */
  help: string;
  /** The command cannot do without it (unbracketed in the usage line). */
  required?: boolean;
}

export interface CommandSpec {
  /** As typed: `run`, `abi diff`. */
  name: string;
  /** The positional arguments in the usage line: `OLD NEW`, `NAME|--all`. */
  args?: string;
  /** One line: what the command does. */
  summary: string;
  options: readonly OptionSpec[];
  /** Lines after the options: what an argument may be. */
  notes?: readonly string[];
}

export interface Command {
  spec: CommandSpec;
  run(argv: string[]): Promise<number>;
}

/** Every command takes it; the parser answers it before anything else is looked at. */
export const HELP_OPTION: OptionSpec = { flag: 'help', short: 'h', kind: 'boolean', help: 'print this help and exit' };

/** The table's options with --help, as the parser takes them. */
export function allOptions(spec: CommandSpec): readonly OptionSpec[] {
  return [...spec.options, HELP_OPTION];
}

type ParseOption = { type: 'string' | 'boolean'; short?: string; multiple?: boolean };

/** node:util parseArgs options of a table. */
export function parseOptions(options: readonly OptionSpec[]): Record<string, ParseOption> {
  const out: Record<string, ParseOption> = {};
  for (const o of options) {
    out[o.flag] = { type: o.kind === 'boolean' ? 'boolean' : 'string', ...(o.short ? { short: o.short } : {}), ...(o.kind === 'strings' ? { multiple: true } : {}) };
  }
  return out;
}

/** `-k KERNEL`, `--debug-port`: how the option is spelled in a usage line. */
function spelling(o: OptionSpec, long = false): string {
  const name = o.short && !long ? `-${o.short}` : `--${o.flag}`;
  return o.kind === 'boolean' ? name : `${name} ${o.arg ?? 'VALUE'}`;
}

/** `kvm-cli abi diff OLD NEW [--format …] …`. */
export function usageLine(spec: CommandSpec): string {
  const opts = spec.options.map((o) => (o.required ? spelling(o) : `[${spelling(o)}${o.kind === 'strings' ? ' …' : ''}]`));
  return ['kvm-cli', spec.name, ...(spec.args ? [spec.args] : []), ...opts].join(' ');
}

/** The usage line, the summary, one line per option, then the notes. */
export function helpText(spec: CommandSpec): string {
  const rows = allOptions(spec).map((o) => [o.short ? `-${o.short}, ${spelling(o, true)}` : `    ${spelling(o, true)}`, o.help]);
  // A long value syntax (-n's) does not push every other line's text to the right.
  const width = Math.min(Math.max(...rows.map((r) => r[0].length)), 30);
  const lines = [`usage: ${usageLine(spec)}`, '', spec.summary, '', 'options:', ...rows.map(([a, b]) => `  ${a.padEnd(width)}  ${b}`)];
  if (spec.notes?.length) lines.push('', ...spec.notes);
  return `${lines.join('\n')}\n`;
}
