/**
 * A stock Debian kernel (the fetch step of @kvm-ts/hypervisor caches it) booted by the real
 * `kvm-cli run`, each run stopped with SIGTERM as soon as what it looks for is seen:
 * - it prints "Linux version" and then echoes our parameters on "Kernel command line:"
 *   (start_kernel, right after setup_arch) — any /dev/kvm, kvm_pvm included;
 * - it unpacks our initramfs and runs its /init (a static busybox) as pid 1 — only a /dev/kvm that
 *   can boot Linux (kvm_pvm dies at the int3 self-test first), so CI runs it in the testbed there.
 *
 * On the nested kvm_pvm host guest ring 0 is emulated (~1 µs per instruction), so even the first
 * takes 30–65 s: clearing the kernel's 17.8 MB BSS with `rep stosb` (silent), then setup_arch, whose
 * last step (unwind_init's ORC lookup table) is another silent ~20 s. See docs/verified-hosts.md.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { cachedTestKernel, testKernelCachePath } from '@kvm-ts/hypervisor';
import { busyboxInitramfs, cachedKernel, cpioArchive } from '@kvm-ts/testbed';
import { testBusybox } from '../../hypervisor/src/test-tools.js';
import { inTestbed } from '@kvm-ts/testbed/needs';
import { kvmTests, scaled } from './helpers/kvm.js';

/** The built bin, as users and CI run it (turbo builds before testing). */
const BIN = fileURLToPath(new URL('../bin/kvm-cli.js', import.meta.url));
/** What the proof asks for; the CLI prepends its Linux defaults. */
const PARAMS = 'console=ttyS0 earlyprintk=serial clearcpuid=cx16,xsave noxsave';
/** memmap init is proportional to RAM (~2 s per 128 MiB here); the kernel image alone needs ~70 MiB. */
const MEM = '128M';
/** The VM's own limit (kvm-cli --timeout), and the test's hard cap just above it. */
const VM_TIMEOUT_S = scaled(150);
const HARD_CAP_MS = (VM_TIMEOUT_S + 15) * 1000;
/** After SIGTERM, the CLI must stop the vCPUs and exit within this. */
const STOP_GRACE_MS = scaled(10_000);

const kernel = cachedTestKernel();
const noKernel = kernel ? undefined : `no test kernel at ${process.env.KVM_TS_TEST_KERNEL || testKernelCachePath()} (npm run fetch downloads it)`;
const busybox = testBusybox();
const noBusybox = busybox ? undefined : 'no static busybox in the user cache (npm run fetch unpacks busybox-static)';

const anyKvm = kvmTests('stock kernel boot');
const bootingKvm = kvmTests('stock kernel to /init', { need: 'linux' });

/** A newc initramfs: busybox as /bin/busybox, `init` as /init, and kernel modules under /lib. */
function initramfs(dir: string, init: string, modules?: { root: string; files: string[] }): string {
  const path = join(dir, 'initrd.cpio');
  writeFileSync(path, cpioArchive(busyboxInitramfs({ busybox: readFileSync(busybox!), init: Buffer.from(init), modules })));
  return path;
}

interface Boot {
  /** A line the run must print; the VM is stopped once it has. */
  until: RegExp;
  args: string[];
}

interface BootResult {
  out: string;
  match?: RegExpExecArray;
  code: number | null;
  err: string;
  /** Why no line matched, for the test's failure message. */
  failure?: string;
}

/** Runs kvm-cli until `until` matches a complete line, then stops it with SIGTERM; returns what it printed. */
async function bootOnce(t: ExecutionContext, b: Boot, vmlinuz: string): Promise<BootResult> {
  t.timeout(HARD_CAP_MS + STOP_GRACE_MS + 5000, 'the hard cap did not end the run');
  const started = performance.now();
  const secs = () => ((performance.now() - started) / 1000).toFixed(1);
  const child = spawn(process.execPath, [BIN, 'run', '-k', vmlinuz, '-m', MEM, '--timeout', String(VM_TIMEOUT_S), ...b.args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString('latin1')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  let versionAt: string | undefined;
  let match: RegExpExecArray | undefined;
  await new Promise<void>((resolve) => {
    const cap = setTimeout(resolve, HARD_CAP_MS);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      if (versionAt === undefined && /Linux version \d/.test(out)) versionAt = secs();
      // Only a complete line: the kernel prints it in one printk, but our reads may split it.
      match ??= b.until.exec(out) ?? undefined;
      if (match) {
        clearTimeout(cap);
        resolve();
      }
    });
    void exited.then(() => {
      clearTimeout(cap);
      resolve();
    });
  });
  const seenAt = secs();
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  const { code, signal } = await exited;
  clearTimeout(killer);
  if (match) {
    t.log(`"Linux version" at ${versionAt} s, ${b.until} at ${seenAt} s, stopped at ${secs()} s`);
    return { out, match, code, err };
  }
  const lastLines = out.split(/\r?\n/).filter((l) => l.trim() !== '').slice(-15).join('\n');
  const failure =
    `no line matching ${b.until} after ${seenAt} s (kvm-cli exit ${code ?? signal}; "Linux version" ${versionAt ? `at ${versionAt} s` : 'never seen'}).\n` +
    `(docs/verified-hosts.md, "Stock Debian kernel": ~60 s is normal on kvm_pvm, two silent stretches included)\n` +
    `last console lines:\n${lastLines}\nkvm-cli stderr:\n${err.trim().split('\n').slice(-5).join('\n')}`;
  return { out, code, err, failure };
}

