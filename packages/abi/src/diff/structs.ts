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

/**
 * Structs userspace reaches through mmap, whose sizeof is a stride or a layout both sides assume
 * (no ioctl number carries it): kvm_run (the vcpu's mmap), the dirty ring's entries, the
 * coalesced MMIO ring and its entries.
 */
export const MMAPPED_STRUCTS: readonly string[] = ['kvm_run', 'kvm_dirty_gfn', 'kvm_coalesced_mmio_ring', 'kvm_coalesced_mmio'];

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
  const members = compareMembers(name, o, n, old, neu);
  if (o.align !== n.align) out.push(alignmentChange(name, o, n, members));
  if (n.size < o.size) out.push(change('struct-size-changed', 'struct', name, `${name} shrank ${o.size} -> ${n.size} bytes`));
  if (n.size > o.size) {
    out.push(
      sizeEncoded
        ? change('struct-size-changed', 'struct', name, `${name} grew ${o.size} -> ${n.size} bytes; its size is encoded in an ioctl number or another struct`)
        : MMAPPED_STRUCTS.includes(name)
          ? change('mmap-struct-grown', 'struct', name, `${name} grew ${o.size} -> ${n.size} bytes; it is mmap'd, so old and new tools disagree on its size or the ring's stride`)
          : change('struct-grown', 'struct', name,
            `${name} grew ${o.size} -> ${n.size} bytes; no ioctl number encodes its size, but the kernel may still copy sizeof it (passed by address, reached through a __u64 member): review, then suppress with the reason`),
    );
  }
  out.push(...members);
  return out;
}

/**
 * An alignment change that moves nothing here (same size, no member moved) is compatible: structs
 * and ioctls containing it report their own moves where it moves something. A user's struct
 * embedding it may still be laid out differently, hence the note.
 */
function alignmentChange(name: string, o: StructSpec, n: StructSpec, members: Change[]): Change {
  const moved = o.size !== n.size || members.some((c) => c.rule === 'member-moved');
  const detail = `${name} alignment ${o.align} -> ${n.align}`;
  return moved
    ? change('struct-alignment-changed', 'struct', name, detail)
    : change('struct-alignment-only', 'struct', name, `${detail}; no size or offset changed (a user's own struct embedding it may be laid out differently)`);
}
