import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { aptDownload, availableVersions, dependsOf, type PrivateApt } from './apt.js';
import { compareDebianVersions } from './debversion.js';
import { extractDeb } from './debs.js';
import { FetchError } from './errors.js';
import { userCacheDir } from './paths.js';

/**
 * Debian's cross compilers for the layout probe, without root: the gcc, cpp and binutils packages
 * for a target are downloaded and unpacked into the user cache, and small wrappers in its bin/ set
 * the library path the unpacked binutils need. They compile to object files only (the probe reads
 * values out of .o files), so no target libc is needed. Host libraries (libisl, libmpc, libbfd's
 * deps) come from the host's own gcc and binutils, which is why the packages come from the host's
 * Debian release.
 */

/** The tools the probe runs, as wrappers named like the installed cross tools. */
export const CROSS_TOOLS = ['gcc', 'objcopy', 'nm'] as const;

export function crossGccDir(triplet: string): string {
  return join(userCacheDir(), 'toolchains', triplet);
}

/** The wrapper for `<triplet>-<tool>` in the cache, when a complete toolchain is there. */
export function cachedCrossTool(triplet: string, tool: (typeof CROSS_TOOLS)[number]): string | undefined {
  const dir = crossGccDir(triplet);
  if (!existsSync(join(dir, 'toolchain.json'))) return undefined;
  const path = join(dir, 'bin', `${triplet}-${tool}`);
  return existsSync(path) ? path : undefined;
}

/** The host's Debian release codename (/etc/os-release), which the cross packages must match. */
export function hostDebianRelease(osRelease = '/etc/os-release'): string {
  let text = '';
  try {
    text = readFileSync(osRelease, 'utf8');
  } catch {
    // No os-release: not a Debian host.
  }
  const field = (name: string): string | undefined => new RegExp(`^${name}="?([^"\\n]*)"?$`, 'm').exec(text)?.[1];
  const codename = field('VERSION_CODENAME');
  if (field('ID') !== 'debian' || !codename) {
    throw new FetchError('not-found', `cross compilers are fetched for Debian hosts only (${osRelease} says ID=${field('ID') ?? '?'}): install your distribution's aarch64/riscv64 cross gcc instead`);
  }
  return codename;
}

async function newestIn(apt: PrivateApt, pkg: string, suites: string[]): Promise<string> {
  const versions = (await availableVersions(apt, pkg)).filter((v) => suites.includes(v.suite)).map((v) => v.version);
  if (versions.length === 0) throw new FetchError('not-found', `${pkg} is not in Debian ${suites.join('/')}`);
  return versions.sort((a, b) => compareDebianVersions(b, a))[0];
}

/** gcc-<triplet> is a metapackage; the real compiler is its gcc-N-<triplet> dependency. */
async function crossPackages(apt: PrivateApt, triplet: string): Promise<string[]> {
  const meta = `gcc-${triplet}`;
  const real = (await dependsOf(apt, meta)).find((d) => new RegExp(`^gcc-\\d+-${triplet.replace(/[.]/g, '\\.')}$`).test(d));
  if (!real) throw new FetchError('not-found', `${meta} in Debian ${apt.suites.join('/')} depends on no gcc-N-${triplet}`);
  const major = /^gcc-(\d+)-/.exec(real)![1];
  return [real, `cpp-${major}-${triplet}`, `binutils-${triplet}`];
}

function sharedLibraryDirs(root: string): string[] {
  const lib = join(root, 'usr', 'lib');
  if (!existsSync(lib)) return [];
  return readdirSync(lib)
    .map((d) => join(lib, d))
    .filter((d) => statSync(d).isDirectory() && readdirSync(d).some((f) => /\.so(\.|$)/.test(f)));
}

function findTool(root: string, triplet: string, tool: string): string {
  const bin = join(root, 'usr', 'bin');
  const names = existsSync(bin) ? readdirSync(bin) : [];
  // gcc is versioned (aarch64-linux-gnu-gcc-12); binutils are not.
  const name = names.find((n) => n === `${triplet}-${tool}`) ?? names.find((n) => new RegExp(`^${triplet}-${tool}-\\d+$`).test(n));
  if (!name) throw new FetchError('extract', `the ${triplet} packages hold no ${triplet}-${tool}`);
  return join(bin, name);
}

