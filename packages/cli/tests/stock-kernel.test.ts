/**
 * A stock Debian kernel (the fetch step of @kvm-ts/hypervisor caches it) booted by
 * the real `kvm-cli run`: it must print "Linux version" and then echo our parameters on "Kernel
 * command line:" (start_kernel, right after setup_arch). The VM is stopped as soon as both are seen.
 *
 * On the nested kvm_pvm host guest ring 0 is emulated (~1 µs per instruction), so even this much
 * takes 30–65 s: clearing the kernel's 17.8 MB BSS with `rep stosb` (silent), then setup_arch, whose
 * last step (unwind_init's ORC lookup table) is another silent ~20 s. See docs/verified-hosts.md.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cachedTestKernel, testKernelCachePath } from '@kvm-ts/hypervisor';
import { kvmMissing } from './helpers/kvm.js';

/** The built bin, as users and CI run it (turbo builds before testing). */
const BIN = fileURLToPath(new URL('../bin/kvm-cli.js', import.meta.url));
/** What the proof asks for; the CLI prepends its Linux defaults. */
const PARAMS = 'console=ttyS0 earlyprintk=serial clearcpuid=cx16,xsave noxsave';
/** memmap init is proportional to RAM (~2 s per 128 MiB here); the kernel image alone needs ~70 MiB. */
const MEM = '128M';
/** The VM's own limit (kvm-cli --timeout), and the test's hard cap just above it. */
const VM_TIMEOUT_S = 150;
const HARD_CAP_MS = (VM_TIMEOUT_S + 15) * 1000;
/** After SIGTERM, the CLI must stop the vCPUs and exit within this. */
const STOP_GRACE_MS = 10_000;

const kernel = cachedTestKernel();
const inCi = process.env.CI === 'true' || process.env.CI === '1';
const expectedAt = process.env.KVM_TS_TEST_KERNEL || testKernelCachePath();
const skip = kvmMissing && !inCi
  ? 'skipped: /dev/kvm is absent on this host'
  : !kernel && !inCi
    ? `skipped: no test kernel at ${expectedAt} (npm run fetch downloads it)`
    : undefined;

const title = 'a stock Debian kernel prints "Linux version" and echoes our parameters on "Kernel command line:"';

if (skip) {
  test.skip(`${title} (${skip})`, () => {});
} else {
  test.serial(title, async (t) => {
    t.timeout(HARD_CAP_MS + STOP_GRACE_MS + 5000, 'the hard cap did not end the run');
    if (kvmMissing) {
      t.fail('CI=true but /dev/kvm is absent');
      return;
    }
    if (!kernel) {
      t.fail(`CI=true but there is no test kernel at ${expectedAt}: the fetch step before npm test failed`);
      return;
    }
    const started = performance.now();
    const secs = () => ((performance.now() - started) / 1000).toFixed(1);
    const child = spawn(process.execPath, [BIN, 'run', '-k', kernel, '-p', PARAMS, '-m', MEM, '--timeout', String(VM_TIMEOUT_S)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString('latin1')));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal })),
    );
    const lastLines = (n = 15) => out.split(/\r?\n/).filter((l) => l.trim() !== '').slice(-n).join('\n');

    let versionAt: string | undefined;
    let cmdline: string | undefined;
    const seen = new Promise<boolean>((resolve) => {
      const cap = setTimeout(() => resolve(false), HARD_CAP_MS);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString('latin1');
        if (versionAt === undefined && /Linux version \d/.test(out)) versionAt = secs();
        // Only a complete line: the kernel prints it in one printk, but our reads may split it.
        const m = /Kernel command line: ([^\r\n]*)\r?\n/.exec(out);
        if (m && cmdline === undefined) {
          cmdline = m[1];
          clearTimeout(cap);
          resolve(true);
        }
      });
      void exited.then(() => {
        clearTimeout(cap);
        resolve(cmdline !== undefined);
      });
    });

    const ok = await seen;
    const seenAt = secs();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    const { code, signal } = await exited;
    clearTimeout(killer);

    if (!ok) {
      t.fail(
        `no "Kernel command line:" after ${seenAt} s (kvm-cli exit ${code ?? signal}; "Linux version" ${versionAt ? `at ${versionAt} s` : 'never seen'}).\n` +
          `(docs/verified-hosts.md, "Stock Debian kernel": ~60 s is normal here, two silent stretches included)\n` +
          `last console lines:\n${lastLines()}\nkvm-cli stderr:\n${err.trim().split('\n').slice(-5).join('\n')}`,
      );
      return;
    }
    t.log(`"Linux version" at ${versionAt} s, "Kernel command line:" at ${seenAt} s, stopped at ${secs()} s`);
    const versionIdx = out.search(/Linux version \d/);
    t.true(versionIdx >= 0, `no "Linux version" line before "Kernel command line:":\n${lastLines()}`);
    t.true(versionIdx < out.indexOf('Kernel command line:'), '"Linux version" comes first');
    t.true(cmdline!.trimEnd().endsWith(` ${PARAMS}`), `the kernel echoes our parameters: got "${cmdline}"`);
    // Stopped by us, promptly and cleanly: the CLI's SIGTERM path (128 + 15), not its timeout (124) or a kill.
    t.is(code, 143, `kvm-cli exit ${code ?? signal}; stderr: ${err}`);
  });
}
