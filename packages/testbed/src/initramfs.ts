/**
 * The emulated machine's initramfs: busybox-static, the kernel's modules, init.sh and stage2.sh. The
 * command to run reaches the machine through a script on the shared root, named on the kernel
 * command line.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpioArchive, type CpioEntry } from './cpio.js';
import type { Emulator } from './emulator.js';
import type { TestbedKernel } from './kernel.js';
import { testbedCacheDir } from './paths.js';

const INIT = readFileSync(new URL('../src/init.sh', import.meta.url));
const STAGE2 = readFileSync(new URL('../src/stage2.sh', import.meta.url));

/** A busybox initramfs: /bin/busybox, /init, kernel modules under /lib, and any further files. */
export interface BusyboxInitramfs {
  busybox: Buffer;
  init: Buffer;
  /** Module files relative to `root` ("modules/6.1.0-57-amd64/kernel/…ko"), kept at /lib/<file>. */
  modules?: { root: string; files: string[] };
  files?: Array<{ path: string; data: Buffer; mode?: number }>;
}

/** Its entries, every parent directory first; also the stock-kernel tests' initramfs. */
export function busyboxInitramfs(spec: BusyboxInitramfs): CpioEntry[] {
  const modules = spec.modules ?? { root: '', files: [] };
  const files = [
    { path: 'bin/busybox', data: spec.busybox, mode: 0o755 },
    { path: 'init', data: spec.init, mode: 0o755 },
    ...(spec.files ?? []),
    ...modules.files.map((m) => ({ path: join('lib', m), data: readFileSync(join(modules.root, m)), mode: 0o644 })),
  ];
  const dirs = new Set(['bin', 'dev', 'proc', 'sys']);
  for (const f of files) {
    const parts = f.path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return [
    ...[...dirs].sort().map((path): CpioEntry => ({ kind: 'dir', path })),
    { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    ...files.map((f): CpioEntry => ({ kind: 'file', ...f })),
  ];
}

export function initramfsEntries(busybox: Buffer, kernel: TestbedKernel): CpioEntry[] {
  return busyboxInitramfs({
    busybox,
    init: INIT,
    modules: { root: kernel.dir, files: kernel.modules },
    files: [
      { path: 'etc/testbed/stage2.sh', data: STAGE2, mode: 0o755 },
      { path: 'etc/testbed/modules', data: Buffer.from(kernel.modules.map((m) => `${m}\n`).join('')) },
    ],
  });
}

/**
 * The initramfs for this emulator and kernel, rewritten only when its bytes change: building it
 * in memory takes milliseconds, and comparing the bytes needs no stamp that could go stale.
 */
export function initramfs(emulator: Emulator, kernel: TestbedKernel): string {
  const path = join(testbedCacheDir(), 'initramfs.cpio');
  const archive = cpioArchive(initramfsEntries(readFileSync(emulator.busybox), kernel));
  if (existsSync(path) && readFileSync(path).equals(archive)) return path;
  // A private temporary name, then rename: two testbeds starting at once never read half a file.
  writeFileSync(`${path}.${process.pid}.tmp`, archive);
  renameSync(`${path}.${process.pid}.tmp`, path);
  return path;
}
