/**
 * Every committed spec must be exactly what the generator produces from its pinned headers: a hand
 * edit, a stale file after a generator change, or a missing file fails here. (The typed modules
 * are derived from these files at build time: codegen.test.ts checks the build.)
 */
import test, { type ExecutionContext } from 'ava';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { testNeeding } from './helpers/prerequisite.js';
import { generateTarget, missingCaches, PACKAGE_ROOT, SPEC_ROOT, targets, type PlannedFile } from '../scripts/generate-all.js';

const all = targets();
const missing = missingCaches(all);

/** Committed spec files, as "<id>/<arch>.json". Local (+suffix) sets come from patched headers and are not pinned. */
function committedSpecs(): string[] {
  if (!existsSync(SPEC_ROOT)) return [];
  const out: string[] = [];
  for (const id of readdirSync(SPEC_ROOT, { withFileTypes: true })) {
    if (!id.isDirectory() || id.name.includes('+')) continue;
    for (const f of readdirSync(join(SPEC_ROOT, id.name))) if (f.endsWith('.json')) out.push(`${id.name}/${f}`);
  }
  return out.sort();
}

test('every committed spec belongs to a pinned (set, arch) and every pair has one', (t) => {
  const expected = all.map((x) => `${x.id}/${x.arch}.json`).sort();
  t.deepEqual(committedSpecs(), expected);
});

/** Passes when `f` is committed byte for byte; else names the file and the first differing line. */
function assertCommitted(t: ExecutionContext, f: PlannedFile): void {
  const rel = relative(PACKAGE_ROOT, f.path);
  if (!existsSync(f.path)) {
    t.fail(`${rel} is missing: run npm run generate -w @kvm-ts/abi`);
    return;
  }
  const committed = readFileSync(f.path, 'utf8');
  // Comparing strings (not t.is) keeps a 200 kB diff out of the output; point at the first difference instead.
  if (committed === f.content) {
    t.pass();
    return;
  }
  let i = 0;
  while (i < committed.length && committed[i] === f.content[i]) i++;
  t.fail(`${rel} differs from a fresh generation at line ${committed.slice(0, i).split('\n').length}: run npm run generate -w @kvm-ts/abi`);
}

for (const target of all) {
  const cacheMissing = missing.some((m) => m.id === target.id && m.arch === target.arch)
    ? `header cache for ${target.id}/${target.arch} missing: run kvm-cli abi sync`
    : undefined;
  testNeeding(cacheMissing, `spec/${target.id}/${target.arch}.json regenerates byte-identically`, (t) => {
    assertCommitted(t, generateTarget(target));
  });
}

test('the tree holds no generated TypeScript: typed modules come from the build', (t) => {
  t.false(existsSync(join(PACKAGE_ROOT, 'src', 'versions')), 'src/versions must not exist: the build derives dist/versions from spec/');
});
