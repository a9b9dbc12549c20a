import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ARCHES, type Arch, type Spec } from '../spec/types.js';
import { compareSpecIds, SPEC_ID } from '../spec/ids.js';
import { parseSpecText } from './load.js';
import type { SpecLabel } from './types.js';

export interface SpecEntry {
  id: string;
  arch: Arch;
  spec: Spec;
  label: SpecLabel;
}

/** A set of specs keyed "id/arch", read from somewhere (the working tree, a git revision, a recorded file). */
export type SpecSet = Map<string, SpecEntry>;

export const specKey = (id: string, arch: string): string => `${id}/${arch}`;

/** Relative paths "<id>/<arch>.json" a spec directory listing may hold. */
export function isSpecPath(rel: string): { id: string; arch: Arch } | undefined {
  const [id, file, ...rest] = rel.split('/');
  if (rest.length > 0 || !SPEC_ID.test(id ?? '') || !file?.endsWith('.json')) return undefined;
  const arch = file.slice(0, -5) as Arch;
  return ARCHES.includes(arch) ? { id, arch } : undefined;
}

export function entryFromText(rel: string, text: string, source: string): SpecEntry | undefined {
  const where = isSpecPath(rel);
  if (!where) return undefined;
  const spec = parseSpecText(text, source);
  return { ...where, spec, label: { id: where.id, arch: where.arch, kernel: spec.kernel, source } };
}

/** Every packages/abi/spec/<id>/<arch>.json in a directory. */
export function readSpecDir(dir: string): SpecSet {
  const out: SpecSet = new Map();
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const id = entry.name;
    if (!SPEC_ID.test(id) || !entry.isDirectory()) continue;
    for (const file of readdirSync(join(dir, id))) {
      const rel = `${id}/${file}`;
      if (!isSpecPath(rel)) continue;
      const path = join(dir, id, file);
      const e = entryFromText(rel, readFileSync(path, 'utf8'), path);
      if (e) out.set(specKey(e.id, e.arch), e);
    }
  }
  return out;
}

/** Per arch, the series present, oldest first ("+local" right after the set it patches). */
export function historyByArch(set: SpecSet): Map<Arch, SpecEntry[]> {
  const out = new Map<Arch, SpecEntry[]>();
  for (const e of set.values()) {
    const list = out.get(e.arch);
    if (list) list.push(e);
    else out.set(e.arch, [e]);
  }
  for (const list of out.values()) list.sort((a, b) => compareSpecIds(a.id, b.id));
  return new Map([...out].sort(([a], [b]) => ARCHES.indexOf(a) - ARCHES.indexOf(b)));
}
