import type { LoadedSpec } from '@kvm-ts/abi/diff';
import type { Arch } from '@kvm-ts/abi';
import { ARCHES } from '@kvm-ts/abi';
import { CliError, UsageError } from '../errors.js';
import type { OptionSpec } from '../usage.js';

/** The options every command that generates or prints a spec shares. */
export const FORMAT_OPTION: OptionSpec = { flag: 'format', kind: 'string', arg: 'text|json|junit|github', help: 'the output format (default text)' };
export const JSON_FORMAT_OPTION: OptionSpec = { flag: 'json', kind: 'boolean', help: 'the same as --format json' };
export const ARCH_OPTION: OptionSpec = { flag: 'arch', kind: 'string', arg: 'ARCH', help: 'the arch to generate for and of a bare pinned id: x86_64, arm64 or riscv64 (default x86_64)' };
export const STRICT_OPTION: OptionSpec = { flag: 'strict', kind: 'boolean', help: 'a macro left out for a kernel-only helper fails generation instead of warning' };

/** What every command that takes a spec source says about it. */
export const SOURCES_HELP = 'a spec file, a pinned id (6.1 or 6.1/x86_64), an include dir, a Linux tree, or git:TREE@REF';

export function archOption(value: unknown, usage: string): Arch {
  const arch = typeof value === 'string' ? value : 'x86_64';
  if (!(ARCHES as readonly string[]).includes(arch)) {
    throw new UsageError(`unknown arch '${arch}' (available: ${ARCHES.join(', ')}; usage: ${usage})`);
  }
  return arch as Arch;
}

/**
 * Loads any spec source, generator warnings to stderr. A source that names nothing usable exits 2;
 * an unreadable spec or a header the generator rejects exits 1; both as one line.
 */
export async function loadSource(ref: string, opts: { arch?: Arch; strict?: boolean; specRoot?: string }): Promise<LoadedSpec> {
  const { loadSpecSource, SpecSourceError } = await import('@kvm-ts/abi/sources');
  const { AbiInputError } = await import('@kvm-ts/abi/diff');
  try {
    return loadSpecSource(ref, { ...opts, warn: (line) => process.stderr.write(`${line}\n`) });
  } catch (err) {
    if (err instanceof SpecSourceError) throw new CliError(err.message, 2);
    if (err instanceof AbiInputError) throw new CliError(err.message, 1);
    throw err;
  }
}

export function formatOption(values: Record<string, unknown>, usage: string): 'text' | 'json' | 'junit' | 'github' {
  const format = typeof values.format === 'string' ? values.format : values.json ? 'json' : 'text';
  if (!['text', 'json', 'junit', 'github'].includes(format)) throw new UsageError(`unknown format '${format}' (text, json, junit or github; usage: ${usage})`);
  if (values.json && format !== 'json') throw new UsageError(`--json is --format json: it cannot go with --format ${format}`);
  return format as 'text' | 'json' | 'junit' | 'github';
}