/**
 * In the testbed, a run that ends in a triple fault is run once more: QEMU 7.2's TCG emulation of
 * nested SVM now and then faults a stock kernel (both times seen: in early boot, before any device
 * of ours was touched; docs/testbed.md, "When the nested guest faults"). Logged, never hidden; a
 * second fault, or any other failure, fails the test. `failure` says why a run failed, if it did.
 */
async function onceMoreAfterTripleFault<R extends { err: string }>(t: ExecutionContext, run: () => Promise<R>, failure: (r: R) => string | undefined): Promise<R> {
  const first = await run();
  const why = failure(first);
  if (!why || !inTestbed() || !first.err.includes('KVM_EXIT_SHUTDOWN')) return first;
  t.log(`the first run ended in a triple fault, running once more (the emulated machine's fault, docs/testbed.md):\n${why}`);
  return run();
}

/** One boot to a line (see bootOnce), failing the test if it never came. */
async function boot(t: ExecutionContext, b: Boot, vmlinuz = kernel!): Promise<BootResult> {
  const result = await onceMoreAfterTripleFault(t, () => bootOnce(t, b, vmlinuz), (r) => r.failure);
  if (result.failure) t.fail(result.failure);
  return result;
}

anyKvm(
  'a stock Debian kernel prints "Linux version" and echoes our parameters on "Kernel command line:"',
  async (t) => {
    const { out, match, code, err } = await boot(t, { until: /Kernel command line: ([^\r\n]*)\r?\n/, args: ['-p', PARAMS] });
    if (!match) return;
    const versionIdx = out.search(/Linux version \d/);
    t.true(versionIdx >= 0, 'a "Linux version" line before "Kernel command line:"');
    t.true(versionIdx < out.indexOf('Kernel command line:'), '"Linux version" comes first');
    t.true(match[1].trimEnd().endsWith(` ${PARAMS}`), `the kernel echoes our parameters: got "${match[1]}"`);
    // Stopped by us, promptly and cleanly: the CLI's SIGTERM path (128 + 15), not its timeout (124) or a kill.
    t.is(code, 143, `kvm-cli exit ${code}; stderr: ${err}`);
  },
  noKernel,
);

/** /init as pid 1 says who it is, in one line the test can check against the kernel's own banner. */
const INIT = `#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
echo "kvm-ts-init: pid $$, kernel $(/bin/busybox uname -r), $(/bin/busybox grep -c ^processor /proc/cpuinfo) cpus, cmdline $(/bin/busybox cat /proc/cmdline)"
exec /bin/busybox sleep 100000
`;

bootingKvm(
  'a stock Debian kernel unpacks our initramfs and runs its /init as pid 1 on 2 vCPUs',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-initrd-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const initrd = initramfs(dir, INIT);
    const { out, match, code, err } = await boot(t, { until: /kvm-ts-init: ([^\r\n]*)\r?\n/, args: ['-i', initrd, '-c', '2', '-p', 'console=ttyS0 kvmts.marker=1'] });
    if (!match) return;
    const release = /Linux version (\S+)/.exec(out)?.[1];
    t.regex(match[1], /^pid 1, /, 'our /init is pid 1');
    t.true(release !== undefined && match[1].includes(`kernel ${release},`), `uname -r is the banner's ${release}: ${match[1]}`);
    t.regex(match[1], /, 2 cpus,/, 'both vCPUs came up');
    t.regex(match[1], /cmdline .*kvmts\.marker=1/, 'our parameters reach /proc/cmdline');
    t.is(code, 143, `kvm-cli exit ${code}; stderr: ${err}`);
  },
  noKernel ?? noBusybox,
);


