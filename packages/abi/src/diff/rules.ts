import type { Category, ItemKind } from './types.js';

export interface Rule {
  id: string;
  kind: ItemKind;
  /** The categories this rule breaks; a rule with none is a compatible change. */
  breaks: readonly Category[];
  summary: string;
  /** What to do instead, printed by `abi check` next to an unsuppressed break. */
  hint: string;
}

const B: readonly Category[] = ['BINARY'];
const S: readonly Category[] = ['SOURCE'];
const BS: readonly Category[] = ['BINARY', 'SOURCE'];
const OK: readonly Category[] = [];

const KEEP_OLD = 'keep the old definition and add a new item next to it';
const SUPPRESS = 'if this is a reviewed exception, add {rule, item, reason} to kernel-headers/suppressions.json';

/** Every rule `abi diff` can report; docs/abi-rules.md documents each with an example from KVM history. */
export const RULES: readonly Rule[] = [
  // ioctls
  { id: 'ioctl-added', kind: 'ioctl', breaks: OK, summary: 'a new ioctl', hint: '' },
  { id: 'ioctl-removed', kind: 'ioctl', breaks: BS, summary: 'an ioctl disappeared', hint: `${KEEP_OLD}; ${SUPPRESS}` },
  { id: 'ioctl-renumbered', kind: 'ioctl', breaks: B, summary: "an ioctl's type or nr bits changed", hint: 'never reuse or move an ioctl number: define a new ioctl' },
  { id: 'ioctl-direction-changed', kind: 'ioctl', breaks: B, summary: "an ioctl's _IOC_DIR changed", hint: 'add a new ioctl with the new direction' },
  { id: 'ioctl-size-changed', kind: 'ioctl', breaks: B, summary: "an ioctl's _IOC_SIZE (its argument's sizeof) changed", hint: 'keep the argument size: carve new members out of reserved bytes, or add a new ioctl' },
  { id: 'ioctl-arg-type-changed', kind: 'ioctl', breaks: S, summary: "an ioctl's argument type was renamed with the same size", hint: 'keep the old type name (a typedef or #define alias)' },
  { id: 'ioctl-arg-type-swapped', kind: 'ioctl', breaks: B, summary: "an ioctl's argument became another struct of the same size with another layout", hint: 'keep the argument type; define a new ioctl for the new struct' },
  { id: 'ioctl-fd-changed', kind: 'ioctl', breaks: B, summary: 'an ioctl moved to another file descriptor class', hint: 'define a new ioctl on the new fd class' },
  { id: 'ioctl-number-collision', kind: 'ioctl', breaks: B, summary: 'two ioctls of one fd class now share a request number', hint: 'pick an unused nr for the new ioctl' },
  // constants
  { id: 'constant-added', kind: 'constant', breaks: OK, summary: 'a new constant', hint: '' },
  { id: 'enum-value-added', kind: 'constant', breaks: OK, summary: 'a new value in an enumeration-like family (same prefix) with a fresh value', hint: '' },
  { id: 'enum-value-reused', kind: 'constant', breaks: B, summary: "a new family member takes a value an existing member of the family already has", hint: 'give the new member an unused value' },
  { id: 'family-value-reused', kind: 'constant', breaks: B, summary: 'a member of a numbered family (KVM_CAP_*, KVM_EXIT_*, a C enum…) takes a value another member has or had', hint: 'give it an unused number; never hand a retired number to a new meaning' },
  { id: 'macro-added', kind: 'constant', breaks: OK, summary: 'a new function-like macro', hint: '' },
  { id: 'macro-removed', kind: 'constant', breaks: S, summary: 'a function-like macro disappeared', hint: `${KEEP_OLD}; ${SUPPRESS}` },
  { id: 'macro-body-changed', kind: 'constant', breaks: B, summary: "a function-like macro's expansion changed: compiled callers baked in the old formula", hint: 'keep the macro; add a new one with the new formula' },
  { id: 'constant-removed', kind: 'constant', breaks: S, summary: 'a constant (macro or enumerator) disappeared', hint: `${KEEP_OLD}; ${SUPPRESS}` },
  { id: 'constant-value-changed', kind: 'constant', breaks: B, summary: "a constant's value changed", hint: 'constants are ABI: never change a value, add a new name' },
  { id: 'limit-grown', kind: 'constant', breaks: OK, summary: 'a *_MAX / *_NUM / *_NR style limit grew', hint: '' },
  { id: 'mask-grown', kind: 'constant', breaks: OK, summary: 'a mask of valid bits (*_VALID_* / *_MASK) gained bits and kept all the old ones', hint: '' },
  // structs
  { id: 'struct-added', kind: 'struct', breaks: OK, summary: 'a new struct or union', hint: '' },
  { id: 'struct-removed', kind: 'struct', breaks: S, summary: 'a struct or union disappeared', hint: `${KEEP_OLD}; ${SUPPRESS}` },
  { id: 'struct-renamed', kind: 'struct', breaks: S, summary: 'a struct disappeared and one with an identical layout appeared', hint: 'keep the old name' },
  { id: 'struct-grown', kind: 'struct', breaks: B, summary: 'a struct grew and no ioctl number or other struct encodes its size (the kernel may still copy sizeof it)', hint: 'if the kernel never copies sizeof it (it lives in a padded union, is read field by field), add {rule, item, reason} to kernel-headers/suppressions.json' },
  { id: 'mmap-struct-grown', kind: 'struct', breaks: B, summary: "an mmap'd struct (kvm_run, the dirty ring, the coalesced MMIO ring) grew", hint: "keep its size: carve new members out of its padding (kvm_run's exit union)" },
  { id: 'struct-size-changed', kind: 'struct', breaks: B, summary: 'a struct shrank, or grew while its size is encoded in an ioctl number or it is an array element of another struct', hint: 'keep the size: carve the new member out of reserved/padding bytes' },
  { id: 'struct-alignment-changed', kind: 'struct', breaks: B, summary: "a struct's alignment changed and its size or a member's offset moved", hint: 'keep the member types that set the alignment' },
  { id: 'struct-alignment-only', kind: 'struct', breaks: OK, summary: "a struct's alignment changed and nothing in it moved", hint: '' },
  { id: 'struct-kind-changed', kind: 'struct', breaks: BS, summary: 'a struct became a union or the other way round', hint: KEEP_OLD },
  // members
  { id: 'member-from-padding', kind: 'member', breaks: OK, summary: 'a member carved out of padding or a reserved/pad/padding/unused array, the struct size unchanged', hint: '' },
  { id: 'reserved-resized', kind: 'member', breaks: OK, summary: 'a reserved/pad member shrank, moved or disappeared because members were carved out of it', hint: '' },
  { id: 'union-member-added', kind: 'member', breaks: OK, summary: "a union member added within the union's size", hint: '' },
  { id: 'member-appended', kind: 'member', breaks: OK, summary: 'a member appended past the old end (the struct item carries the size rule)', hint: '' },
  { id: 'member-added-in-place', kind: 'member', breaks: B, summary: 'a member added over bytes an old member used', hint: 'carve new members out of reserved bytes only' },
  { id: 'flex-array-added', kind: 'member', breaks: OK, summary: 'a flexible array member added at the end', hint: '' },
  { id: 'member-removed', kind: 'member', breaks: BS, summary: 'a member disappeared', hint: `${KEEP_OLD}; rename it to reserved/pad only when the kernel ignores those bytes` },
  { id: 'union-member-removed', kind: 'member', breaks: S, summary: 'a union alias disappeared: a member that stayed covers exactly its bits, the size unchanged', hint: 'keep the alternative: source spelling it no longer compiles' },
  { id: 'flex-array-removed', kind: 'member', breaks: S, summary: 'a trailing flexible array member disappeared, the struct size unchanged', hint: 'keep the flexible array: source spelling it no longer compiles' },
  { id: 'anonymous-member-named', kind: 'member', breaks: S, summary: 'an anonymous struct/union got a name: x became name.x at the same offset, size and type', hint: 'keep the old spelling working (the anonymous union can stay, with the named one inside it)' },
  { id: 'flex-array-unioned', kind: 'member', breaks: S, summary: 'a flexible array became a union of flexible arrays at the same offset, the struct size unchanged', hint: 'keep the old member name as one of the union alternatives' },
  { id: 'member-renamed', kind: 'member', breaks: S, summary: 'a member disappeared and one of the same offset, size and type appeared', hint: 'keep the old name (an anonymous union can hold both)' },
  { id: 'member-retyped', kind: 'member', breaks: B, summary: "a member's type changed, same offset and size", hint: 'keep the type; add a union member with the new type' },
  { id: 'member-type-spelling-changed', kind: 'member', breaks: OK, summary: "a member's type is spelled differently but resolves to the same C type", hint: '' },
  { id: 'member-resized', kind: 'member', breaks: B, summary: "a member's size changed", hint: 'keep the member; add a new one in reserved bytes' },
  { id: 'member-moved', kind: 'member', breaks: B, summary: "a member's offset changed", hint: 'never reorder or insert before existing members' },
  { id: 'member-array-shrunk', kind: 'member', breaks: B, summary: 'a fixed array lost elements', hint: 'keep the array length' },
  { id: 'member-array-grown', kind: 'member', breaks: B, summary: 'a fixed array gained elements', hint: 'keep the array length; add a new member in reserved bytes' },
  { id: 'member-bitfield-changed', kind: 'member', breaks: B, summary: "a bitfield's position or width changed", hint: 'keep every bitfield where it is' },
  { id: 'flex-array-changed', kind: 'member', breaks: B, summary: 'a flexible array became fixed, or a fixed array flexible', hint: 'keep the member as it was' },
  { id: 'flex-array-element-changed', kind: 'member', breaks: B, summary: "a flexible array's element type or size changed", hint: 'add a new struct with a new ioctl' },
  // typedefs
  { id: 'typedef-added', kind: 'typedef', breaks: OK, summary: 'a new typedef', hint: '' },
  { id: 'typedef-removed', kind: 'typedef', breaks: S, summary: 'a typedef disappeared', hint: KEEP_OLD },
  { id: 'typedef-changed', kind: 'typedef', breaks: B, summary: 'a typedef resolves to another C type', hint: 'keep the typedef' },
];

export const RULES_BY_ID: ReadonlyMap<string, Rule> = new Map(RULES.map((r) => [r.id, r]));

export function rule(id: string): Rule {
  const r = RULES_BY_ID.get(id);
  if (!r) throw new Error(`unknown ABI rule '${id}'`);
  return r;
}
