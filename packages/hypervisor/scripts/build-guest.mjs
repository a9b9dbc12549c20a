// Builds the built-in test guest (guest/*.c, guest/*.S) into guest/build/guest.elf with the system
// gcc: a freestanding static ELF64 linked at 2 MiB, booted by the loader like a vmlinux.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const guestDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'guest');
const buildDir = join(guestDir, 'build');
const cc = process.env.CC || 'gcc';

const probe = spawnSync(cc, ['--version'], { encoding: 'utf8' });
if (probe.error || probe.status !== 0) {
  console.error(`kvm-ts: cannot build the test guest: C compiler "${cc}" not found (install gcc, e.g. apt-get install gcc)`);
  process.exit(1);
}

const cflags = [
  '-std=gnu11', '-O2', '-Wall', '-Wextra', '-Werror',
  '-ffreestanding', '-fno-builtin', '-nostdlib', '-static', '-fno-pic', '-fno-pie', '-no-pie',
  '-fno-stack-protector', '-fno-asynchronous-unwind-tables', '-fno-unwind-tables',
  // No SSE/x87 state: nobody set up CR4.OSFXSR for us, and ring-0 FPU work is costly where ring 0 is emulated.
  '-mgeneral-regs-only', '-mno-red-zone', '-mcmodel=small', '-m64',
];
const ldflags = [
  '-Wl,-T,' + join(guestDir, 'linker.ld'), '-Wl,--build-id=none', '-Wl,-z,max-page-size=4096',
  '-Wl,-z,noexecstack', '-Wl,--no-warn-rwx-segments',
];
mkdirSync(buildDir, { recursive: true });
const out = join(buildDir, 'guest.elf');
const args = [...cflags, ...ldflags, '-o', out, ...['start.S', 'main.c', 'virtio.c', 'net.c', 'pci.c', 'acpi.c'].map((f) => join(guestDir, f))];
const r = spawnSync(cc, args, { stdio: 'inherit' });
if (r.status !== 0) {
  console.error(`kvm-ts: building the test guest failed (${cc} exited with ${r.status ?? r.signal})`);
  process.exit(1);
}
console.log(`kvm-ts: built ${out}`);
