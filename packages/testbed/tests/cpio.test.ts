import test from 'ava';
import { cpioArchive } from '../src/cpio.js';

/** A minimal newc reader, to check the writer against the format rather than against itself. */
function readNewc(buf: Buffer): Array<{ name: string; mode: number; data: Buffer; rdev: [number, number] }> {
  const out = [];
  let at = 0;
  for (;;) {
    const magic = buf.toString('latin1', at, at + 6);
    if (magic !== '070701') throw new Error(`bad magic at ${at}: ${magic}`);
    const field = (i: number) => parseInt(buf.toString('latin1', at + 6 + i * 8, at + 14 + i * 8), 16);
    const namesize = field(11);
    const filesize = field(6);
    const name = buf.toString('utf8', at + 110, at + 110 + namesize - 1);
    let p = at + 110 + namesize;
    p += (4 - (p % 4)) % 4;
    const data = buf.subarray(p, p + filesize);
    p += filesize;
    p += (4 - (p % 4)) % 4;
    if (name === 'TRAILER!!!') return out;
    out.push({ name, mode: field(1), data, rdev: [field(9), field(10)] as [number, number] });
    at = p;
  }
}

test('a newc archive: every kind of entry, 4-byte alignment, the trailer', (t) => {
  const buf = cpioArchive([
    { kind: 'dir', path: 'bin' },
    { kind: 'file', path: '/bin/busybox', data: Buffer.from('abcde'), mode: 0o755 },
    { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
    { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
  ]);
  t.is(buf.length % 4, 0);
  const entries = readNewc(buf);
  t.deepEqual(entries.map((e) => e.name), ['bin', 'bin/busybox', 'bin/sh', 'dev/console']);
  t.is(entries[0].mode, 0o040755);
  t.is(entries[1].mode, 0o100755);
  t.is(entries[1].data.toString(), 'abcde');
  t.is(entries[2].mode, 0o120777);
  t.is(entries[2].data.toString(), 'busybox');
  t.is(entries[3].mode, 0o020600);
  t.deepEqual(entries[3].rdev, [5, 1]);
});

test('paths that climb out of the archive are refused', (t) => {
  t.throws(() => cpioArchive([{ kind: 'dir', path: '../etc' }]), { message: /cpio path refused/ });
  t.throws(() => cpioArchive([{ kind: 'dir', path: '/' }]), { message: /cpio path refused/ });
});
