/**
 * Downloads the test kernel (test-kernel.ts) without installing anything: apt runs privately on this
 * machine's Debian mirror (@kvm-ts/abi/debian) and only /boot/vmlinuz-* is unpacked from the package.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { aptDownload, aptUpdate, extractDebMembers, FetchError, KERNEL_SUITES, newestKernelPackage, privateApt } from '@kvm-ts/abi/debian';
import { testKernelCachePath } from './test-kernel.js';

export interface FetchedKernel {
  path: string;
  /** "6.1.0-56-amd64 (linux-image-…_amd64.deb)", or undefined when it was already there. */
  downloaded?: string;
}

/** The cached kernel, else a download of the newest bookworm linux-image-<abi>-amd64. */
export async function fetchTestKernel(): Promise<FetchedKernel> {
  const override = process.env.KVM_TS_TEST_KERNEL;
  if (override) {
    if (!existsSync(override)) throw new FetchError('not-found', `KVM_TS_TEST_KERNEL=${override} does not exist`);
    return { path: override };
  }
  const target = testKernelCachePath();
  if (existsSync(target)) return { path: target };

  const apt = privateApt(KERNEL_SUITES);
  await aptUpdate(apt);
  const { pkg: newest, version } = await newestKernelPackage(apt);

  const dir = dirname(target);
  mkdirSync(dir, { recursive: true });
  const work = mkdtempSync(join(dir, 'dl-'));
  try {
    await aptDownload(apt, newest, version, work);
    const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
    if (!deb) throw new FetchError('not-found', `apt-get download ${newest} produced no .deb`);
    await extractDebMembers(join(work, deb), work, ['./boot/vmlinuz-*']);
    const kernel = readdirSync(join(work, 'boot')).find((f) => f.startsWith('vmlinuz-'));
    if (!kernel) throw new FetchError('extract', `${deb} holds no /boot/vmlinuz-*`);
    copyFileSync(join(work, 'boot', kernel), `${target}.tmp`);
    // Rename last, so an interrupted fetch never leaves a partial kernel at the well-known path.
    renameSync(`${target}.tmp`, target);
    const downloaded = `${kernel.slice('vmlinuz-'.length)} (${deb})`;
    writeFileSync(join(dir, 'vmlinuz.version'), `${downloaded}\n`);
    return { path: target, downloaded };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
