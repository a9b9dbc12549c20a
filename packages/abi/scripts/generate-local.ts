/**
 * The co-edit flow's generator (docs/abi-co-edit.md): applies every kernel-headers/patches/*.patch, in
 * name order, on a temporary copy of the newest pinned header cache and generates the "+local" spec
 * from it. The cache itself is never touched.
 *
 *   npx tsx scripts/generate-local.ts [--arch x86_64]   write packages/abi/spec/<newest>+local/<arch>.json
 *   npx tsx scripts/generate-local.ts --check          regenerate in memory; exit 1 if the committed file differs
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { generateSpec, serializeSpec } from '../src/generator/index.js';
import { cacheReady, includeRoot, pinnedSets, repoRoot } from '../src/headers/index.js';
import { ARCHES, type Arch } from '../src/spec/types.js';

const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const PATCH_DIR = join(repoRoot(), 'kernel-headers', 'patches');

export interface LocalSpec {
  id: string;
  arch: Arch;
  path: string;
  content: string;
  patches: string[];
}

export function localPatches(dir = PATCH_DIR): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.patch')).sort().map((f) => join(dir, f)) : [];
}

/**
 * A temporary copy of the synced include root of set `id` with `patches` applied in order; the
 * cache itself is never touched. The caller removes it with `cleanup`.
 */
export function patchedIncludeRoot(id: string, arch: Arch, patches = localPatches()): { root: string; cleanup: () => void } {
  if (patches.length === 0) throw new Error(`no patches in ${PATCH_DIR}`);
  const work = mkdtempSync(join(tmpdir(), 'kvm-ts-local-'));
  const cleanup = () => rmSync(work, { recursive: true, force: true });
  const root = join(work, 'include');
  try {
    cpSync(includeRoot(id, arch), root, { recursive: true });
    for (const patch of patches) {
      try {
        // git apply outside a repository is a strict `patch -p1`: it refuses fuzz and partial hunks.
        // The ceiling keeps git from finding a repository above the temporary directory.
        execFileSync('git', ['apply', '-p1', '--whitespace=nowarn', patch], {
          cwd: root,
          env: { ...process.env, GIT_CEILING_DIRECTORIES: dirname(work) },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
      } catch (err) {
        const stderr = String((err as { stderr?: Buffer }).stderr ?? '').split('\n')[0];
        throw new Error(`${patch} does not apply to the ${id} headers (${arch}): ${stderr}`);
      }
    }
  } catch (err) {
    cleanup();
    throw err;
  }
  return { root, cleanup };
}

/** The "+local" spec for `arch`: the newest pinned set with every local patch applied. */
export function generateLocal(arch: Arch = 'x86_64', patches = localPatches()): LocalSpec {
  const newest = pinnedSets().at(-1);
  if (!newest) throw new Error('no pinned header sets (kernel-headers/versions.json)');
  if (!newest.arches.includes(arch)) throw new Error(`the newest pinned set ${newest.id} has no ${arch} headers`);
  if (!cacheReady(newest.id, arch)) throw new Error(`header cache for ${newest.id}/${arch} is missing: run \`kvm-cli abi sync\` first`);
  const patched = patchedIncludeRoot(newest.id, arch, patches);
  try {
    const id = `${newest.id}+local`;
    const spec = generateSpec({ includeDirs: [patched.root], arch, kernel: `${newest.kernel}+local` });
    return { id, arch, path: join(PACKAGE_ROOT, 'spec', id, `${arch}.json`), content: serializeSpec(spec), patches };
  } finally {
    patched.cleanup();
  }
}

function main(argv: string[]): number {
  const { values } = parseArgs({ args: argv, options: { arch: { type: 'string', default: 'x86_64' }, check: { type: 'boolean' } } });
  const arch = values.arch as Arch;
  if (!ARCHES.includes(arch)) {
    process.stderr.write(`generate-local: unknown arch '${arch}' (${ARCHES.join(', ')})\n`);
    return 2;
  }
  const local = generateLocal(arch);
  if (values.check) {
    const same = existsSync(local.path) && readFileSync(local.path, 'utf8') === local.content;
    process.stdout.write(same ? `${local.path} is up to date\n` : `${local.path} differs from the patched headers: regenerate it\n`);
    return same ? 0 : 1;
  }
  mkdirSync(dirname(local.path), { recursive: true });
  writeFileSync(local.path, local.content);
  process.stdout.write(`wrote ${local.path} (${local.patches.length} patch(es))\n`);
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`generate-local: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
