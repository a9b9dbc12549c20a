/**
 * Build step: the typed per-version modules (`@kvm-ts/abi/6.12/x86_64`, `@kvm-ts/abi/latest`) are
 * derived from the committed JSON specs, never committed themselves: a header change is one JSON
 * diff in review. Writes their TypeScript to build/versions (git-ignored), which
 * tsconfig.versions.json then compiles into dist/versions with .d.ts files.
 *
 *   node dist/codegen/build-versions.js      (run by `npm run build`, after the first tsc)
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { listSpecs, loadSpecFile } from '../runtime/load.js';
import { isLocalSpecId } from '../spec/ids.js';
import { emitLatestModule, emitVersionModule } from './typescript.js';

/** packages/abi, from src/codegen/*.ts and dist/codegen/*.js alike. */
export const PACKAGE_DIR = fileURLToPath(new URL('../..', import.meta.url));
export const VERSIONS_BUILD_DIR = join(PACKAGE_DIR, 'build', 'versions');

export interface VersionFile {
  /** Relative to build/versions: "6.12/x86_64.ts", "latest.ts". */
  rel: string;
  content: string;
}

/**
 * One module per pinned (non-local) spec and latest.ts. "+local" specs come from patched headers
 * made on demand; they get no module, as before.
 */
export function versionFiles(specDir?: string): VersionFile[] {
  const pinned = listSpecs(specDir).filter((s) => !isLocalSpecId(s.id));
  if (pinned.length === 0) throw new Error(`no pinned spec under ${specDir ?? 'packages/abi/spec'}`);
  const files = pinned.map((s) => ({ rel: `${s.id}/${s.arch}.ts`, content: emitVersionModule(loadSpecFile(s.path), s.id) }));
  files.push({ rel: 'latest.ts', content: emitLatestModule(pinned.filter((s) => s.arch === 'x86_64').map((s) => s.id)) });
  return files;
}

export function writeVersionSources(dir = VERSIONS_BUILD_DIR): number {
  // A spec removed since the last build must not leave its module behind.
  rmSync(dir, { recursive: true, force: true });
  const files = versionFiles();
  for (const f of files) {
    const path = join(dir, f.rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, f.content);
  }
  return files.length;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    const n = writeVersionSources();
    process.stdout.write(`build-versions: ${n} module(s) from ${join(PACKAGE_DIR, 'spec')}\n`);
  } catch (err) {
    process.stderr.write(`build-versions: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}\n`);
    process.exitCode = 1;
  }
}