const testbedKernel = cachedKernel();
const noGuestModules = testbedKernel ? undefined : "no Debian kernel with its virtio modules in the testbed's cache (npm run testbed -- --fetch)";
const PATTERN = 'kvm-ts wrote this through Linux virtio_blk';

/** The NIC's address, which Linux's virtio_net must read from the device's config space. */
const MAC = '52:54:00:4b:56:4d';

/** Loads Debian's own virtio drivers, then reports what they found in one line the test parses. */
const DRIVERS_INIT = (modules: string[]) => `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in ${modules.join(' ')}; do insmod /lib/$m || echo "kvm-ts-linux: insmod $m failed"; done
for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/vda ] && [ -e /sys/class/misc/hw_random/rng_current ] && [ -e /sys/class/net/eth0 ] && break; sleep 1; done
printf '%s' '${PATTERN}' | dd of=/dev/vda bs=512 seek=8 conv=fsync 2>/dev/null
drivers=$(for d in /sys/bus/virtio/devices/*; do echo "$(cat $d/device):$(basename $(readlink $d/driver))"; done | sort | tr '\\n' ,)
rng=$(cat /sys/class/misc/hw_random/rng_current)
bytes=$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | od -An -tx1 | tr -d ' \\n')
msi=$(grep -c 'PCI-MSI.*virtio' /proc/interrupts)
parents=$(for d in /sys/bus/virtio/devices/*; do echo "$(basename $(readlink -f $d/../subsystem))/$(basename $(readlink -f $d/..))"; done | sort | tr '\\n' ,)
echo "kvm-ts-linux: drivers=$drivers vda=$(cat /sys/block/vda/size) rng=$rng bytes=$bytes msi=$msi mac=$(cat /sys/class/net/eth0/address) parents=$parents"
exec sleep 100000
`;

/**
 * On pci, Linux enumerates the bus and takes MSI-X: one vector for config changes and one per queue
 * (blk 1, rng 1, net rx and tx). On mmio, it finds the windows only through the DSDT's LNRO0005
 * devices (Debian's kernel ignores virtio_mmio.device=), so the parents are ACPI platform devices.
 */
const TRANSPORTS = {
  pci: { msi: '7', parent: /^pci\/0000:00:[0-9a-f]{2}\.0$/ },
  mmio: { msi: '0', parent: /^platform\/LNRO0005:[0-9a-f]{2}$/ },
} as const;

for (const [transport, expect] of Object.entries(TRANSPORTS)) {
  bootingKvm(
    `a stock Debian kernel's own virtio drivers drive our virtio-${transport} blk, rng and net devices${transport === 'pci' ? ' by MSI-X' : ', found through the ACPI DSDT'}`,
    async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-linux-virtio-'));
      t.teardown(() => rmSync(dir, { recursive: true, force: true }));
      const k = testbedKernel!;
      const initrd = initramfs(dir, DRIVERS_INIT(k.guestModules), { root: k.dir, files: k.guestModules });
      const disk = join(dir, 'disk.img');
      writeFileSync(disk, Buffer.alloc(8 * 2 ** 20));
      // A listening socket with no peer: the NIC exists, and what it sends goes nowhere.
      const net = `mode=socket,path=${join(dir, 'net.sock')},listen,mac=${MAC}`;
      const { match, code, err } = await boot(
        t,
        { until: /kvm-ts-linux: ([^\r\n]*)\r?\n/, args: ['-i', initrd, '-c', '2', '--transport', transport, '-d', disk, '--rng', '-n', net, '-p', 'console=ttyS0 loglevel=4'] },
        k.vmlinuz,
      );
      if (!match) return;
      t.log(match[1]);
      const f = Object.fromEntries(match[1].split(' ').map((kv) => kv.split('=') as [string, string]));
      t.is(f.drivers, '0x0001:virtio_net,0x0002:virtio_blk,0x0004:virtio_rng,', `Linux bound its drivers to our devices: ${match[1]}`);
      const parents = f.parents.split(',').filter((p) => p !== '');
      t.is(parents.length, 3, `three virtio devices: ${match[1]}`);
      for (const p of parents) t.regex(p, expect.parent, `each device sits on ${transport}: ${match[1]}`);
      t.is(f.vda, String((8 * 2 ** 20) / 512), "vda has the image's size in 512-byte sectors");
      t.is(f.rng, 'virtio_rng.0', 'virtio_rng is the current hwrng');
      t.regex(f.bytes, /^[0-9a-f]{64}$/, '32 bytes read from /dev/hwrng');
      t.notRegex(f.bytes, /^(00)+$/, 'and not all zero');
      t.is(f.mac, MAC, "eth0 has the MAC from the net device's config space");
      t.is(f.msi, expect.msi, 'PCI-MSI interrupts of the virtio devices');
      t.is(code, 143, `kvm-cli exit ${code}; stderr: ${err}`);
      t.is(readFileSync(disk).subarray(8 * 512, 8 * 512 + PATTERN.length).toString(), PATTERN, 'what the guest wrote to vda is in the image at sector 8');
    },
    noBusybox ?? noGuestModules,
  );
}

