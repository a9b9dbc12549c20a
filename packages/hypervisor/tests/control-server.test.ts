/**
 * The control socket's server and client without KVM: a fake target behind a real UNIX socket.
 * Permissions, SO_PEERCRED (a client of another uid), stale sockets and name clashes, every bad
 * request the protocol names, abrupt disconnects, concurrent clients, the console upgrade, and a
 * fast-check fuzz of the request parser over the socket and directly.
 */
import test from 'ava';
import fc from 'fast-check';
import { spawn } from 'node:child_process';
import { chmodSync, closeSync, existsSync, lstatSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  call,
  ConnectError,
  ConsoleHub,
  ControlClient,
  ControlError,
  controlSchemas,
  ControlServer,
  listVms,
  MAX_LINE_BYTES,
  NameInUseError,
  socketPath,
  type ControlTarget,
  type Result,
} from '../src/control/index.js';
import { native } from '../src/kvm/native.js';
import { testNeeding } from './helpers/prerequisite.js';

/** A target that records what it was asked; its state is a plain field. */
function fakeTarget(name = 'fake') {
  const calls: string[] = [];
  let state: 'running' | 'paused' = 'running';
  const typed: string[] = [];
  const hub = new ConsoleHub({ input: (b) => typed.push(Buffer.from(b).toString()) });
  const info = (): Result<'info'> => ({
    name,
    pid: process.pid,
    state,
    cpus: 1,
    memoryBytes: 1 << 20,
    startedAt: Date.now(),
    uptimeMs: 1,
    socket: '/x',
    abi: 'test',
    console: { attachable: true },
  });
  const target: ControlTarget = {
    info: () => (calls.push('info'), info()),
    pause: async () => {
      calls.push('pause');
      const changed = state !== 'paused';
      state = 'paused';
      return { state, changed };
    },
    resume: async () => {
      calls.push('resume');
      const changed = state !== 'running';
      state = 'running';
      return { state, changed };
    },
    stop: async () => (calls.push('stop'), { state: 'stopped', exitReason: 'stopped', status: 0 }),
    stat: () => {
      calls.push('stat');
      return {
        name,
        state,
        uptimeMs: 1,
        memory: { guestBytes: 1 << 20, regions: [{ gpa: '0x0', bytes: 1 << 20 }], vmmRssBytes: 1 },
        exits: { byReason: {}, forwarded: 0, total: 0 },
        vcpus: [],
        devices: [{ name: 'serial', bus: 'pio', counters: { txBytes: 1 } }],
      };
    },
    debug: async (p) => {
      calls.push('debug');
      if (p.vcpu === 7) throw new ControlError('not-running', 'vCPU 7 is gone');
      if (p.vcpu === 8) throw new Error('handler blew up\nsecond line');
      if (p.vcpu === 9) return { vcpus: [{ index: 0, regs: { rip: 12 as unknown as string }, sregs: {}, dump: '' }] };
      return { vcpus: [] };
    },
    attachConsole: (sink, backlog) => hub.attach(sink, backlog),
  };
  return { target, calls, hub, typed };
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'kvm-ts-ctl-'));
}

async function serve(t: import('ava').ExecutionContext, name = 'vm') {
  const dir = tempDir();
  const path = join(dir, 'kvm-ts', `${name}.sock`);
  const server = await ControlServer.listen({ path });
  const fake = fakeTarget(name);
  server.serve(fake.target);
  t.teardown(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, path, server, ...fake };
}

/** A raw connection: write bytes, read reply lines. */
function raw(path: string) {
  const sock = net.connect(path);
  let buf = '';
  const waiting: Array<(line: string) => void> = [];
  let closed = false;
  const onClose: Array<() => void> = [];
  sock.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0 && waiting.length; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      waiting.shift()!(line);
    }
  });
  sock.on('error', () => {});
  sock.on('close', () => {
    closed = true;
    for (const f of onClose.splice(0)) f();
  });
  return {
    sock,
    send: (text: string | Buffer) => sock.write(text),
    line: (): Promise<string> =>
      new Promise((resolve, reject) => {
        const nl = buf.indexOf('\n');
        if (nl >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          return resolve(line);
        }
        if (closed) return reject(new Error('closed'));
        waiting.push(resolve);
        onClose.push(() => reject(new Error('closed')));
      }),
    closed: (): Promise<void> => (closed ? Promise.resolve() : new Promise((r) => onClose.push(r))),
    rest: () => buf,
  };
}

