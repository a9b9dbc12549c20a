import type { Spec } from '../spec/types.js';
import { sortChanges } from './change.js';
import { compareConstants } from './constants.js';
import { compareIoctls } from './ioctls.js';
import { compareMacros } from './macros.js';
import { compareStructs } from './structs.js';
import { compareTypedefs } from './typedefs.js';
import type { Category, Change } from './types.js';

/** Every difference between two specs of one arch, each classified by a rule. */
export function diffSpecs(old: Spec, neu: Spec): Change[] {
  return sortChanges([...compareIoctls(old, neu), ...compareConstants(old, neu), ...compareMacros(old, neu), ...compareStructs(old, neu), ...compareTypedefs(old, neu)]);
}

/** The categories any of `changes` breaks. */
export function brokenCategories(changes: readonly Change[]): Set<Category> {
  const out = new Set<Category>();
  for (const c of changes) for (const b of c.breaks) out.add(b);
  return out;
}

/** abidiff-style: 0 identical or compatible only, 4 source-incompatible, 8 binary-incompatible, 12 both. */
export const EXIT = { OK: 0, ERROR: 1, USAGE: 2, SOURCE: 4, BINARY: 8 } as const;

export function exitBits(changes: readonly Change[]): number {
  const broken = brokenCategories(changes);
  return (broken.has('SOURCE') ? EXIT.SOURCE : 0) | (broken.has('BINARY') ? EXIT.BINARY : 0);
}