/** /init that reports which ACPI tables the kernel found, then powers off or reboots at once (no init system to ask). */
const ACPI_INIT = (how: 'poweroff' | 'reboot') => `#!/bin/busybox sh
/bin/busybox mount -t sysfs sys /sys
echo "kvm-ts-acpi: tables $(/bin/busybox ls /sys/firmware/acpi/tables | /bin/busybox tr '\\n' ' ')"
exec /bin/busybox ${how} -f
`;

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  summary?: { exitReason: string; status: number };
  /** The console, and kvm-cli's own messages after it. */
  err: string;
}

/** Runs kvm-cli --json until it exits on its own (the guest ends the run); the console is its stderr then. */
async function runOnceToEnd(t: ExecutionContext, args: string[]): Promise<RunResult> {
  t.timeout(HARD_CAP_MS + STOP_GRACE_MS + 5000, 'the hard cap did not end the run');
  const child = spawn(process.execPath, [BIN, 'run', '-k', kernel!, '-m', MEM, '--timeout', String(VM_TIMEOUT_S), '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString('latin1')));
  child.stderr.on('data', (d: Buffer) => (err += d.toString('latin1')));
  const killer = setTimeout(() => child.kill('SIGKILL'), HARD_CAP_MS + STOP_GRACE_MS);
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (c, sig) => resolve({ code: c, signal: sig })));
  clearTimeout(killer);
  const line = out.trim().split('\n').at(-1);
  let summary;
  try {
    summary = line ? (JSON.parse(line) as { exitReason: string; status: number }) : undefined;
  } catch {
    t.log(`stdout is not a JSON summary: ${out.slice(-500)}`);
  }
  return { code, signal, summary, err };
}

/** runOnceToEnd, once more after a triple fault in the testbed. */
function runToEnd(t: ExecutionContext, args: string[]): Promise<RunResult> {
  return onceMoreAfterTripleFault(t, () => runOnceToEnd(t, args), (r) => (r.code === 0 ? undefined : `kvm-cli exit ${r.code ?? r.signal}: ${r.err.trim().split('\n').slice(-5).join('\n')}`));
}

for (const [how, transport] of [
  ['poweroff', 'pci'],
  ['reboot', 'mmio'],
] as const) {
  bootingKvm(
    `a stock Debian kernel finds our ACPI tables (${transport}) and \`${how} -f\` ends kvm-cli with exit 0 and exitReason "${how}"`,
    async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-acpi-'));
      t.teardown(() => rmSync(dir, { recursive: true, force: true }));
      const initrd = initramfs(dir, ACPI_INIT(how));
      const r = await runToEnd(t, ['-i', initrd, '-c', '2', '--transport', transport, '-p', 'console=ttyS0']);
      const tail = r.err.split(/\r?\n/).slice(-20).join('\n');
      t.is(r.code, 0, `kvm-cli exit ${r.code ?? r.signal}; console:\n${tail}`);
      t.is(r.summary?.exitReason, how, tail);
      t.is(r.summary?.status, 0);
      t.notRegex(r.err, /Kernel command line:[^\n]*acpi=off/, 'ACPI is on by default');
      // Linux lists every table it found at boot: "ACPI: FACP 0x00000000000E01A0 000114 (v06 KVMTS  KVMTSFAC …)".
      for (const sig of ['RSDP', 'XSDT', 'FACP', 'DSDT', 'APIC', ...(transport === 'pci' ? ['MCFG'] : [])]) {
        t.regex(r.err, new RegExp(`ACPI: ${sig} 0x[0-9A-F]+ [0-9A-F]+ \\(v\\d\\d KVMTS`), `the kernel found ${sig}`);
      }
      // The FACS has no common header, so no OEM id: "ACPI: FACS 0x00000000000E0040 000040".
      t.regex(r.err, /ACPI: FACS 0x[0-9A-F]+ 000040\r?$/m, 'the kernel found FACS');
      t.regex(r.err, /kvm-ts-acpi: tables .*APIC.*DSDT.*FACP/, '/sys/firmware/acpi/tables lists them');
      if (how === 'poweroff') t.regex(r.err, /reboot: Power down/);
      else t.regex(r.err, /reboot: Restarting system/);
    },
    noKernel ?? noBusybox,
  );
}
