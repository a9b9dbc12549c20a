import { rule } from './rules.js';
import type { Category, Change, ItemKind } from './types.js';

/** A change under `ruleId`, with the rule's categories unless the caller decided them (struct growth). */
export function change(ruleId: string, kind: ItemKind, item: string, detail: string, breaks?: Category[]): Change {
  return { rule: ruleId, kind, item, breaks: breaks ?? [...rule(ruleId).breaks], detail };
}

const KIND_ORDER: Record<ItemKind, number> = { ioctl: 0, constant: 1, struct: 2, member: 3, typedef: 4 };

export function sortChanges(changes: Change[]): Change[] {
  return changes.sort(
    (a, b) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || (a.item < b.item ? -1 : a.item > b.item ? 1 : 0) || (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0),
  );
}
