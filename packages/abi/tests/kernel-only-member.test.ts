/**
 * A member under `#ifdef __KERNEL__` inside a uapi struct (issue #22): headers_install strips the
 * group, so the kernel is built with one layout and userspace with another, and a diff of the
 * userspace view alone calls it no change. The generator refuses such a body in one line naming
 * the directive; a __KERNEL__ conditional outside any body (as uapi headers use them) is fine.
 */
import test from 'ava';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSpec, HeaderError } from '../src/generator/index.js';
import { cacheReady, includeRoot } from '../src/headers/index.js';
import { testNeeding } from './helpers/prerequisite.js';

const noCache = cacheReady('6.1', 'x86_64') ? undefined : 'header cache missing for 6.1/x86_64: run kvm-cli abi sync';

/** The 6.1 x86_64 headers with `insert` placed right after `anchor` in linux/kvm.h; the line it lands on. */
function editedKvmH(anchor: string, insert: string): { dir: string; line: number } {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-kernel-only-'));
  cpSync(includeRoot('6.1', 'x86_64'), dir, { recursive: true });
  const path = join(dir, 'linux', 'kvm.h');
  const text = readFileSync(path, 'utf8');
  const at = text.indexOf(anchor);
  if (at < 0) throw new Error(`no '${anchor}' in linux/kvm.h`);
  const cut = at + anchor.length;
  writeFileSync(path, `${text.slice(0, cut)}${insert}${text.slice(cut)}`);
  return { dir, line: text.slice(0, cut).split('\n').length };
}

const generate = (dir: string) => generateSpec({ includeDirs: [dir], arch: 'x86_64', kernel: '6.1.0' });

testNeeding(noCache, 'a member under #ifdef __KERNEL__ in the middle of struct kvm_irqfd is refused in one line naming the directive', (t) => {
  const { dir, line } = editedKvmH('struct kvm_irqfd {\n\t__u32 fd;\n', '#ifdef __KERNEL__\n\t__u32 kernel_only;\n#endif\n');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const err = t.throws(() => generate(dir), { instanceOf: HeaderError });
  t.regex(err!.message, /^[^\n]*linux\/kvm\.h:\d+: struct kvm_irqfd: a __KERNEL__ conditional inside the body/);
  t.is(err!.loc.line, line, 'the error names the #ifdef line');
});

testNeeding(noCache, '#if defined(__KERNEL__) … #else inside a body is refused too; one between declarations is not', (t) => {
  const inside = editedKvmH('struct kvm_irqfd {\n', '#if defined(__KERNEL__)\n\t__u64 k;\n#else\n\t__u32 u[2];\n#endif\n');
  t.teardown(() => rmSync(inside.dir, { recursive: true, force: true }));
  t.throws(() => generate(inside.dir), { instanceOf: HeaderError, message: /struct kvm_irqfd: a __KERNEL__ conditional/ });

  const between = editedKvmH('/* For KVM_CAP_ADJUST_CLOCK */\n', '#ifndef __KERNEL__\n#define KVM_TS_USER_ONLY 1\n#endif\n');
  t.teardown(() => rmSync(between.dir, { recursive: true, force: true }));
  const spec = generate(between.dir);
  t.is(spec.structs.kvm_irqfd.size, 32);
});