function expectError(t: import('ava').ExecutionContext, reply: { v: number; id: unknown; error?: { code: string; message: string } }, id: unknown, code: string, message?: RegExp | string) {
  t.is(reply.v, 1);
  t.is(reply.id, id);
  t.is(reply.error?.code, code, JSON.stringify(reply));
  if (typeof message === 'string') t.is(reply.error?.message, message);
  else if (message) t.regex(reply.error?.message ?? '', message);
}

const errorCode = (line: string) => (JSON.parse(line) as { error?: { code: string } }).error?.code;

test('the directory is 0700, the socket 0600; close removes the socket', async (t) => {
  const { path, dir, server } = await serve(t);
  t.is(lstatSync(join(dir, 'kvm-ts')).mode & 0o777, 0o700);
  t.true(lstatSync(path).isSocket());
  t.is(lstatSync(path).mode & 0o777, 0o600);
  await server.close();
  t.false(existsSync(path));
});

test('the shim reports the peer of a connected UNIX socket (SO_PEERCRED)', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 's');
  const seen = new Promise<{ pid: number; uid: number; gid: number }>((resolve) => {
    const srv = net.createServer((s) => {
      resolve(native().peerCredentials((s as unknown as { _handle: { fd: number } })._handle.fd));
      s.destroy();
      srv.close();
    });
    srv.listen(path, () => net.connect(path).on('error', () => {}));
  });
  t.deepEqual(await seen, { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
  const file = openSync(join(dir, 'file'), 'w');
  t.like(t.throws(() => native().peerCredentials(file)) as object, { code: 'ENOTSOCK', syscall: 'getsockopt' });
  closeSync(file);
  t.throws(() => native().peerCredentials(-1), { instanceOf: TypeError });
});

testNeeding(process.getuid?.() === 0 ? undefined : 'starting a client of another uid needs root', 'a client of another uid is refused (SO_PEERCRED), even when the file modes would let it in', async (t) => {
  const { path, dir, calls } = await serve(t);
  // Open the way on purpose, as a misconfigured system might: only the peer check is left.
  chmodSync(dir, 0o755);
  chmodSync(join(dir, 'kvm-ts'), 0o755);
  chmodSync(path, 0o666);
  const script = `const s = require('net').connect(${JSON.stringify(path)});
    let out = ''; s.on('data', (d) => (out += d)); s.on('error', (e) => { console.error('ERR ' + e.code); });
    s.on('connect', () => s.write(JSON.stringify({ v: 1, id: 1, method: 'stop', params: {} }) + '\\n'));
    s.on('close', () => console.log(out.trim()));`;
  const child = spawn(process.execPath, ['-e', script], { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  // 'close', not 'exit': the child's output may still be in the pipe when it has exited.
  const code = await new Promise((r) => child.on('close', r));
  t.is(code, 0, err);
  const reply = JSON.parse(out.trim() || 'null');
  if (!reply) return t.fail(`no reply: ${err}`);
  t.is(reply.error.code, 'forbidden', out);
  t.deepEqual(calls, [], 'the request never reached the VM');
  t.is((await call(path, 'info')).name, 'vm', 'the owner still gets in');
});

test('a second server on a live socket is a NameInUseError; a stale socket is replaced', async (t) => {
  const { path } = await serve(t);
  await t.throwsAsync(ControlServer.listen({ path }), { instanceOf: NameInUseError });
  t.is((await call(path, 'info')).name, 'vm', 'the first server is untouched');

  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const stale = join(dir, 'stale.sock');
  // A VMM killed with SIGKILL leaves its socket file behind.
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => console.log('up'))`], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  await new Promise((r) => child.stdout.once('data', r));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  t.true(lstatSync(stale).isSocket());
  const fresh = await ControlServer.listen({ path: stale });
  fresh.serve(fakeTarget('fresh').target);
  t.is((await call(stale, 'info')).name, 'fresh');
  await fresh.close();

  writeFileSync(stale, 'not a socket');
  await t.throwsAsync(ControlServer.listen({ path: stale }), { message: /exists and is not a socket/ });
});

test('list shows live VMs and removes stale sockets', async (t) => {
  const { dir } = await serve(t, 'alive');
  const stale = join(dir, 'kvm-ts', 'dead.sock');
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => console.log('up'))`], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  await new Promise((r) => child.stdout.once('data', r));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const vms = await listVms(join(dir, 'kvm-ts'));
  t.deepEqual(vms.map((v) => v.name), ['alive']);
  t.is(vms[0].info?.state, 'running');
  t.false(existsSync(stale));
  t.is(socketPath('x', { XDG_RUNTIME_DIR: dir }), join(dir, 'kvm-ts', 'x.sock'));
  t.is(socketPath('x', { XDG_RUNTIME_DIR: 'relative', HOME: '/home/u' }), '/home/u/.kvm-ts/run/x.sock');
});

