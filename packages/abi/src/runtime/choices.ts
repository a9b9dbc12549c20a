/**
 * One-line "what exists" hints for lookup errors. Specs hold hundreds of names, so long lists are
 * cut down to the names closest to what was asked for.
 */
const FULL_LIST_LIMIT = 20;
const NEAREST_LIMIT = 8;

export function describeChoices(wanted: string, available: Iterable<string>): string {
  const names = [...available].sort();
  if (names.length === 0) return 'none exist';
  if (names.length <= FULL_LIST_LIMIT) return `available: ${names.join(', ')}`;
  const nearest = names
    .map((name) => ({ name, distance: editDistance(wanted.toLowerCase(), name.toLowerCase()) }))
    .sort((a, b) => a.distance - b.distance || a.name.localeCompare(b.name))
    .slice(0, NEAREST_LIMIT)
    .map((c) => c.name);
  return `closest of ${names.length}: ${nearest.join(', ')}`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length];
}
