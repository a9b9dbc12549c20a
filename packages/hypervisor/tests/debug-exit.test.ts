import test from 'ava';
import { DebugExit } from '../src/devices/legacy/debug-exit.js';
import { DebugPort } from '../src/devices/legacy/debug-port.js';
import { FakeHost } from './helpers/fake-host.js';

test('debug-exit claims port 0x501', (t) => {
  t.deepEqual(new DebugExit(new FakeHost()).ports, [[0x501, 1]]);
});

for (const [size, value, status] of [
  [1, 0x00, 0],
  [1, 0x2a, 42],
  [2, 0x1234, 0x34],
  [4, 0xdeadbe01, 0x01],
] as const) {
  test(`a ${size}-byte write of 0x${value.toString(16)} exits with ${status}`, (t) => {
    const host = new FakeHost();
    new DebugExit(host).write(0x501, size, value);
    t.deepEqual(host.exits, [{ status, reason: 'debug-exit' }]);
  });
}

test('odd-sized accesses do not end the VM', (t) => {
  const host = new FakeHost();
  new DebugExit(host).write(0x501, 3, 1);
  t.is(host.exits.length, 0);
});

test('debug port: disabled writes are accepted silently but counted', (t) => {
  const host = new FakeHost();
  const p = new DebugPort(host);
  t.deepEqual(p.ports, [[0x80, 1]]);
  p.write(0x80, 1, 0x12);
  t.is(host.logs.length, 0);
  t.is(p.writeCount, 1);
  t.is(p.read(0x80, 1), 0x12);
});

test('debug port: enabled writes are logged with the time since start', (t) => {
  const host = new FakeHost();
  const p = new DebugPort(host, { enabled: true });
  host.time = 1234.5;
  p.write(0x80, 1, 0x41);
  host.time = 2000;
  p.write(0x80, 1, 0x1ff);
  t.deepEqual(host.logs, ['debug port 0x80: code 0x41 at 1.234500 s', 'debug port 0x80: code 0xff at 2.000000 s']);
});
