import { existsSync, readFileSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import type { Arch } from '../spec/types.js';
import { joinInside, quoted } from '../sources/entry-path.js';
import { HeaderSyncError } from './errors.js';

/** Where each arch's asm/ lives in linux-libc-dev: arch-independent packages, then multiarch ones. */
const ASM_DIRS: Record<Arch, string[]> = {
  x86_64: ['usr/lib/linux/uapi/x86/asm', 'usr/include/x86_64-linux-gnu/asm'],
  arm64: ['usr/lib/linux/uapi/arm64/asm', 'usr/include/aarch64-linux-gnu/asm'],
  riscv64: ['usr/lib/linux/uapi/riscv/asm', 'usr/include/riscv64-linux-gnu/asm'],
};

/** The headers sync starts from; everything else is what they include. */
export const ROOT_HEADERS = ['linux/kvm.h', 'asm/kvm.h'];

export interface HeaderClosure {
  /** Include-root-relative path ("asm/kvm.h") → file in the unpacked package. */
  files: Map<string, string>;
  /** Includes the package cannot satisfy (libc/compiler headers), as "<name> from <includer>". */
  unresolved: string[];
}

const INCLUDE = /^\s*#\s*include\s*([<"])([^>"]+)[>"]/;

/**
 * The transitive #include closure of linux/kvm.h and the arch's asm/kvm.h inside an unpacked
 * linux-libc-dev. Every #include line is followed, whichever #if branch it sits in, so the copied
 * include root compiles under any configuration a consumer picks.
 */
export function headerClosure(unpacked: string, arch: Arch): HeaderClosure {
  const asmDir = ASM_DIRS[arch].map((d) => join(unpacked, d)).find((d) => existsSync(join(d, 'kvm.h')));
  if (!asmDir) throw new HeaderSyncError('extract', `the package has no asm/kvm.h for ${arch} (looked in ${ASM_DIRS[arch].join(', ')})`);
  // Every name is checked before it is looked up, and what it finds must not be a symlink out of the package.
  const locate = (rel: string, includer = 'the package', written = rel): string | undefined => {
    const refuse = (why: string) => new HeaderSyncError('extract', `#include ${quoted(written)} in ${includer} refused: ${why}`);
    const [dir, name] = rel.startsWith('asm/') ? [asmDir, rel.slice(4)] : [join(unpacked, 'usr/include'), rel];
    const file = joinInside(dir, name, refuse);
    return existsSync(file) ? joinInside(unpacked, relative(unpacked, file), refuse, true) : undefined;
  };
  const files = new Map<string, string>();
  const unresolved: string[] = [];
  const queue: string[] = [];
  for (const root of ROOT_HEADERS) {
    const file = locate(root);
    if (!file) throw new HeaderSyncError('extract', `the package has no ${root} for ${arch}`);
    files.set(root, file);
    queue.push(root);
  }
  while (queue.length > 0) {
    const rel = queue.shift() as string;
    for (const line of readFileSync(files.get(rel) as string, 'utf8').split('\n')) {
      const m = INCLUDE.exec(line);
      if (!m) continue;
      // A quoted include is first looked up next to its includer, as the preprocessor does.
      const candidates = m[1] === '"' ? [posix.normalize(posix.join(posix.dirname(rel), m[2])), m[2]] : [m[2]];
      const hit = candidates.map((c) => [c, locate(c, rel, m[2])] as const).find(([, f]) => f !== undefined);
      if (!hit) {
        unresolved.push(`${m[2]} from ${rel}`);
        continue;
      }
      const [target, file] = hit;
      if (!files.has(target)) {
        files.set(target, file as string);
        queue.push(target);
      }
    }
  }
  // Code-unit order, not localeCompare: versions.json and synced.json must not depend on the machine's locale.
  return { files: new Map([...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))), unresolved };
}

