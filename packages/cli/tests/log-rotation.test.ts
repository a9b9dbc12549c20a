/**
 * A detached VM's console log stays bounded (#24): NAME.log rotates to NAME.log.1 and .2 at its
 * cap, the oldest text is dropped, and writes through the same O_APPEND descriptor carry on at
 * the start of the fresh NAME.log.
 */
import test from 'ava';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOG_FILES, LOG_MAX_BYTES, LogRotator } from '../src/log-rotation.js';

test('the log is capped at LOG_FILES × the cap, oldest dropped, 0600', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-log-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'vm.log');
  const fd = openSync(path, 'a+', 0o600);
  const rotator = new LogRotator(fd, path, 1000);
  for (let i = 0; i < 55; i++) {
    writeSync(fd, `${String(i).padStart(2, '0')}${'.'.repeat(97)}\n`); // 100 bytes a line
    rotator.written();
  }
  const files = [path, `${path}.1`, `${path}.2`];
  t.is(LOG_FILES, 3);
  t.is(LOG_MAX_BYTES, 2 * 1024 * 1024);
  t.false(existsSync(`${path}.3`));
  for (const f of files) t.true(statSync(f).size <= 1000, f);
  t.is(statSync(`${path}.1`).mode & 0o777, 0o600);
  t.regex(readFileSync(`${path}.2`, 'utf8'), /^30\.+\n/, 'the oldest kept text');
  t.regex(readFileSync(`${path}.1`, 'utf8'), /^40\./);
  t.regex(readFileSync(path, 'utf8'), /^50\.[^]*54\.+\n$/, 'writes carry on at the start of the fresh log');
});
