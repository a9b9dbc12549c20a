import type { Spec } from '../spec/types.js';
import { change } from './change.js';
import type { Change } from './types.js';

export function compareTypedefs(old: Spec, neu: Spec): Change[] {
  const out: Change[] = [];
  for (const [name, o] of Object.entries(old.typedefs)) {
    const n = neu.typedefs[name];
    if (n === undefined) out.push(change('typedef-removed', 'typedef', name, `typedef ${name} (${o}) is gone`));
    else if (n !== o) out.push(change('typedef-changed', 'typedef', name, `typedef ${name}: ${o} -> ${n}`));
  }
  for (const [name, n] of Object.entries(neu.typedefs)) {
    if (!(name in old.typedefs)) out.push(change('typedef-added', 'typedef', name, `typedef ${name} = ${n}`));
  }
  return out;
}