test('every kind of bad request gets its error reply and the connection keeps serving', async (t) => {
  const { path, calls } = await serve(t);
  const c = raw(path);
  const ask = async (text: string) => {
    c.send(`${text}\n`);
    return JSON.parse(await c.line());
  };
  t.like(await ask('{not json'), { v: 1, id: null, error: { code: 'parse-error' } });
  t.like(await ask('[1,2]'), { id: null, error: { code: 'invalid-request' } });
  expectError(t, await ask('{"v":2,"id":5,"method":"info"}'), 5, 'invalid-request', /^v: /);
  expectError(t, await ask('{"v":1,"method":"info"}'), null, 'invalid-request', /^id: /);
  t.like(await ask('{"v":1,"id":"a","method":"info","extra":1}'), { id: 'a', error: { code: 'invalid-request' } });
  expectError(t, await ask('{"v":1,"id":6,"method":"reboot"}'), 6, 'unknown-method', /unknown method 'reboot'/);
  t.like(await ask('{"v":1,"id":6,"method":"__proto__"}'), { id: 6, error: { code: 'unknown-method' } });
  expectError(t, await ask('{"v":1,"id":7,"method":"debug","params":{"vcpu":"zero"}}'), 7, 'invalid-params', /^params\.vcpu: /);
  t.like(await ask('{"v":1,"id":8,"method":"pause","params":{"hard":true}}'), { id: 8, error: { code: 'invalid-params' } });
  expectError(t, await ask('{"v":1,"id":9,"method":"debug","params":{"vcpu":7}}'), 9, 'not-running', 'vCPU 7 is gone');
  expectError(t, await ask('{"v":1,"id":10,"method":"debug","params":{"vcpu":8}}'), 10, 'internal-error', 'handler blew up');
  expectError(t, await ask('{"v":1,"id":11,"method":"debug","params":{"vcpu":9}}'), 11, 'internal-error', /did not match its schema: result\.vcpus\[0\]\.regs\.rip/);
  c.send('\n\r\n   \n'); // blank lines are ignored
  t.like(await ask('{"v":1,"id":12,"method":"pause"}'), { v: 1, id: 12, result: { state: 'paused', changed: true } });
  t.like(await ask('{"v":1,"id":"s","method":"stat","params":{}}\r'), { id: 's', result: { state: 'paused' } });
  t.deepEqual(calls, ['debug', 'debug', 'debug', 'pause', 'stat']);
  c.sock.destroy();
});

test('requests split across writes, and several in one write, are answered in order', async (t) => {
  const { path } = await serve(t);
  const c = raw(path);
  const req = (id: number, method: string) => JSON.stringify({ v: 1, id, method });
  const text = `${req(1, 'pause')}\n${req(2, 'info')}\n${req(3, 'resume')}\n`;
  for (let i = 0; i < text.length; i += 7) {
    c.send(text.slice(i, i + 7));
    await sleep(1);
  }
  const ids = [JSON.parse(await c.line()).id, JSON.parse(await c.line()).id, JSON.parse(await c.line()).id];
  t.deepEqual(ids, [1, 2, 3]);
  c.sock.destroy();
});

test('an over-long line gets an error and the connection is closed; the server keeps serving', async (t) => {
  const { path } = await serve(t);
  const exactly = `{"v":1,"id":1,"method":"info","params":{"pad":"${'x'.repeat(MAX_LINE_BYTES - 50)}"}}`;
  const c1 = raw(path);
  c1.send(`${exactly.padEnd(MAX_LINE_BYTES, ' ')}\n`); // a line of exactly the bound is read (and its params refused)
  t.is(errorCode(await c1.line()), 'invalid-params');
  c1.send(`${'y'.repeat(MAX_LINE_BYTES + 1)}\n`);
  t.is(errorCode(await c1.line()), 'line-too-long');
  await c1.closed();
  // Without a newline at all: refused as soon as the bound is passed.
  const c2 = raw(path);
  c2.send('z'.repeat(MAX_LINE_BYTES * 2));
  t.is(errorCode(await c2.line()), 'line-too-long');
  await c2.closed();
  t.is((await call(path, 'info')).state, 'running');
});

