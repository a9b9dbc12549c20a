/**
 * Regenerates every committed spec from the synced header cache:
 *   packages/abi/spec/<id>/<arch>.json     for each pinned set × arch
 * The typed modules over them are derived at build time (src/codegen/build-versions.ts), not here.
 *
 *   npx tsx scripts/generate-all.ts           write the files
 *   npx tsx scripts/generate-all.ts --check   regenerate in memory; exit 1 listing files that differ
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { generateSpec, serializeSpec } from '../src/generator/index.js';
import { cacheReady, includeRoot, pinnedSets } from '../src/headers/index.js';
import type { Arch } from '../src/spec/types.js';

export const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const SPEC_ROOT = join(PACKAGE_ROOT, 'spec');

export interface PlannedFile {
  /** Absolute path. */
  path: string;
  content: string;
}

export interface Target {
  id: string;
  arch: Arch;
  kernel: string;
}

/** Every (pinned set, arch) pair, oldest set first. */
export function targets(): Target[] {
  return pinnedSets().flatMap((s) => s.arches.map((arch) => ({ id: s.id, arch, kernel: s.kernel })));
}

export function specPath(id: string, arch: Arch): string {
  return join(SPEC_ROOT, id, `${arch}.json`);
}

/** Targets whose header cache is missing (run `kvm-cli abi sync`). */
export function missingCaches(list: Target[] = targets()): Target[] {
  return list.filter((t) => !cacheReady(t.id, t.arch));
}

/** The spec JSON for one target, generated from the synced cache. */
export function generateTarget(t: Target): PlannedFile {
  const spec = generateSpec({ includeDirs: [includeRoot(t.id, t.arch)], arch: t.arch, kernel: t.kernel });
  return { path: specPath(t.id, t.arch), content: serializeSpec(spec) };
}

/** Every file generate-all writes. */
export function planAll(list: Target[] = targets()): PlannedFile[] {
  return list.map(generateTarget);
}

/** Planned files whose committed content differs (or that do not exist). */
export function staleFiles(planned: PlannedFile[]): string[] {
  return planned
    .filter((f) => !existsSync(f.path) || readFileSync(f.path, 'utf8') !== f.content)
    .map((f) => relative(PACKAGE_ROOT, f.path));
}

function main(argv: string[]): number {
  const unknown = argv.filter((a) => a !== '--check');
  if (unknown.length > 0) {
    process.stderr.write(`generate-all: unknown argument '${unknown[0]}' (usage: generate-all [--check])\n`);
    return 2;
  }
  const check = argv.includes('--check');
  const missing = missingCaches();
  if (missing.length > 0) {
    const names = missing.map((t) => `${t.id}/${t.arch}`).join(', ');
    process.stderr.write(`generate-all: header cache missing for ${names}: run \`kvm-cli abi sync\` first\n`);
    return 1;
  }
  const planned = planAll();
  if (check) {
    const stale = staleFiles(planned);
    if (stale.length > 0) {
      process.stderr.write(`generate-all: ${stale.length} file(s) differ from a fresh generation: ${stale.join(', ')} (run npm run generate -w @kvm-ts/abi)\n`);
      return 1;
    }
    process.stdout.write(`generate-all: ${planned.length} file(s) up to date\n`);
    return 0;
  }
  for (const f of planned) {
    mkdirSync(dirname(f.path), { recursive: true });
    writeFileSync(f.path, f.content);
  }
  process.stdout.write(`generate-all: wrote ${planned.length} file(s)\n`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`generate-all: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}\n`);
    process.exitCode = 1;
  }
}
