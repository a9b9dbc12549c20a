/**
 * Debian's own kernel for the emulated machine, and the handful of its modules the testbed loads:
 * the virtio-9p root, kvm_amd (QEMU's -cpu max emulates SVM), and what the network tests need. The
 * package is downloaded by name without its dependencies (they would drag in systemd and
 * initramfs-tools); only vmlinuz and the closure of the wanted modules are kept.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { aptDownload, aptUpdate, extractDebMembers, FetchError, KERNEL_SUITES, newestKernelPackage, privateApt } from '@kvm-ts/abi/debian';
import { testbedCacheDir } from './paths.js';

/** Loaded in this order's dependency closure before the root is mounted. */
export const WANTED_MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'kvm_amd', 'tun', 'vhost_net', 'veth', 'dummy'];
/**
 * Kept, not loaded: Linux's own virtio drivers, for the initramfs of a stock-kernel guest under
 * kvm-cli (the tests that check our devices against the drivers a distribution kernel brings).
 */
export const GUEST_MODULES = ['virtio_pci', 'virtio_mmio', 'virtio_blk', 'virtio_net', 'virtio_console', 'virtio_rng'];

export interface TestbedKernel {
  dir: string;
  vmlinuz: string;
  /** Module files relative to `dir`, dependencies first. */
  modules: string[];
  /** GUEST_MODULES and their dependencies, relative to `dir`, dependencies first. */
  guestModules: string[];
  /** "linux-image-6.1.0-57-amd64=6.1.176-1" */
  release: string;
}

export function kernelDir(): string {
  return join(testbedCacheDir(), 'kernel');
}

function kernelAt(dir: string): TestbedKernel | undefined {
  try {
    const manifest = JSON.parse(readFileSync(join(dir, 'kernel.json'), 'utf8')) as { release: string; modules: string[]; guestModules?: string[] };
    const all = [...manifest.modules, ...(manifest.guestModules ?? [])];
    if (!manifest.guestModules || !existsSync(join(dir, 'vmlinuz')) || !all.every((m) => existsSync(join(dir, m)))) return undefined;
    return { dir, vmlinuz: join(dir, 'vmlinuz'), modules: manifest.modules, guestModules: manifest.guestModules, release: manifest.release };
  } catch {
    return undefined;
  }
}

export function cachedKernel(): TestbedKernel | undefined {
  return kernelAt(kernelDir());
}

/** A module's name as modprobe spells it: dashes and underscores are the same. */
const moduleName = (file: string) => basename(file).replace(/\.ko$/, '').replace(/-/g, '_');

/** The `depends=` of a module's .modinfo: NUL-separated key=value strings. */
export function moduleDepends(ko: Buffer): string[] {
  const at = ko.indexOf('\0depends=');
  if (at < 0) return [];
  const start = at + '\0depends='.length;
  const value = ko.subarray(start, ko.indexOf(0, start)).toString('latin1');
  return value.split(',').filter(Boolean).map((n) => n.replace(/-/g, '_'));
}

/** `wanted` and everything they depend on, each after its dependencies. */
export function moduleLoadOrder(wanted: string[], byName: Map<string, string>, dependsOf: (file: string) => string[]): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, neededBy: string) => {
    const file = byName.get(name);
    if (!file) throw new FetchError('extract', `kernel module ${name}${neededBy ? ` (needed by ${neededBy})` : ''} is not in the kernel package (built in, or renamed?)`);
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') throw new FetchError('extract', `kernel module ${name} depends on itself`);
    state.set(name, 'visiting');
    for (const dep of dependsOf(file)) visit(dep, name);
    state.set(name, 'done');
    order.push(file);
  };
  for (const w of wanted) visit(w, '');
  return order;
}

function koFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...koFiles(path));
    else if (entry.isFile() && entry.name.endsWith('.ko')) out.push(path);
  }
  return out;
}

/** The cached kernel, else the newest bookworm linux-image-*-amd64 downloaded and trimmed. */
export async function fetchKernel(log: (line: string) => void = () => {}): Promise<TestbedKernel> {
  const cached = cachedKernel();
  if (cached) return cached;
  const apt = privateApt(KERNEL_SUITES);
  await aptUpdate(apt);
  const { pkg, version } = await newestKernelPackage(apt);
  const target = kernelDir();
  mkdirSync(dirname(target), { recursive: true });
  const work = mkdtempSync(`${target}.staging-`);
  try {
    log(`downloading ${pkg}=${version} (its vmlinuz and ${WANTED_MODULES.length} modules are kept)`);
    const unpacked = join(work, '.unpacked');
    mkdirSync(unpacked);
    await aptDownload(apt, pkg, version, unpacked);
    const deb = readdirSync(unpacked).find((f) => f.endsWith('.deb'));
    if (!deb) throw new FetchError('not-found', `apt-get download ${pkg}=${version} produced no .deb`);
    await extractDebMembers(join(unpacked, deb), unpacked, ['./boot/vmlinuz-*', './lib/modules/*']);
    const image = readdirSync(join(unpacked, 'boot')).find((f) => f.startsWith('vmlinuz-'));
    if (!image) throw new FetchError('extract', `${deb} holds no /boot/vmlinuz-*`);
    const byName = new Map(koFiles(join(unpacked, 'lib/modules')).map((f) => [moduleName(f), f]));
    if (byName.size === 0) throw new FetchError('extract', `${deb} holds no uncompressed /lib/modules/**/*.ko`);
    const keep = (wanted: string[]) =>
      moduleLoadOrder(wanted, byName, (f) => moduleDepends(readFileSync(f))).map((file) => {
        const rel = join('modules', relative(join(unpacked, 'lib/modules'), file));
        mkdirSync(dirname(join(work, rel)), { recursive: true });
        copyFileSync(file, join(work, rel));
        return rel;
      });
    const modules = keep(WANTED_MODULES);
    const guestModules = keep(GUEST_MODULES);
    copyFileSync(join(unpacked, 'boot', image), join(work, 'vmlinuz'));
    rmSync(unpacked, { recursive: true });
    const release = `${pkg}=${version}`;
    writeFileSync(join(work, 'kernel.json'), `${JSON.stringify({ release, modules, guestModules }, null, 2)}\n`);
    rmSync(target, { recursive: true, force: true });
    // Renamed last, so an interrupted fetch never leaves half a tree at the well-known path.
    renameSync(work, target);
    return kernelAt(target)!;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
