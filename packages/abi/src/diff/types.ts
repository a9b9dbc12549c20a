import type { Arch } from '../spec/types.js';

/**
 * What a change breaks, in the spirit of buf breaking's categories.
 * BINARY: a compiled tool (bytes, numbers, sizes it baked in) misbehaves.
 * SOURCE: a tool's source (names it spells) no longer compiles or means something else.
 */
export type Category = 'BINARY' | 'SOURCE';
export const CATEGORIES: readonly Category[] = ['BINARY', 'SOURCE'];

export type ItemKind = 'ioctl' | 'constant' | 'struct' | 'member' | 'typedef';

export interface Change {
  rule: string;
  kind: ItemKind;
  /** What a suppression names: the ioctl/constant/struct/typedef name, or "struct.member.path". */
  item: string;
  /** Empty for a compatible change. */
  breaks: Category[];
  /** One human line: what changed, with the old and new values. */
  detail: string;
  /** The header line of the item (in the new spec; in the old one for what is gone), when the spec records it. */
  file?: string;
  line?: number;
}

/** Which spec a side of a diff came from; `id` is the pinned series ("6.12", "7.2+local"). */
export interface SpecLabel {
  id: string;
  arch: Arch;
  kernel: string;
  /** File path or pinned reference as the user gave it. */
  source: string;
}
