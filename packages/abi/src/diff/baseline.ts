import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { AbiInputError, validateSpec } from './load.js';
import { entryFromText, readSpecDir, specKey, type SpecSet } from './specs.js';

export interface Baseline {
  /** How the baseline was found, for the report ("git merge-base main: 1a2b3c4", a directory, a recorded file). */
  source: string;
  specs: SpecSet;
}

/** Branches `abi check` measures against, in order; CI clones may only have the remote one. */
const MAIN_BRANCHES = ['main', 'origin/main'];

function git(cwd: string, args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd, encoding: 'utf8', maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
}

/** The specs as committed at the merge-base of HEAD with main; undefined when not in a git checkout with main. */
export function gitBaseline(root: string, specDir: string): Baseline | undefined {
  const top = git(root, ['rev-parse', '--show-toplevel'])?.trim();
  if (!top) return undefined;
  for (const branch of MAIN_BRANCHES) {
    const rev = git(root, ['merge-base', 'HEAD', branch])?.trim();
    if (!rev) continue;
    const prefix = relative(top, specDir).split('\\').join('/');
    const listing = git(top, ['ls-tree', '-r', '--name-only', rev, '--', prefix]) ?? '';
    const specs: SpecSet = new Map();
    for (const path of listing.split('\n').filter(Boolean)) {
      const rel = path.slice(prefix.length + 1);
      const text = git(top, ['show', `${rev}:${path}`]);
      if (text === undefined) continue;
      const e = entryFromText(rel, text, `${rev.slice(0, 12)}:${path}`);
      if (e) specs.set(specKey(e.id, e.arch), e);
    }
    return { source: `git merge-base HEAD ${branch} = ${rev.slice(0, 12)}`, specs };
  }
  return undefined;
}

/** A recorded baseline: {"recordedFrom": "...", "specs": {"6.1/x86_64": Spec, ...}}, for trees outside git. */
export function readRecordedBaseline(path: string): Baseline {
  let raw: { specs?: Record<string, unknown>; recordedFrom?: unknown };
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new AbiInputError(`${path}: unreadable recorded baseline (${(err as Error).message.split('\n')[0]})`);
  }
  if (typeof raw !== 'object' || raw === null || typeof raw.specs !== 'object' || raw.specs === null) {
    throw new AbiInputError(`${path}: malformed recorded baseline: expected {"specs": {"<id>/<arch>": spec}}`);
  }
  const specs: SpecSet = new Map();
  for (const [key, value] of Object.entries(raw.specs)) {
    const e = entryFromText(`${key}.json`, JSON.stringify(validateSpec(value, `${path}: ${key}`)), `${path}#${key}`);
    if (!e) throw new AbiInputError(`${path}: malformed recorded baseline: key '${key}' is not <id>/<arch>`);
    specs.set(key, e);
  }
  return { source: `recorded baseline ${path}${typeof raw.recordedFrom === 'string' ? ` (${raw.recordedFrom})` : ''}`, specs };
}

export function writeRecordedBaseline(path: string, specs: SpecSet, recordedFrom: string): void {
  const out: Record<string, unknown> = {};
  for (const [key, e] of [...specs].sort(([a], [b]) => (a < b ? -1 : 1))) out[key] = e.spec;
  writeFileSync(path, `${JSON.stringify({ recordedFrom, specs: out })}\n`);
}

/** `--baseline PATH`: a directory laid out like packages/abi/spec, or a recorded baseline file. */
export function explicitBaseline(path: string): Baseline {
  if (!existsSync(path)) throw new AbiInputError(`${path}: baseline not found`);
  if (statSync(path).isDirectory()) {
    const specs = readSpecDir(path);
    // An empty baseline would compare nothing and pass: a wrong path must not look like success.
    if (specs.size === 0) throw new AbiInputError(`${path}: baseline directory holds no <id>/<arch>.json spec`);
    return { source: `directory ${path}`, specs };
  }
  return readRecordedBaseline(path);
}
