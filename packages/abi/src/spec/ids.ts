/**
 * Spec ids: the directory names under packages/abi/spec ("5.10", "6.12", "7.2+local"). Shared by the
 * runtime, the diff engine and the code generator; depends on nothing.
 */

/** "6.12", "7.2+local": dotted numbers, optionally a "+suffix" for locally patched header sets. */
export const SPEC_ID = /^\d+(?:\.\d+)*(?:\+[A-Za-z0-9._-]+)?$/;

/**
 * Orders spec ids numerically component by component (5.10 < 6.1 < 6.12 < 7.2); an id with a
 * "+suffix" sorts right after its base (7.2 < 7.2+local < 7.3).
 */
export function compareSpecIds(a: string, b: string): number {
  const [baseA, suffixA = ''] = a.split('+', 2);
  const [baseB, suffixB = ''] = b.split('+', 2);
  const partsA = baseA.split('.').map(Number);
  const partsB = baseB.split('.').map(Number);
  for (let i = 0; i < Math.max(partsA.length, partsB.length); i++) {
    const diff = (partsA[i] ?? -1) - (partsB[i] ?? -1);
    if (diff !== 0) return diff;
  }
  if (suffixA === suffixB) return 0;
  if (!suffixA) return -1;
  if (!suffixB) return 1;
  return suffixA < suffixB ? -1 : 1;
}

/** A "+suffix" id: a spec generated from locally patched headers, never a pinned set. */
export function isLocalSpecId(id: string): boolean {
  return id.includes('+');
}
