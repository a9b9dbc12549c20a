import { availableVersions, packageNames, type PrivateApt } from './apt.js';
import { compareDebianVersions } from './debversion.js';
import { FetchError } from './errors.js';

/** Bookworm's kernel is the one docs/verified-hosts.md reports on; its security updates are newest. */
export const KERNEL_SUITES = ['bookworm', 'bookworm-updates', 'bookworm-security'];

function kernelAbi(pkg: string): string | undefined {
  return /^linux-image-(\d+\.\d+\.\d+-\d+)-amd64$/.exec(pkg)?.[1];
}

/** The newest linux-image-<abi>-amd64 the private lists know, and its newest version. */
export async function newestKernelPackage(apt: PrivateApt): Promise<{ pkg: string; version: string }> {
  const pkg = (await packageNames(apt, 'linux-image-'))
    .filter((n) => kernelAbi(n) !== undefined)
    .sort((a, b) => compareDebianVersions(kernelAbi(b)!, kernelAbi(a)!))[0];
  if (!pkg) throw new FetchError('not-found', `no linux-image-<version>-amd64 package in Debian ${apt.suites.join('/')}`);
  const version = (await availableVersions(apt, pkg)).map((v) => v.version).sort((a, b) => compareDebianVersions(b, a))[0];
  if (!version) throw new FetchError('not-found', `apt-cache knows no version of ${pkg}`);
  return { pkg, version };
}