function writeWrappers(root: string, triplet: string): void {
  const libraryPath = sharedLibraryDirs(root).join(':');
  mkdirSync(join(root, 'bin'), { recursive: true });
  for (const tool of CROSS_TOOLS) {
    const wrapper = join(root, 'bin', `${triplet}-${tool}`);
    // The final path is not known yet (the tree is renamed into place): resolve it from the wrapper.
    const target = findTool(root, triplet, tool).slice(root.length);
    const libs = libraryPath.split(':').filter(Boolean).map((d) => `$here${d.slice(root.length)}`).join(':');
    writeFileSync(
      wrapper,
      `#!/bin/sh\nhere=$(cd "$(dirname "$0")/.." && pwd)\nLD_LIBRARY_PATH="${libs}\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here${target}" "$@"\n`,
    );
    chmodSync(wrapper, 0o755);
  }
}

/** Compiles one declaration with the unpacked compiler, so a toolchain that cannot run here is never cached. */
function smokeTest(root: string, triplet: string): void {
  const dir = mkdtempSync(join(root, '.smoke-'));
  try {
    writeFileSync(join(dir, 't.c'), 'struct s { char c; long l; }; int probe[sizeof(struct s)];\n');
    const cc = spawnSync(join(root, 'bin', `${triplet}-gcc`), ['-nostdinc', '-c', join(dir, 't.c'), '-o', join(dir, 't.o')], { encoding: 'utf8' });
    const oc = cc.status === 0 ? spawnSync(join(root, 'bin', `${triplet}-objcopy`), ['-O', 'binary', join(dir, 't.o'), join(dir, 't.bin')], { encoding: 'utf8' }) : cc;
    if (oc.status !== 0) {
      const why = `${oc.stderr ?? ''}${oc.error?.message ?? ''}`.trim().split('\n')[0];
      throw new FetchError('extract', `the unpacked ${triplet} cross gcc does not run on this host: ${why}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface CrossGccResult {
  triplet: string;
  dir: string;
  packages: string[];
  source: 'cached' | 'downloaded';
}

/** The toolchain a previous fetch left in the cache, if it is complete. */
export function cachedCrossGcc(triplet: string): CrossGccResult | undefined {
  if (!cachedCrossTool(triplet, 'gcc')) return undefined;
  const dir = crossGccDir(triplet);
  const manifest = JSON.parse(readFileSync(join(dir, 'toolchain.json'), 'utf8')) as { packages: string[] };
  return { triplet, dir, packages: manifest.packages, source: 'cached' };
}

/**
 * Makes `<cache>/toolchains/<triplet>/bin/<triplet>-{gcc,objcopy,nm}` work, downloading the host
 * release's cross packages once. `apt` must carry the host's release suites.
 */
export async function fetchCrossGcc(apt: PrivateApt, triplet: string): Promise<CrossGccResult> {
  const cached = cachedCrossGcc(triplet);
  if (cached) return cached;
  const dir = crossGccDir(triplet);
  mkdirSync(join(dir, '..'), { recursive: true });
  const staging = mkdtempSync(`${dir}.staging-`);
  try {
    const packages: string[] = [];
    for (const pkg of await crossPackages(apt, triplet)) {
      const version = await newestIn(apt, pkg, apt.suites);
      const debs = join(staging, '.debs');
      mkdirSync(debs, { recursive: true });
      await aptDownload(apt, pkg, version, debs);
      for (const deb of readdirSync(debs)) await extractDeb(join(debs, deb), staging);
      rmSync(debs, { recursive: true, force: true });
      packages.push(`${pkg}=${version}`);
    }
    // Documentation and translations never run.
    rmSync(join(staging, 'usr', 'share'), { recursive: true, force: true });
    writeWrappers(staging, triplet);
    smokeTest(staging, triplet);
    writeFileSync(join(staging, 'toolchain.json'), `${JSON.stringify({ triplet, packages }, null, 2)}\n`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(staging, dir);
    return { triplet, dir, packages, source: 'downloaded' };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
