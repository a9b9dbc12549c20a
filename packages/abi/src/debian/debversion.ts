/** Debian version strings: the pieces sync needs to pick a fallback and name the upstream kernel. */

interface ParsedVersion {
  epoch: number;
  upstream: string;
  revision: string;
}

function parse(version: string): ParsedVersion {
  const colon = version.indexOf(':');
  const epoch = colon >= 0 ? Number(version.slice(0, colon)) : 0;
  const rest = colon >= 0 ? version.slice(colon + 1) : version;
  const dash = rest.lastIndexOf('-');
  return dash >= 0
    ? { epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1) }
    : { epoch, upstream: rest, revision: '' };
}

/** "6.12.107-1" → "6.12.107": what the spec calls `kernel`. */
export function upstreamVersion(debianVersion: string): string {
  return parse(debianVersion).upstream;
}

/** "6.12.107-1" → "6.12": the series a fallback must stay within. */
export function seriesOf(debianVersion: string): string {
  return upstreamVersion(debianVersion).split('.').slice(0, 2).join('.');
}

/** True when `debianVersion` belongs to upstream series `series` ("6.12" matches 6.12 and 6.12.*). */
export function inSeries(debianVersion: string, series: string): boolean {
  const upstream = upstreamVersion(debianVersion);
  return upstream === series || upstream.startsWith(`${series}.`);
}

// dpkg's ordering: '~' sorts before everything (even the end of the string), letters before non-letters.
function charOrder(c: string | undefined): number {
  if (c === undefined) return 0;
  if (c === '~') return -1;
  if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
  return c.charCodeAt(0) + 256;
}

function comparePart(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    // Non-digit prefix, character by character.
    while ((i < a.length && !/\d/.test(a[i])) || (j < b.length && !/\d/.test(b[j]))) {
      const ca = i < a.length && !/\d/.test(a[i]) ? a[i] : undefined;
      const cb = j < b.length && !/\d/.test(b[j]) ? b[j] : undefined;
      const d = charOrder(ca) - charOrder(cb);
      if (d !== 0) return d;
      if (ca !== undefined) i++;
      if (cb !== undefined) j++;
    }
    // Digit run, numerically.
    let na = '';
    let nb = '';
    while (i < a.length && /\d/.test(a[i])) na += a[i++];
    while (j < b.length && /\d/.test(b[j])) nb += b[j++];
    const d = Number(na || '0') - Number(nb || '0');
    if (d !== 0) return d;
  }
  return 0;
}

/** dpkg --compare-versions semantics: negative, zero or positive. */
export function compareDebianVersions(a: string, b: string): number {
  const pa = parse(a);
  const pb = parse(b);
  if (pa.epoch !== pb.epoch) return pa.epoch - pb.epoch;
  return comparePart(pa.upstream, pb.upstream) || comparePart(pa.revision, pb.revision);
}
