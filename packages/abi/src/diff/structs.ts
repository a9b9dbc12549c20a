import type { LayoutLeaf, Spec, StructSpec } from '../spec/types.js';
import { change } from './change.js';
import { compareMembers } from './members.js';
import type { Change } from './types.js';

/** Structs whose sizeof a compiled tool bakes in: an ioctl's _IOC_SIZE, or an array element of another struct. */
export function sizeEncodedStructs(spec: Spec): Set<string> {
  const out = new Set<string>();
  const add = (type: string | null) => {
    const m = type ? /^(?:struct|union) (.+)$/.exec(type) : null;
    if (m) out.add(m[1]);
  };
  for (const io of Object.values(spec.ioctls)) add(io.type);
  for (const st of Object.values(spec.structs)) for (const leaf of st.layout) if (leaf.count !== undefined) add(leaf.type);
  return out;
}

const signature = (s: StructSpec): string => JSON.stringify([s.kind, s.size, s.align, s.layout.map(leafKey)]);
const leafKey = (l: LayoutLeaf): unknown[] => [l.path, l.offset, l.size, l.type, l.count, l.dims, l.bitOffset, l.bitWidth];

export function compareStructs(old: Spec, neu: Spec): Change[] {
  const out: Change[] = [];
  const encoded = sizeEncodedStructs(old);
  const added = Object.keys(neu.structs).filter((name) => !(name in old.structs));
  const addedBySignature = new Map<string, string>();
  for (const name of added) addedBySignature.set(signature(neu.structs[name]), name);
  const renamedTo = new Set<string>();

  for (const [name, o] of Object.entries(old.structs)) {
    const n = neu.structs[name];
    if (n) {
      if (signature(o) !== signature(n)) out.push(...compareStruct(name, o, n, encoded.has(name), old, neu));
      continue;
    }
    const twin = o.layout.length > 0 ? addedBySignature.get(signature(o)) : undefined;
    if (twin !== undefined && !renamedTo.has(twin)) {
      renamedTo.add(twin);
      out.push(change('struct-renamed', 'struct', name, `${o.kind} ${name} is now ${twin} (identical layout)`));
    } else {
      out.push(change('struct-removed', 'struct', name, `${o.kind} ${name} (${o.size} bytes) is gone`));
    }
  }
  for (const name of added) {
    if (!renamedTo.has(name)) out.push(change('struct-added', 'struct', name, `${neu.structs[name].kind} ${name} (${neu.structs[name].size} bytes)`));
  }
  return out;
}

function compareStruct(name: string, o: StructSpec, n: StructSpec, sizeEncoded: boolean, old: Spec, neu: Spec): Change[] {
  if (o.kind !== n.kind) return [change('struct-kind-changed', 'struct', name, `${name}: ${o.kind} -> ${n.kind}`)];
  const out: Change[] = [];
  if (o.align !== n.align) out.push(change('struct-alignment-changed', 'struct', name, `${name} alignment ${o.align} -> ${n.align}`));
  if (n.size < o.size) out.push(change('struct-size-changed', 'struct', name, `${name} shrank ${o.size} -> ${n.size} bytes`));
  if (n.size > o.size) {
    out.push(
      sizeEncoded
        ? change('struct-size-changed', 'struct', name, `${name} grew ${o.size} -> ${n.size} bytes; its size is encoded in an ioctl number or another struct`)
        : change('struct-grown', 'struct', name, `${name} grew ${o.size} -> ${n.size} bytes`),
    );
  }
  out.push(...compareMembers(name, o, n, old, neu));
  return out;
}
