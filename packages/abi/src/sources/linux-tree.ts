import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import type { Arch } from '../spec/types.js';
import { joinInside, quoted } from './entry-path.js';
import { SpecSourceError } from './errors.js';
import { installedHeaderText } from './install-text.js';

/** arch/<dir>/include/uapi/asm holds each arch's asm/kvm.h. */
export const LINUX_ARCH_DIR: Record<Arch, string> = { x86_64: 'x86', arm64: 'arm64', riscv64: 'riscv' };
export const TREE_KVM_H = 'include/uapi/linux/kvm.h';

/** The uapi files of a Linux tree at one point: its work tree, or a git ref (git-tree.ts). */
export interface TreeFiles {
  /** Tree-relative paths of every file under include/uapi and the arch's include/uapi. */
  paths: string[];
  read(path: string): Buffer;
  /** A digest of exactly these files' contents (git gives blob ids for free). */
  digest(): string;
}

/** Headers laid out as an include root, as `make headers_install` would produce them. */
export interface StagedHeaders {
  includeDir: string;
  /** Staged absolute path -> the tree-relative path of the file it came from. */
  displayPath(path: string): string;
  remove(): void;
}

export const uapiRoots = (arch: Arch): string[] => ['include/uapi', `arch/${LINUX_ARCH_DIR[arch]}/include/uapi`];

/** The work tree of a Linux source tree. */
export function workTreeFiles(root: string, arch: Arch): TreeFiles {
  const paths: string[] = [];
  const walk = (rel: string): void => {
    const abs = join(root, rel);
    if (!existsSync(abs)) return;
    for (const e of readdirSync(abs, { withFileTypes: true })) {
      const child = `${rel}/${e.name}`;
      if (e.isDirectory()) walk(child);
      else if (e.isFile() && e.name.endsWith('.h')) paths.push(child);
    }
  };
  for (const r of uapiRoots(arch)) walk(r);
  paths.sort();
  return {
    paths,
    read: (p) => readFileSync(join(root, p)),
    digest: () => {
      const h = createHash('sha256');
      for (const p of paths) h.update(`${p}\0`).update(readFileSync(join(root, p))).update('\0');
      return h.digest('hex');
    },
  };
}

/**
 * Writes the tree's uapi headers into a temporary include root: include/uapi/* at the top,
 * arch/<arch>/include/uapi/asm as asm/, and, for every asm-generic header the arch does not
 * override, the one-line asm/ wrapper Kbuild generates (the "generic-y" headers).
 */
export function stageTree(files: TreeFiles, arch: Arch): StagedHeaders {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-linux-'));
  const origin = new Map<string, string>();
  const [generic, archRoot] = uapiRoots(arch);
  const put = (rel: string, text: string, from: string): void => {
    const path = joinInside(dir, rel, (why) => new SpecSourceError(`${quoted(from)}: refused: ${why}`));
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    origin.set(rel, from);
  };
  try {
    for (const p of files.paths) {
      const rel = p.startsWith(`${archRoot}/`) ? p.slice(archRoot.length + 1) : p.startsWith(`${generic}/`) ? p.slice(generic.length + 1) : undefined;
      if (rel === undefined) continue;
      put(rel, installedHeaderText(files.read(p).toString('latin1')), p);
    }
    for (const p of files.paths) {
      const m = /^include\/uapi\/asm-generic\/(.+\.h)$/.exec(p);
      if (m && !origin.has(`asm/${m[1]}`)) put(`asm/${m[1]}`, `#include <asm-generic/${m[1]}>\n`, p);
    }
  } catch (err) {
    // A refused entry leaves nothing behind.
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    includeDir: dir,
    displayPath: (path) => {
      const rel = relative(dir, path).split(sep).join('/');
      return origin.get(rel) ?? path;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** "6.8.0-rc3" from the tree's top-level Makefile text, or undefined. */
export function makefileVersion(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const get = (k: string) => new RegExp(`^${k}\\s*=\\s*(\\S*)\\s*$`, 'm').exec(text)?.[1];
  const [v, p, s, e] = [get('VERSION'), get('PATCHLEVEL'), get('SUBLEVEL'), get('EXTRAVERSION') ?? ''];
  if (!v || !p || !/^\d+$/.test(v) || !/^\d+$/.test(p)) return undefined;
  return `${v}.${p}.${s && /^\d+$/.test(s) ? s : '0'}${e}`;
}

export function isLinuxTree(dir: string): boolean {
  return existsSync(join(dir, TREE_KVM_H)) && statSync(join(dir, TREE_KVM_H)).isFile();
}
