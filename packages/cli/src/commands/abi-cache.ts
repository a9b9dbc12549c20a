import { parse } from '../args.js';
import { UsageError } from '../errors.js';
import { usageLine, type CommandSpec } from '../usage.js';

export const CACHE: CommandSpec = {
  name: 'abi cache',
  summary: 'where the cache of specs generated from headers, trees and git refs is, how many entries and how big',
  options: [{ flag: 'clear', kind: 'boolean', help: 'empty it' }],
  notes: ['The cache keeps at most KVM_TS_SPEC_CACHE_MAX bytes (default 64M); past that the least recently used entries go first.'],
};

/** Bytes in MiB, to a tenth. */
const mib = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;

/** kvm-cli abi cache [--clear]: the generated-spec cache of `abi diff`, `show`, `generate` and `check --against`. */
export async function cache(argv: string[]): Promise<number> {
  const args = parse(argv, CACHE);
  if (!args) return 0;
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument '${args.positionals[0]}' (usage: ${usageLine(CACHE)})`);
  const { clearSpecCache, specCacheDir, specCacheEntries, specCacheMaxBytes } = await import('@kvm-ts/abi/sources');
  const dir = specCacheDir();
  if (dir === undefined) {
    process.stdout.write('spec cache: off (KVM_TS_SPEC_CACHE=off)\n');
    return 0;
  }
  if (args.values.clear) {
    const gone = clearSpecCache(dir);
    process.stdout.write(`spec cache: ${dir}: removed ${gone.entries} entries (${mib(gone.bytes)})\n`);
    return 0;
  }
  const entries = specCacheEntries(dir);
  const bytes = entries.reduce((n, e) => n + e.bytes, 0);
  process.stdout.write(`spec cache: ${dir}: ${entries.length} entries, ${mib(bytes)} (at most ${mib(specCacheMaxBytes())}, least recently used first out)\n`);
  return 0;
}
