import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withoutNoNetworkLine } from './helpers/no-network.js';
import { kvmTests, scaled } from './helpers/kvm.js';

/** The real command: the built bin, as users and CI run it (turbo builds before testing). */
const BIN = fileURLToPath(new URL('../bin/kvm-cli.js', import.meta.url));
const kvm = kvmTests('VM runs');

function cli(args: string[], timeoutMs = 60_000) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, signal: r.signal };
}

function oneLineError(t: import('ava').ExecutionContext, r: ReturnType<typeof cli>, pattern: RegExp) {
  t.is(r.status, 2, r.stderr);
  t.is(r.stdout, '');
  const lines = r.stderr.trimEnd().split('\n');
  t.is(lines.length, 1, r.stderr);
  t.regex(lines[0], pattern);
  t.notRegex(r.stderr, /\n\s+at /, 'no stack trace');
}

test('wrong flags and inputs are one line and exit 2', (t) => {
  oneLineError(t, cli(['run', '--bogus']), /^kvm-cli: unknown option '--bogus'/);
  oneLineError(t, cli(['run', '-c', '0']), /--cpus: at least 1/);
  oneLineError(t, cli(['run', '-c', 'two']), /--cpus: 'two' is not a whole number/);
  oneLineError(t, cli(['run', '-m', 'lots']), /--mem: 'lots' is not a size/);
  oneLineError(t, cli(['run', '-m', '1M']), /--mem: 1M is too small/);
  oneLineError(t, cli(['run', '-m', '1000000G']), /--mem: 1000000G is more than this host/);
  oneLineError(t, cli(['run', '-m', '5K']), /4 KiB pages/);
  oneLineError(t, cli(['run', '--timeout=-3']), /--timeout: '-3' is not a positive number/);
  oneLineError(t, cli(['run', '--timeout', '0']), /--timeout: '0' is not a positive number/);
  oneLineError(t, cli(['run', '--console', 'tty']), /--console: 'serial' or 'virtio', got 'tty'/);
  oneLineError(t, cli(['run', '-k', '/nonexistent/vmlinuz']), /--kernel: \/nonexistent\/vmlinuz: no such file/);
  oneLineError(t, cli(['run', 'extra']), /unexpected argument 'extra'/);
});

kvm('a kernel that is not a kernel, and too many vCPUs, are one-line usage errors', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-run-'));
  try {
    const junk = join(dir, 'junk');
    writeFileSync(junk, 'not a kernel image at all, just text\n'.repeat(64));
    oneLineError(t, cli(['run', '-k', junk]), /--kernel: .*(ELF|bzImage)/);
    oneLineError(t, cli(['run', '-c', '100000']), /cpus must be between 1 and \d+/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const cpus of [1, 4]) {
  kvm(`the built-in guest boots on ${cpus} vCPU(s) and exits 0`, (t) => {
    const r = cli(['run', '-c', String(cpus), '--timeout', String(scaled(60))]);
    t.is(r.status, 0, `stderr: ${r.stderr}\nstdout: ${r.stdout}`);
    t.regex(r.stdout, /self-test: PASS/);
    t.regex(r.stdout, new RegExp(`cpus: ${cpus} \\(MP table`));
  });
}

kvm('--json prints a run summary on stdout and the console on stderr', (t) => {
  const r = cli(['run', '--json', '-p', 'exit=7']);
  t.is(r.status, 7, r.stderr);
  const summary = JSON.parse(r.stdout);
  t.like(summary, { exitReason: 'debug-exit', status: 7, kind: 'guest-exit', cpus: 1 });
  t.true(summary.wallMs > 0);
  t.true(summary.exits.byReason.KVM_EXIT_IO > 0);
  t.regex(r.stderr, /kvm-ts test guest/);
});

kvm('a kernel given with -k cannot set the exit status unless --debug-exit says it may', (t) => {
  const guest = fileURLToPath(new URL('../../hypervisor/guest/build/guest.elf', import.meta.url));
  const without = cli(['run', '-k', guest, '-p', 'exit=5 memtest=0', '--timeout', String(scaled(3))]);
  t.is(without.status, 124, without.stderr);
  t.regex(without.stderr, /unhandled 1-byte write at port 0x0501/);
  const withFlag = cli(['run', '-k', guest, '-p', 'exit=5 memtest=0', '--debug-exit']);
  t.is(withFlag.status, 5, withFlag.stderr);
});

kvm('--timeout ends a guest that never exits, says so, and exits non-zero', (t) => {
  const started = Date.now();
  const r = cli(['run', '-p', 'spin', '--timeout', '1.5']);
  t.is(r.status, 124);
  t.regex(r.stderr, /^kvm-cli: run: timed out after 1\.5 s$/m);
  t.true(Date.now() - started < scaled(30_000));
});

kvm('SIGTERM stops a running guest cleanly: status 143 and one line saying why', async (t) => {
  const child = spawn(process.execPath, [BIN, 'run', '-c', '2', '-p', 'spin memtest=0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`guest did not come up: ${out} ${err}`)), 30_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('self-test: PASS')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  child.kill('SIGTERM');
  t.is(await exited, 143);
  t.is(withoutNoNetworkLine(err).trim(), 'kvm-cli: interrupted by SIGTERM');
});
