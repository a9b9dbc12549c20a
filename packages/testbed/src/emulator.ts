/**
 * QEMU and busybox from Debian, unpacked into the user cache without root: a private apt resolves
 * what the host lacks (its dpkg status says what it has), `apt-get download` fetches exactly those,
 * and `dpkg-deb -x` unpacks them into one tree that QEMU runs from with LD_LIBRARY_PATH.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { aptDownload, aptUpdate, availableVersions, compareDebianVersions, extractDeb, FetchError, firstErrorLine, hostDebianRelease, privateApt, runTool, type PrivateApt } from '@kvm-ts/abi/debian';
import { testbedCacheDir } from './paths.js';

export const EMULATOR_PACKAGES = ['qemu-system-x86', 'busybox-static'];
const QEMU = 'usr/bin/qemu-system-x86_64';
const BUSYBOX = 'bin/busybox';
const HOST_STATUS = '/var/lib/dpkg/status';

export interface Emulator {
  root: string;
  qemu: string;
  busybox: string;
  /** Where QEMU finds its firmware (-L). */
  firmwareDirs: string[];
  env: NodeJS.ProcessEnv;
}

export function emulatorRoot(): string {
  return join(testbedCacheDir(), 'emulator');
}

function emulatorAt(root: string): Emulator | undefined {
  const qemu = join(root, QEMU);
  const busybox = join(root, BUSYBOX);
  if (!existsSync(qemu) || !existsSync(busybox) || !existsSync(join(root, 'packages.txt'))) return undefined;
  const libs = ['usr/lib/x86_64-linux-gnu', 'lib/x86_64-linux-gnu'].map((d) => join(root, d));
  const inherited = process.env.LD_LIBRARY_PATH ? [process.env.LD_LIBRARY_PATH] : [];
  return {
    root,
    qemu,
    busybox,
    firmwareDirs: ['usr/share/qemu', 'usr/share/seabios'].map((d) => join(root, d)).filter(existsSync),
    env: { ...process.env, LD_LIBRARY_PATH: [...libs, ...inherited].join(':') },
  };
}

/** The cached emulator, when an earlier start built it. */
export function cachedEmulator(): Emulator | undefined {
  return emulatorAt(emulatorRoot());
}

/**
 * What `apt-get install` would add to this host: the "Inst pkg (version …)" lines of a simulation
 * against the host's real dpkg status, so libraries the host has are not fetched again.
 */
export async function missingPackages(apt: PrivateApt, wanted: string[]): Promise<Array<{ pkg: string; version: string }>> {
  const status = existsSync(HOST_STATUS) ? HOST_STATUS : '/dev/null';
  const r = await runTool('apt-get', [...apt.options, '-o', `Dir::State::status=${status}`, '-s', '-q', 'install', '--no-install-recommends', ...wanted], { providedBy: 'apt', timeoutMs: 120_000 });
  if (r.code !== 0) throw new FetchError('not-found', `apt-get cannot resolve ${wanted.join(' ')}: ${firstErrorLine(r.stderr || r.stdout)}`);
  const found: Array<{ pkg: string; version: string }> = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) /.exec(line);
    if (m) found.push({ pkg: m[1].replace(/:amd64$/, ''), version: m[2] });
  }
  return found;
}

/** The cached emulator, else QEMU and busybox fetched and unpacked (one apt-get update). */
export async function fetchEmulator(log: (line: string) => void = () => {}): Promise<Emulator> {
  const cached = cachedEmulator();
  if (cached) return cached;
  const release = hostDebianRelease();
  const apt = privateApt([release, `${release}-updates`, `${release}-security`]);
  await aptUpdate(apt);
  const pkgs = await missingPackages(apt, EMULATOR_PACKAGES);
  // A host with QEMU installed still gets its own copy: the testbed never runs what it did not fetch.
  for (const pkg of EMULATOR_PACKAGES.filter((w) => !pkgs.some((p) => p.pkg === w))) {
    const version = (await availableVersions(apt, pkg)).map((v) => v.version).sort((a, b) => compareDebianVersions(b, a))[0];
    if (!version) throw new FetchError('not-found', `${pkg} is not in Debian ${apt.suites.join('/')}`);
    pkgs.push({ pkg, version });
  }
  const root = emulatorRoot();
  mkdirSync(dirname(root), { recursive: true });
  const work = mkdtempSync(`${root}.staging-`);
  try {
    const debs = join(work, '.debs');
    mkdirSync(debs);
    log(`downloading ${pkgs.length} Debian packages (${EMULATOR_PACKAGES.join(', ')} and what this host lacks of their dependencies)`);
    for (const { pkg, version } of pkgs) await aptDownload(apt, pkg, version, debs);
    for (const deb of readdirSync(debs)) await extractDeb(join(debs, deb), work);
    rmSync(debs, { recursive: true });
    writeFileSync(join(work, 'packages.txt'), pkgs.map((p) => `${p.pkg}=${p.version}\n`).join(''));
    if (!emulatorAt(work)) {
      throw new FetchError('extract', `the unpacked packages hold no /${QEMU} or /${BUSYBOX} (is qemu-system-x86 installed on the host? the testbed uses its own copy)`);
    }
    rmSync(root, { recursive: true, force: true });
    // Renamed last, so an interrupted fetch never leaves half a tree at the well-known path.
    renameSync(work, root);
    return emulatorAt(root)!;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** "qemu-system-x86=1:7.2+dfsg-7+deb12u18, …" of the cached tree, for logs and docs. */
export function emulatorPackages(e: Emulator): string[] {
  return readFileSync(join(e.root, 'packages.txt'), 'utf8').split('\n').filter((l) => /^(qemu-system-x86|busybox-static)=/.test(l));
}
