/**
 * The emulated machine's initramfs: busybox-static, the kernel's modules, init.sh and stage2.sh. It depends only
 * on the cached emulator and kernel, so it is built once; the command to run reaches the machine
 * through a script on the shared root, named on the kernel command line.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpioArchive, type CpioEntry } from './cpio.js';
import type { Emulator } from './emulator.js';
import type { TestbedKernel } from './kernel.js';
import { testbedCacheDir } from './paths.js';

const INIT = readFileSync(new URL('../src/init.sh', import.meta.url));
const STAGE2 = readFileSync(new URL('../src/stage2.sh', import.meta.url));

export function initramfsEntries(busybox: Buffer, kernel: TestbedKernel): CpioEntry[] {
  const dirs = new Set(['bin', 'dev', 'etc', 'etc/testbed', 'lib', 'newroot', 'proc', 'sys']);
  for (const m of kernel.modules) {
    const parts = m.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(join('lib', ...parts.slice(0, i)));
  }
  return [
    ...[...dirs].sort().map((path): CpioEntry => ({ kind: 'dir', path })),
    { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { kind: 'file', path: 'bin/busybox', data: busybox, mode: 0o755 },
    { kind: 'file', path: 'init', data: INIT, mode: 0o755 },
    { kind: 'file', path: 'etc/testbed/stage2.sh', data: STAGE2, mode: 0o755 },
    { kind: 'file', path: 'etc/testbed/modules', data: Buffer.from(kernel.modules.map((m) => `${m}\n`).join('')) },
    ...kernel.modules.map((m): CpioEntry => ({ kind: 'file', path: join('lib', m), data: readFileSync(join(kernel.dir, m)) })),
  ];
}

/** The cached initramfs for this emulator and kernel, built when either changed. */
export function initramfs(emulator: Emulator, kernel: TestbedKernel): string {
  const path = join(testbedCacheDir(), 'initramfs.cpio');
  const stamp = createHash('sha256').update(kernel.release).update(readFileSync(join(emulator.root, 'packages.txt'))).update(INIT).update(STAGE2).digest('hex');
  const stampPath = `${path}.stamp`;
  if (existsSync(path) && existsSync(stampPath) && readFileSync(stampPath, 'utf8') === stamp) return path;
  writeFileSync(`${path}.tmp`, cpioArchive(initramfsEntries(readFileSync(emulator.busybox), kernel)));
  renameSync(`${path}.tmp`, path);
  writeFileSync(stampPath, stamp);
  return path;
}