test('clients vanishing mid-request, and many clients at once, leave the server serving', async (t) => {
  const { path, calls } = await serve(t);
  for (let i = 0; i < 20; i++) {
    const s = net.connect(path);
    s.on('error', () => {});
    await new Promise((r) => s.once('connect', r));
    if (i % 2) s.write('{"v":1,"id":1,"method":"st'); // half a request
    else s.write('{"v":1,"id":1,"method":"pause"}\n'); // a request whose reply nobody reads
    s.destroy();
  }
  const clients = await Promise.all(Array.from({ length: 24 }, () => ControlClient.connect(path)));
  const results = await Promise.all(clients.flatMap((c, i) => [c.request('stat'), c.request('info'), c.request(i % 2 ? 'pause' : 'resume')]));
  t.is(results.length, 72);
  for (const c of clients) c.close();
  await sleep(50);
  t.true(calls.filter((c) => c === 'stat').length === 24);
  t.like(await call(path, 'info'), { name: 'vm' });
});

test('connections beyond the limit are told busy; requests before serve() wait for it', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'limit.sock');
  const server = await ControlServer.listen({ path, maxConnections: 2 });
  t.teardown(() => server.close());
  const early = call(path, 'info');
  await sleep(50);
  server.serve(fakeTarget('late').target);
  t.is((await early).name, 'late');
  const a = await ControlClient.connect(path);
  const b = await ControlClient.connect(path);
  const c = raw(path);
  t.is(errorCode(await c.line()), 'busy');
  await c.closed();
  a.close();
  b.close();
});

test('the client rejects error replies as ControlError and a missing socket as ConnectError', async (t) => {
  const { path } = await serve(t);
  const client = await ControlClient.connect(path);
  const err = await t.throwsAsync(client.request('debug', { vcpu: 7 }));
  t.true(err instanceof ControlError);
  t.is((err as ControlError).code, 'not-running');
  client.close();
  const empty = tempDir();
  t.teardown(() => rmSync(empty, { recursive: true, force: true }));
  const missing = await t.throwsAsync(call(join(empty, 'none.sock'), 'info'));
  t.true(missing instanceof ConnectError);
  t.is((missing as ConnectError).code, 'ENOENT');
});

test('stop is answered before close() ends the connections', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'stop.sock');
  const server = await ControlServer.listen({ path });
  const fake = fakeTarget();
  let release!: () => void;
  const slow = new Promise<void>((r) => (release = r));
  let asked!: () => void;
  const stopAsked = new Promise<void>((r) => (asked = r));
  server.serve({ ...fake.target, stop: async () => (asked(), await slow, { state: 'stopped', exitReason: 'stopped', status: 0 }) });
  const client = await ControlClient.connect(path);
  const answer = client.request('stop');
  // Not a fixed sleep: on a loaded machine the request can take longer than any guess to arrive.
  await stopAsked;
  const closing = server.close();
  t.false(existsSync(path), 'the socket goes at once');
  release();
  t.like(await answer, { state: 'stopped', status: 0 });
  await closing;
  await client.closedByPeer();
});

test('the console method turns the connection into a raw byte stream both ways', async (t) => {
  const { path, hub, typed } = await serve(t);
  hub.write(Buffer.from('boot banner\r\n'));
  const client = await ControlClient.connect(path);
  const first = await client.console(true);
  let seen = first.toString();
  client.socket.on('data', (d: Buffer) => (seen += d.toString()));
  client.socket.resume();
  while (!seen.includes('boot banner')) await sleep(5);
  hub.write(Buffer.from('live output'));
  client.socket.write('typed {"v":1} not a request\n');
  while (!seen.includes('live output') || typed.join('') !== 'typed {"v":1} not a request\n') await sleep(5);
  // One console at a time.
  const other = await ControlClient.connect(path);
  const busy = await t.throwsAsync(other.console());
  t.is((busy as ControlError).code, 'busy');
  other.close();
  client.close();
  await sleep(20);
  const again = await ControlClient.connect(path);
  await again.console(false);
  again.close();
  t.pass();
});

