import test from 'ava';
import { loadAbi } from '@kvm-ts/abi';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { constants as os } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { kvmOpenError } from '../src/kvm/errors.js';
import { isSysError, native } from '../src/kvm/native.js';
import { countedBound } from '../src/kvm/counted-arrays.js';
import { kvmTests, scaled } from './helpers/kvm.js';

const shim = native();
const GiB = 1024 ** 3;

test('a failed open is an Error with code, errno and syscall', (t) => {
  const err = t.throws(() => shim.open('/nonexistent/kvm-ts'));
  t.true(isSysError(err));
  t.like(err as object, { code: 'ENOENT', errno: -os.errno.ENOENT, syscall: 'open' });
  t.regex(err!.message, /ENOENT.*open '\/nonexistent\/kvm-ts'/);
});

test('opening /dev/kvm explains ENOENT and EACCES in one line', (t) => {
  const fake = (code: string) => Object.assign(new Error(code), { code, errno: -1, syscall: 'open' });
  const missing = kvmOpenError('/dev/kvm', fake('ENOENT')).message;
  t.regex(missing, /virtualization is unavailable.*VT-x\/AMD-V.*kvm_intel\/kvm_amd/);
  const denied = kvmOpenError('/dev/kvm', fake('EACCES')).message;
  t.regex(denied, /kvm' group/);
  t.false(missing.includes('\n') || denied.includes('\n'));
});

test('ioctl failures carry the errno; bad arguments are TypeErrors', (t) => {
  t.like(t.throws(() => shim.ioctl(1_000_000, 0, 0)) as object, { code: 'EBADF', syscall: 'ioctl' });
  t.is(shim.ioctlRaw(1_000_000, 0, 0), -os.errno.EBADF);
  t.throws(() => shim.ioctl(-1, 0), { instanceOf: TypeError });
  t.throws(() => shim.ioctl(0, 2 ** 33), { instanceOf: TypeError });
  t.throws(() => shim.ioctl(0, 0, 'x' as unknown as number), { instanceOf: TypeError });
  t.throws(() => shim.close(-5), { instanceOf: TypeError });
});

test('a buffer shorter than the size its ioctl number encodes is refused before the kernel sees it', (t) => {
  const abi = loadAbi('latest', 'x86_64');
  const request = abi.ioctl('KVM_GET_REGS');
  const size = abi.codec('kvm_regs').size;
  // fd 1_000_000 is not open: reaching the kernel would give EBADF, so a TypeError proves the check ran first.
  const err = t.throws(() => shim.ioctl(1_000_000, request, new Uint8Array(size - 1)), { instanceOf: TypeError });
  t.regex(err!.message, new RegExp(`takes ${size} bytes, the buffer holds ${size - 1}`));
  t.throws(() => shim.ioctlRaw(1_000_000, request, new DataView(new ArrayBuffer(size), 1)), { instanceOf: TypeError });
  t.is(shim.ioctlRaw(1_000_000, request, new Uint8Array(size)), -os.errno.EBADF);
});

test('a request that takes a pointer refuses a number or bigint (which the kernel would dereference)', (t) => {
  const abi = loadAbi('latest', 'x86_64');
  const request = abi.ioctl('KVM_GET_REGS');
  for (const arg of [0, 0x7fff_0000, 1n << 40n, undefined]) {
    const err = t.throws(() => shim.ioctl(1_000_000, request, arg), { instanceOf: TypeError }, String(arg));
    t.regex(err!.message, /takes a pointer to \d+ bytes: pass a buffer, not a number/);
  }
  // Requests that encode no argument take integers as before (EBADF: the kernel was reached).
  t.is(shim.ioctlRaw(1_000_000, abi.ioctl('KVM_RUN'), 0), -os.errno.EBADF);
});

test('a bigint that does not fit 64 unsigned bits is refused, not truncated', (t) => {
  const request = loadAbi('latest', 'x86_64').ioctl('KVM_CHECK_EXTENSION');
  for (const v of [-1n, 1n << 64n, -(1n << 70n)]) t.throws(() => shim.ioctl(1_000_000, request, v), { instanceOf: TypeError, message: /fit in 64 unsigned bits/ });
  t.is(shim.ioctlRaw(1_000_000, request, (1n << 64n) - 1n), -os.errno.EBADF);
});

test('a counted array is checked against the count its header holds (the spec says where)', (t) => {
  const abi = loadAbi('latest', 'x86_64');
  const request = abi.ioctl('KVM_GET_SUPPORTED_CPUID');
  const bound = countedBound(abi, 'KVM_GET_SUPPORTED_CPUID')!;
  t.deepEqual(bound, [abi.field('kvm_cpuid2', 'nent').offset, 4, abi.field('kvm_cpuid2', 'entries').offset, abi.codec('kvm_cpuid_entry2').size]);
  // nent = 200 over the 8-byte header alone: the kernel would write 200 entries past the buffer.
  const header = new Uint8Array(8);
  new DataView(header.buffer).setUint32(bound[0], 200, true);
  const err = t.throws(() => shim.ioctl(1_000_000, request, header, bound), { instanceOf: TypeError });
  t.regex(err!.message, new RegExp(`count of 200 needs ${8 + 200 * bound[3]} bytes, the buffer holds 8`));
  const room = new Uint8Array(8 + 200 * bound[3]);
  room.set(header);
  t.is(shim.ioctlRaw(1_000_000, request, room, bound), -os.errno.EBADF);
  t.throws(() => shim.ioctl(1_000_000, request, header, [7, 4, 8, 40]), { instanceOf: TypeError, message: /count lies outside/ });
  t.is(countedBound(abi, 'KVM_GET_REGS'), undefined);
  t.deepEqual(countedBound(abi, 'KVM_SET_MSRS')!.slice(0, 2), [abi.field('kvm_msrs', 'nmsrs').offset, 4]);
});

test('kicks use a real-time signal, leaving SIGUSR1 to its owner', (t) => {
  t.true(shim.kickSignal >= 34 && shim.kickSignal !== os.signals.SIGUSR1, String(shim.kickSignal));
});

test('mmap checks its length and munmap detaches the buffer', (t) => {
  for (const bad of [0, -4096, 4095, shim.pageSize + 1, 4 * GiB + shim.pageSize, 1.5, Number.NaN]) {
    t.throws(() => shim.mmapAnonymous(bad), { instanceOf: TypeError }, `length ${bad}`);
  }
  const buf = shim.mmapAnonymous(2 * shim.pageSize);
  t.is(buf.byteLength, 2 * shim.pageSize);
  t.true(shim.address(buf) > 0n);
  const bytes = new Uint8Array(buf);
  t.is(bytes[0], 0);
  bytes[2 * shim.pageSize - 1] = 7;
  shim.munmap(buf);
  t.is(buf.byteLength, 0, 'unmapped memory must be unreachable from JavaScript');
  t.notThrows(() => shim.munmap(buf), 'a second munmap is a no-op');
  t.throws(() => shim.munmap(new ArrayBuffer(4096)), { instanceOf: TypeError });
  t.throws(() => shim.mmapShared(1_000_000, shim.pageSize), { message: /EBADF/ });
});

test('an eventfd wakes an FdPoll on the event loop', async (t) => {
  const fd = shim.eventfd(0);
  try {
    const value = new BigUint64Array(1);
    t.is(shim.read(fd, value), -os.errno.EAGAIN, 'a fresh eventfd has nothing to read');
    const seen = new Promise<bigint>((resolve) => {
      const poll = new shim.FdPoll(fd, () => {
        const got = new BigUint64Array(1);
        if (shim.read(fd, got) === 8) {
          poll.close();
          resolve(got[0]);
        }
      });
    });
    t.is(shim.write(fd, new BigUint64Array([5n])), 8);
    t.is(await seen, 5n);
  } finally {
    shim.close(fd);
  }
});

test('kick interrupts a blocking system call in another thread', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-kick-'));
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const shimUrl = new URL('../src/kvm/native.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const code = `
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(shimUrl)}); }).then(({ native }) => {
      const shim = native();
      const fd = shim.open(${JSON.stringify(fifo)});
      parentPort.postMessage({ tid: shim.prepareKick() });
      const r = shim.read(fd, new Uint8Array(1)); // blocks: nobody writes
      shim.close(fd);
      parentPort.postMessage({ r });
    });`;
  const worker = new Worker(code, { eval: true });
  try {
    const messages: Array<{ tid?: number; r?: number }> = [];
    const result = new Promise<number>((resolve) =>
      worker.on('message', (m: { tid?: number; r?: number }) => {
        messages.push(m);
        if (m.r !== undefined) resolve(m.r);
      }),
    );
    while (messages.length === 0) await new Promise((r) => setTimeout(r, 10));
    const tid = messages[0].tid!;
    t.true(tid > 0 && tid !== shim.threadId());
    // The read may not have started yet; kick until it returns.
    let r: number | undefined;
    void result.then((v) => (r = v));
    for (let i = 0; i < 200 && r === undefined; i++) {
      t.true(shim.kick(tid));
      await new Promise((res) => setTimeout(res, 10));
    }
    t.is(r, -os.errno.EINTR);
  } finally {
    await worker.terminate();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('kicking a thread that no longer exists reports false', (t) => {
  // pid_max is at most 2^22; tid 2^22 + 1 cannot belong to this process
  t.false(shim.kick(2 ** 22 + 1));
});

const timeTool = '/usr/bin/time';
const probeMissing = existsSync(timeTool) ? undefined : `no ${timeTool}`;
kvmTests('the shim on a real /dev/kvm')('short ioctl buffers on a real /dev/kvm are refused in a VMM-like process: exit 0, well within 15 s and 600 MiB', (t) => {
  // KVM_GET_SUPPORTED_CPUID with nent = 200 over its 8-byte header would have the kernel write
  // 200 entries past the buffer; a 4-byte buffer is short even of the header.
  const system = new URL('../src/kvm/system.ts', import.meta.url).href;
  const abiUrl = import.meta.resolve('@kvm-ts/abi');
  const probe = `
    const { loadAbi } = await import(${JSON.stringify(abiUrl)});
    const { KvmSystem, kvmIoctl } = await import(${JSON.stringify(system)});
    const { native } = await import(${JSON.stringify(new URL('../src/kvm/native.ts', import.meta.url).href)});
    const abi = loadAbi('latest', 'x86_64');
    const sys = KvmSystem.open(abi);
    const header = new Uint8Array(8);
    new DataView(header.buffer).setUint32(0, 200, true);
    const refused = [];
    for (const buf of [header, new Uint8Array(4)]) {
      try { kvmIoctl(native(), abi, sys.fd, 'KVM_GET_SUPPORTED_CPUID', buf); } catch (e) { if (e instanceof TypeError) refused.push(e.message); }
    }
    sys.close();
    console.log(JSON.stringify(refused));
    process.exitCode = refused.length === 2 ? 0 : 3;`;
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-ioctl-'));
  try {
    const stats = join(dir, 'time.txt');
    const r = spawnSync(timeTool, ['-v', '-o', stats, process.execPath, '--import=tsx', '--conditions=kvm-ts-source', '--input-type=module', '-e', probe], { encoding: 'utf8', timeout: scaled(60_000) });
    const report = readFileSync(stats, 'utf8');
    const status = Number(/Exit status: (\d+)/.exec(report)?.[1]);
    const wall = (/Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)/.exec(report)?.[1] ?? 'NaN').split(':').reduce((s, p) => s * 60 + Number(p), 0);
    const rssMiB = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(report)?.[1]) / 1024;
    t.log(`exit ${status}, ${wall.toFixed(2)} s, peak RSS ${rssMiB.toFixed(0)} MiB: ${r.stdout.trim()}`);
    t.is(status, 0, r.stderr);
    const [counted, short] = JSON.parse(r.stdout) as string[];
    t.regex(counted, /count of 200 needs 8008 bytes, the buffer holds 8/);
    t.regex(short, /takes 8 bytes, the buffer holds 4/);
    t.true(wall < scaled(15) && rssMiB < 600);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, probeMissing);

test('socketPair gives two connected ends; setNonBlocking makes an empty read -EAGAIN', (t) => {
  const shim = native();
  const [a, b] = shim.socketPair();
  try {
    t.is(shim.write(a, new TextEncoder().encode('ping')), 4);
    const got = new Uint8Array(8);
    t.is(shim.read(b, got), 4);
    t.is(new TextDecoder().decode(got.subarray(0, 4)), 'ping');
    shim.setNonBlocking(b);
    t.is(shim.read(b, got), -os.errno.EAGAIN);
    t.throws(() => shim.setNonBlocking(1 << 30), { message: /EBADF/ });
  } finally {
    shim.close(a);
    shim.close(b);
  }
});

test('ioctlValue passes an integer by value and returns -errno instead of throwing', (t) => {
  const shim = native();
  const [a, b] = shim.socketPair();
  try {
    // tun's TUNSETOFFLOAD on a socket: not a tun device, so the kernel says ENOTTY (or EINVAL).
    const r = shim.ioctlValue(a, 0x400454d0, 0);
    t.true(r === -os.errno.ENOTTY || r === -os.errno.EINVAL, String(r));
    t.throws(() => shim.ioctlValue(a, 0x400454d0, -1), { instanceOf: TypeError });
  } finally {
    shim.close(a);
    shim.close(b);
  }
});
