/**
 * The cache of specs generated from headers, trees and git refs: bounded by total size with the
 * least recently used entries going first, `abi cache` to see it and `abi cache --clear` to empty it.
 */
import test from 'ava';
import { mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { SHARED_HEADERS } from '../../abi/tests/helpers/uapi-header.js';
import { cli } from './helpers/cli.js';

const base = mkdtempSync(join(tmpdir(), 'kvm-ts-cache-'));
const cache = join(base, 'specs');
process.env.KVM_TS_SPEC_CACHE = cache;

/** A complete include dir whose one constant differs: a spec of its own, of the same size as the others. */
function headers(name: string, value: number): string {
  const dir = join(base, name);
  const files: Record<string, string> = {
    'linux/types.h': 'typedef unsigned int __u32;\ntypedef unsigned long long __u64;\n',
    'linux/ioctl.h': SHARED_HEADERS['linux/ioctl.h'],
    'linux/kvm.h': `#include <linux/types.h>\n#include <linux/ioctl.h>\n#include <asm/kvm.h>\n#define KVMIO 0xAE\nstruct kvm_frob { __u64 addr; __u32 flags; };\n/*\n * ioctls for vcpu fds\n */\n#define KVM_FROB _IOW(KVMIO, 0xf0, struct kvm_frob)\n`,
    'asm/kvm.h': `#define KVM_FROB_VALUE ${value}\n`,
  };
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
  return dir;
}

const entries = () => new Set(readdirSync(cache).filter((n) => n.endsWith('.json')));
/** Generates the spec of `dir` and returns the cache entry it made (or undefined on a hit). */
function generate(dir: string): string | undefined {
  const before = entries();
  const r = cli('abi', 'generate', '--headers', dir, '--arch', 'x86_64', '--out', join(base, 'out.json'));
  if (r.code !== 0) throw new Error(r.stderr);
  return [...entries()].find((n) => !before.has(n));
}

test.serial('abi cache: where, how many, how big; the bound removes the least recently used first; --clear empties it', (t) => {
  const empty = cli('abi', 'cache');
  t.is(empty.code, 0, empty.stderr);
  t.is(empty.stdout, `spec cache: ${cache}: 0 entries, 0.0 MiB (at most 64.0 MiB, least recently used first out)\n`);

  mkdirSync(cache, { recursive: true });
  const [a, b, c] = [headers('a', 101), headers('b', 102), headers('c', 103)].map(generate);
  t.truthy(a && b && c);
  const size = statSync(join(cache, a!)).size;
  for (const e of [b!, c!]) t.is(statSync(join(cache, e)).size, size, 'same-sized entries');
  t.regex(cli('abi', 'cache').stdout, /: 3 entries, /);

  // Room for three: a fourth pushes out the oldest.
  process.env.KVM_TS_SPEC_CACHE_MAX = String(3 * size);
  try {
    const d = generate(headers('d', 104));
    t.deepEqual([...entries()].sort(), [b!, c!, d!].sort());
    // A hit is a use: b is now newer than c, so the next one pushes out c.
    t.is(generate(join(base, 'b')), undefined, 'b is a hit');
    const e = generate(headers('e', 105));
    t.deepEqual([...entries()].sort(), [b!, d!, e!].sort());
    t.regex(cli('abi', 'cache').stdout, new RegExp(`: 3 entries, .* \\(at most ${(3 * size / 1048576).toFixed(1)} MiB`));
  } finally {
    delete process.env.KVM_TS_SPEC_CACHE_MAX;
  }

  const cleared = cli('abi', 'cache', '--clear');
  t.is(cleared.code, 0, cleared.stderr);
  t.regex(cleared.stdout, new RegExp(`^spec cache: ${cache}: removed 3 entries \\(`));
  t.is(entries().size, 0);
  t.regex(cli('abi', 'cache').stdout, /: 0 entries, 0\.0 MiB/);
  t.is(cli('abi', 'cache', 'extra').code, 2);
});
