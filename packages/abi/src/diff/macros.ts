import type { FunctionMacro, Spec } from '../spec/types.js';
import { change } from './change.js';
import type { Change } from './types.js';

const signature = (m: FunctionMacro): string => `(${[...Array(m.params).keys()].map((i) => `$${i}`).concat(m.variadic ? ['...'] : []).join(', ')}) ${m.body}`;

/**
 * Function-like macros by their normalized bodies. A spec from a generator that did not record
 * them (no `macros` section) has nothing to compare.
 */
export function compareMacros(old: Spec, neu: Spec): Change[] {
  if (old.macros === undefined || neu.macros === undefined) return [];
  const out: Change[] = [];
  for (const [name, o] of Object.entries(old.macros)) {
    const n = neu.macros[name];
    if (n === undefined) out.push(change('macro-removed', 'constant', name, `${name}${signature(o)} is gone`));
    else if (signature(o) !== signature(n)) out.push(change('macro-body-changed', 'constant', name, `${name}${signature(o)} -> ${name}${signature(n)}`));
  }
  for (const [name, n] of Object.entries(neu.macros)) {
    if (!(name in old.macros)) out.push(change('macro-added', 'constant', name, `${name}${signature(n)}`));
  }
  return out;
}
