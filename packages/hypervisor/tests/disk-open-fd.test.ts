/**
 * A disk image is checked on the descriptor it is used through (#24): a FIFO is refused without
 * waiting for a writer, and an image too large for kvm-ts's offsets says so instead of failing
 * later inside the shim's fallocate with "bad arguments".
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskImage } from '../src/devices/virtio/disk-image.js';
import { testNeeding } from './helpers/prerequisite.js';

const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-disk-fd-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test('a FIFO is refused at once, read-only or not', (t) => {
  const fifo = join(dir, 'fifo.img');
  execFileSync('mkfifo', [fifo]);
  for (const readOnly of [true, false]) t.throws(() => DiskImage.open({ path: fifo, readOnly }), { message: `${fifo} is not a regular file` });
});

// tmpfs takes sparse files up to 2^63 - 1 bytes; a disk file system usually stops far below.
const shm = existsSync('/dev/shm') ? undefined : 'no /dev/shm (tmpfs) for a sparse 8 EiB file';
testNeeding(shm, 'an image beyond 2^53 bytes is refused with the reason', (t) => {
  const huge = mkdtempSync('/dev/shm/kvm-ts-huge-');
  t.teardown(() => rmSync(huge, { recursive: true, force: true }));
  const path = join(huge, 'huge.img');
  execFileSync('truncate', ['-s', '9223372036854775296', path]); // 2^63 - 512: more than a JS number holds exactly
  t.throws(() => DiskImage.open({ path }), { message: `${path}: size 9223372036854775296 bytes is more than kvm-ts can address (at most 2^53 bytes)` });
});