test('fuzz: random lines get only valid replies, nothing escapes, the server keeps serving', async (t) => {
  const { path, server } = await serve(t);
  const s = controlSchemas();
  const method = fc.constantFrom('info', 'pause', 'resume', 'stat', 'debug', 'console', 'nope', '', 'constructor', 'toString');
  const envelope = fc.record(
    { v: fc.oneof(fc.constant(1), fc.integer(), fc.string()), id: fc.oneof(fc.integer(), fc.string(), fc.constant(null), fc.double()), method, params: fc.oneof(fc.jsonValue(), fc.dictionary(fc.string(), fc.jsonValue())) },
    { requiredKeys: [] },
  );
  const line = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.json(),
    envelope.map((e) => JSON.stringify(e)),
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
  );
  // Directly: thousands of lines through the validator and dispatcher.
  let direct = 0;
  await fc.assert(
    fc.asyncProperty(line, async (text) => {
      direct++;
      const outcome = await server.handle(text);
      if ('console' in outcome) return; // a valid console request: the connection would upgrade
      t.true(s.reply.safeParse(outcome.reply).success, JSON.stringify(outcome.reply));
    }),
    { numRuns: 3000 },
  );
  // Over the socket: random chunks (newlines anywhere), then a well-formed request must still work.
  const overLong = fc.integer({ min: MAX_LINE_BYTES + 1, max: MAX_LINE_BYTES + 4096 }).map((n) => 'x'.repeat(n));
  let overSocket = 0;
  let tooLong = 0;
  await fc.assert(
    // Now and then a line over the bound (the connection is then closed after its error).
    fc.asyncProperty(fc.array(fc.oneof({ arbitrary: line, weight: 20 }, { arbitrary: overLong, weight: 1 }), { minLength: 1, maxLength: 5 }), async (lines) => {
      overSocket++;
      const c = raw(path);
      const text = lines.map((l) => l.replace(/\n/g, ' ')).join('\n');
      c.send(`${text}\n{"v":1,"id":"last","method":"info"}\n`);
      for (;;) {
        let reply;
        try {
          reply = JSON.parse(await c.line());
        } catch {
          break; // a console upgrade swallowed the rest, or a bad line closed the connection
        }
        t.true(s.reply.safeParse(reply).success);
        if (reply.error?.code === 'line-too-long') tooLong++;
        // After a console request's reply the rest of the input is console bytes.
        if (reply.id === 'last' || reply.result?.backlogBytes !== undefined) break;
      }
      c.sock.destroy();
    }),
    { numRuns: 300 },
  );
  t.is((await call(path, 'info')).name, 'vm');
  t.true(tooLong > 0, 'no over-long line was generated');
  t.log(`fuzzed ${direct} lines directly and ${overSocket} connections over the socket (${tooLong} closed for an over-long line)`);
});

test('64 idle connections lock nobody out for long: stat answers within 10 s', async (t) => {
  const { path } = await serve(t);
  const idle = Array.from({ length: 64 }, () => raw(path));
  t.teardown(() => idle.forEach((c) => c.sock.destroy()));
  await Promise.all(idle.map((c) => new Promise((r) => c.sock.once('connect', r))));
  const t0 = Date.now();
  let result: Result<'stat'> | undefined;
  while (!result && Date.now() - t0 < 10_000) {
    try {
      result = await call(path, 'stat', {}, 2000);
    } catch (err) {
      t.is((err as ControlError).code, 'busy');
      await sleep(250);
    }
  }
  t.truthy(result, 'stat still refused 10 s after the idle flood');
  // The server's FINs reach the 64 clients in no set order relative to stat's reply: give them a moment.
  const ended = (c: (typeof idle)[number]) => c.sock.destroyed || c.sock.readableEnded;
  for (const deadline = Date.now() + 5000; !idle.every(ended) && Date.now() < deadline; ) await sleep(50);
  t.true(idle.every(ended), `the idle connections were closed (${idle.filter(ended).length} of ${idle.length})`);
});

test('a `__proto__` member of params is refused like any unknown member', async (t) => {
  const { path } = await serve(t);
  const c = raw(path);
  t.teardown(() => c.sock.destroy());
  c.send('{"v":1,"id":1,"method":"stat","params":{"__proto__":{"x":1}}}\n');
  const reply = JSON.parse(await c.line());
  t.deepEqual(reply.error, { code: 'invalid-params', message: 'params: Unrecognized key: "__proto__"' });
});
