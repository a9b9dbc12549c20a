/**
 * Maintenance: (re)computes kernel-headers/versions.json from real downloads.
 *
 *   npx tsx packages/abi/scripts/pin-headers.ts
 *
 * Reads the hand-edited fields of each set (id, package, debianVersion, suite, and the arch names
 * under "arches") from the current versions.json, downloads exactly that version with the private
 * apt configuration sync uses, and rewrites the derived fields: series, debArch, debSha256 and the
 * per-arch header closure hashes. To pin a new set, add {id, package, debianVersion, suite,
 * arches: {"x86_64": {}}} and run this; review the diff before committing.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aptUpdate, privateApt } from '../src/debian/apt.js';
import { downloadDeb, findCachedDeb } from '../src/debian/debs.js';
import { seriesOf } from '../src/debian/debversion.js';
import { extractDeb } from '../src/debian/debs.js';
import { headerClosure } from '../src/headers/extract.js';
import { sha256File } from '../src/debian/hash.js';
import { pinsFile } from '../src/headers/paths.js';
import { ARCHES, type Arch } from '../src/spec/types.js';

interface DraftSet {
  id: string;
  package: string;
  debianVersion: string;
  suite: string;
  arches: Record<string, unknown>;
}

async function main(): Promise<void> {
  const file = pinsFile();
  const draft = JSON.parse(readFileSync(file, 'utf8')) as { $comment?: string; sets: DraftSet[] };
  const suites = [...new Set(draft.sets.map((s) => s.suite))];
  const apt = privateApt(suites);
  await aptUpdate(apt);
  const sets = [];
  for (const d of draft.sets) {
    const arches = ARCHES.filter((a) => a in d.arches);
    if (arches.length === 0) throw new Error(`set ${d.id}: no arches`);
    // Always fetch afresh: a pin must come from the archive, not from whatever a cache holds.
    const stale = findCachedDeb(d.package, d.debianVersion);
    if (stale) rmSync(stale.path);
    const deb = await downloadDeb(apt, d.package, d.debianVersion, null);
    const unpacked = mkdtempSync(join(tmpdir(), 'kvm-ts-pin-'));
    const hashes: Partial<Record<Arch, Record<string, string>>> = {};
    try {
      await extractDeb(deb.path, unpacked);
      for (const arch of arches) {
        const closure = headerClosure(unpacked, arch);
        hashes[arch] = Object.fromEntries([...closure.files].map(([rel, f]) => [rel, sha256File(f)]));
        const unresolved = closure.unresolved.length ? `; unresolved: ${closure.unresolved.join(', ')}` : '';
        process.stdout.write(`${d.id} ${arch}: ${closure.files.size} headers${unresolved}\n`);
      }
    } finally {
      rmSync(unpacked, { recursive: true, force: true });
    }
    sets.push({
      id: d.id,
      package: d.package,
      debianVersion: d.debianVersion,
      suite: d.suite,
      series: seriesOf(d.debianVersion),
      debArch: deb.debArch,
      debSha256: deb.sha256,
      arches: hashes,
    });
    process.stdout.write(`${d.id}: ${d.package} ${d.debianVersion} ${deb.debArch} sha256 ${deb.sha256}\n`);
  }
  const out = { $comment: draft.$comment, sets };
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  process.stdout.write(`wrote ${file}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`pin-headers: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
