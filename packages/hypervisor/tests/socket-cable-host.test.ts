/**
 * Socket cables (mode=socket) against another local user (#24): the listening socket is 0600
 * whatever the umask, a listener squatting the path is refused by the dialing side, and a peer
 * of another uid is refused by the listening side in one line while the cable stays up. Acting
 * as a second uid needs root; the tests skip elsewhere.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { chmodSync, lstatSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SocketBackend } from '../src/devices/virtio/net-backends/socket.js';
import { testNeeding } from './helpers/prerequisite.js';

const needsRoot = process.geteuid?.() === 0 ? undefined : 'needs root (a second uid plays the other user)';
const OTHER = 42424;
const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-cable-'));
chmodSync(dir, 0o1777); // a shared directory, as /tmp is
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `code` (CommonJS, `path` in scope) as `uid`; resolves with its first line of output. */
function asUser(uid: number, path: string, code: string): { line: Promise<string>; kill: () => void } {
  const child = spawn(process.execPath, ['-e', `const path = ${JSON.stringify(path)}; const net = require('node:net'); ${code}`], {
    uid,
    gid: uid,
    cwd: '/',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const line = new Promise<string>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0]);
    });
    child.once('exit', () => resolve(out.split('\n')[0]));
  });
  return { line, kill: () => child.kill('SIGKILL') };
}

const CONNECT = `const s = net.connect(path); s.on('connect', () => {}); s.on('data', () => { console.log('data'); process.exit(0); });
  s.on('close', () => { console.log('closed'); process.exit(0); }); s.on('error', (e) => { console.log(e.code); process.exit(0); });
  setTimeout(() => { console.log('connected'); process.exit(0); }, 1500);`;

testNeeding(needsRoot, 'the listening socket is 0600 under umask 000; another user cannot connect', async (t) => {
  const path = join(dir, 'private.sock');
  const old = process.umask(0);
  let cable: SocketBackend;
  try {
    cable = await SocketBackend.open({ path, listen: true, log: () => {} });
  } finally {
    process.umask(old);
  }
  try {
    t.is(lstatSync(path).mode & 0o777, 0o600);
    t.is(await asUser(OTHER, path, CONNECT).line, 'EACCES');
  } finally {
    await cable.close();
  }
});

testNeeding(needsRoot, "the dialing side refuses a listener of another uid (someone squatting the path)", async (t) => {
  const path = join(dir, 'squatted.sock');
  const squatter = asUser(OTHER, path, `process.umask(0); net.createServer(() => {}).listen(path, () => console.log('listening'));`);
  try {
    t.is(await squatter.line, 'listening');
    const err = await t.throwsAsync(SocketBackend.open({ path, log: () => {} }));
    t.is(err!.message, `socket ${path}: the listener is uid ${OTHER} (allowed: uid 0, root); add peer-uid=UID to connect to another user's VM`);
    const allowed = await SocketBackend.open({ path, peerUid: OTHER, log: () => {} });
    await allowed.close();
    t.pass();
  } finally {
    squatter.kill();
  }
});

testNeeding(needsRoot, 'with peer-uid=UID that uid is let in, any other is refused in one line and the cable stays up', async (t) => {
  const path = join(dir, 'shared.sock');
  const lines: string[] = [];
  const cable = await SocketBackend.open({ path, listen: true, peerUid: OTHER, log: (l) => lines.push(l) });
  try {
    t.is(await asUser(OTHER + 1, path, CONNECT).line, 'closed');
    t.deepEqual(lines, [`socket ${path}, listening: refused a peer of uid ${OTHER + 1} (allowed: uid 0, root or uid ${OTHER}; peer-uid=UID allows another)`]);
    t.is(cable.counters().refusedPeers, 1);
    const friend = asUser(OTHER, path, CONNECT);
    t.is(await friend.line, 'connected');
    t.is(cable.counters().peers, 1);
  } finally {
    await cable.close();
  }
});
