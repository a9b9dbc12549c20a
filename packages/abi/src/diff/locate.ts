import type { SourceLocation, Spec } from '../spec/types.js';
import type { Change } from './types.js';

/** Where `change.item` is declared in `spec`, if the spec records it (specs from older generators do not). */
export function locate(change: Change, spec: Spec): SourceLocation | undefined {
  const at = (file: string | undefined, line: number | undefined) => (file !== undefined && line !== undefined ? { file, line } : undefined);
  switch (change.kind) {
    case 'ioctl':
      return at(spec.ioctls[change.item]?.file, spec.ioctls[change.item]?.line);
    case 'constant':
      return spec.locations?.constants[change.item];
    case 'typedef':
      return spec.locations?.typedefs[change.item];
    case 'struct':
      return at(spec.structs[change.item]?.file, spec.structs[change.item]?.line);
    case 'member': {
      // Struct keys may hold dots themselves (anonymous element types "outer.path"): longest first.
      for (let cut = change.item.lastIndexOf('.'); cut > 0; cut = change.item.lastIndexOf('.', cut - 1)) {
        const s = spec.structs[change.item.slice(0, cut)];
        if (!s) continue;
        const leaf = s.layout.find((l) => l.path === change.item.slice(cut + 1));
        return at(leaf?.file ?? s.file, leaf?.line ?? s.line);
      }
      return undefined;
    }
  }
}

/** `changes` with file/line from the new spec, or the old one for items that are gone. */
export function withLocations(changes: Change[], old: Spec, neu: Spec): Change[] {
  return changes.map((c) => {
    const loc = locate(c, neu) ?? locate(c, old);
    return loc ? { ...c, file: loc.file, line: loc.line } : c;
  });
}
