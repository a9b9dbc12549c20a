/**
 * The test pipeline's passt: when `passt` is not on PATH, Debian's package for this host's release
 * is downloaded through a private apt on this machine's Debian mirror (@kvm-ts/abi/debian, no
 * root, nothing installed) and unpacked into the user cache. Tests point the VMM at it through
 * KVM_TS_PASST; the product itself only looks at PATH and that variable (passt.ts).
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { aptDownload, aptUpdate, availableVersions, compareDebianVersions, extractDebMembers, FetchError, hostDebianRelease, privateApt, userCacheDir } from '@kvm-ts/abi/debian';
import { findPasst } from './devices/virtio/net-backends/passt.js';

/** Where the fetch step leaves Debian's passt binary. */
export function cachedPasstPath(): string {
  return join(userCacheDir(), 'passt', 'usr', 'bin', 'passt');
}

/** passt for the tests: $KVM_TS_PASST or PATH's, else the cached copy; undefined when there is none. */
export function testPasst(): string | undefined {
  const found = findPasst();
  if (found) return found;
  const cached = cachedPasstPath();
  return existsSync(cached) ? cached : undefined;
}

export interface FetchedPasst {
  path: string;
  /** "passt=<version>", or undefined when nothing was downloaded. */
  downloaded?: string;
}

export async function fetchPasst(): Promise<FetchedPasst> {
  const found = findPasst();
  if (found) return { path: found };
  const target = cachedPasstPath();
  if (existsSync(target)) return { path: target };
  const release = hostDebianRelease();
  const apt = privateApt([release, `${release}-updates`, `${release}-security`]);
  await aptUpdate(apt);
  const version = (await availableVersions(apt, 'passt')).map((v) => v.version).sort((a, b) => compareDebianVersions(b, a))[0];
  if (!version) throw new FetchError('not-found', `passt is not in Debian ${apt.suites.join('/')}`);
  const root = join(userCacheDir(), 'passt');
  mkdirSync(dirname(root), { recursive: true });
  const work = mkdtempSync(`${root}.staging-`);
  try {
    await aptDownload(apt, 'passt', version, work);
    const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
    if (!deb) throw new FetchError('not-found', `apt-get download passt=${version} produced no .deb`);
    // passt execs passt.avx2 beside itself where the CPU has AVX2; the man page says what it takes.
    await extractDebMembers(join(work, deb), work, ['./usr/bin/passt*', './usr/share/man/man1/passt.1.gz']);
    if (!existsSync(join(work, 'usr', 'bin', 'passt'))) throw new FetchError('extract', `${deb} holds no /usr/bin/passt`);
    for (const f of readdirSync(join(work, 'usr', 'bin'))) chmodSync(join(work, 'usr', 'bin', f), 0o755);
    rmSync(join(work, deb));
    writeFileSync(join(work, 'passt.version'), `passt=${version}\n`);
    rmSync(root, { recursive: true, force: true });
    // Renamed last, so an interrupted fetch never leaves half a tree at the well-known path.
    renameSync(work, root);
    return { path: target, downloaded: `passt=${version}` };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
