/**
 * The plain-relative-path rule (sources/entry-path.ts) and where it guards: an unpacked
 * linux-libc-dev whose #include leads out of the package, or whose header is a symlink out of it,
 * is refused before anything is read or copied into the header cache.
 */
import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { entryPathProblem } from '../src/sources/entry-path.js';
import { headerClosure } from '../src/headers/extract.js';

test('only plain relative paths pass', (t) => {
  for (const ok of ['linux/kvm.h', 'a', 'asm-generic/x..y.h', '...h']) t.is(entryPathProblem(ok), undefined, ok);
  for (const bad of ['', '..', '.', 'a/../b', 'a/./b', '/etc/passwd', 'a//b', 'a/', 'a\0b', 'a\\..\\b', '../x']) {
    t.truthy(entryPathProblem(bad), JSON.stringify(bad));
  }
});

/** A fake unpacked linux-libc-dev: usr/include/linux/kvm.h with `kvmText`, and an x86 asm/kvm.h. */
function unpacked(kvmText: string): string {
  const root = mkdtempSync(join(tmpdir(), 'kvm-ts-unpacked-'));
  mkdirSync(join(root, 'usr/include/linux'), { recursive: true });
  mkdirSync(join(root, 'usr/include/x86_64-linux-gnu/asm'), { recursive: true });
  writeFileSync(join(root, 'usr/include/linux/kvm.h'), kvmText);
  writeFileSync(join(root, 'usr/include/x86_64-linux-gnu/asm/kvm.h'), '#define ASM 1\n');
  return root;
}

test('an #include that leaves the package is refused in one line', (t) => {
  const root = unpacked('#include "../../../../outside.h"\n');
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  writeFileSync(join(root, '..', 'outside.h'), '#define OUT 1\n');
  t.teardown(() => rmSync(join(root, '..', 'outside.h'), { force: true }));
  const err = t.throws(() => headerClosure(root, 'x86_64'));
  t.regex(err!.message, /^#include "\.\.\/\.\.\/\.\.\/\.\.\/outside\.h" in linux\/kvm\.h refused: /);
  t.notRegex(err!.message, /\n/);
});

test('a header that is a symlink out of the package is refused', (t) => {
  const root = unpacked('#include <linux/types.h>\n');
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  symlinkSync('/etc/passwd', join(root, 'usr/include/linux/types.h'));
  const err = t.throws(() => headerClosure(root, 'x86_64'));
  t.regex(err!.message, /^#include "linux\/types\.h" in linux\/kvm\.h refused: it is a symlink out of its directory$/);
});
