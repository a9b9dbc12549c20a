import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { loadSpecRef, parseSpecText, seriesOf, DEFAULT_SPEC_ROOT, AbiInputError, type LoadedSpec } from '../diff/load.js';
import { generateSpec, serializeSpec, relativeToIncludeDir } from '../generator/generate.js';
import { HeaderError } from '../generator/tokens.js';
import { SPEC_ID } from '../spec/ids.js';
import { ARCHES, type Arch } from '../spec/types.js';
import { SpecSourceError } from './errors.js';
import { gitTreeFiles, parseGitSource } from './git-tree.js';
import { isLinuxTree, makefileVersion, stageTree, workTreeFiles, type TreeFiles } from './linux-tree.js';
import { cachedSpec } from './spec-cache.js';
import { cacheReady, includeRoot, pinnedSets } from '../headers/index.js';

export interface SourceOptions {
  /** The arch to generate for (header dirs, Linux trees, git refs) and of a bare pinned id; default x86_64. */
  arch?: Arch;
  specRoot?: string;
  /** Diagnostics (left-out kernel-only macros) fail generation. */
  strict?: boolean;
  /** One line per generator warning. */
  warn?: (line: string) => void;
}

/** Debian's multiarch directory, where a distro's /usr/include keeps asm/. */
const MULTIARCH: Record<Arch, string> = { x86_64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu', riscv64: 'riscv64-linux-gnu' };

export type SourceKind = 'spec-file' | 'pinned' | 'headers-dir' | 'linux-tree' | 'git';

/**
 * Every way to name a spec: a spec file, a pinned id ("6.1/x86_64", or "6.1" for the arch in
 * `opts`), an installed include dir, a Linux source tree, or `git:TREE@REF`. Header sources are
 * generated on the fly (cached by content). Unusable sources throw SpecSourceError (exit 2);
 * unreadable or malformed spec files and header errors throw AbiInputError (exit 1).
 */
export function loadSpecSource(ref: string, opts: SourceOptions = {}): LoadedSpec & { kind: SourceKind } {
  const arch = opts.arch ?? 'x86_64';
  const specRoot = opts.specRoot ?? DEFAULT_SPEC_ROOT;
  if (ref.startsWith('git:')) {
    const { tree, ref: rev } = parseGitSource(ref);
    const files = gitTreeFiles(resolve(tree), rev, arch);
    return { ...fromTree(ref, files, makefileVersion(files.makefile), arch, opts), kind: 'git' };
  }
  if (!ref.includes('/') && SPEC_ID.test(ref) && existsSync(join(specRoot, ref, `${arch}.json`))) {
    return { ...loadSpecRef(`${ref}/${arch}`, specRoot), kind: 'pinned' };
  }
  if (existsSync(ref) && statSync(ref).isDirectory()) {
    const dir = resolve(ref);
    if (isLinuxTree(dir)) {
      const makefile = existsSync(join(dir, 'Makefile')) ? readFileSync(join(dir, 'Makefile'), 'utf8') : undefined;
      return { ...fromTree(ref, workTreeFiles(dir, arch), makefileVersion(makefile), arch, opts), kind: 'linux-tree' };
    }
    return { ...fromHeadersDir(ref, dir, arch, opts), kind: 'headers-dir' };
  }
  const slash = ref.lastIndexOf('/');
  const pinned = slash > 0 && SPEC_ID.test(ref.slice(0, slash)) && ARCHES.includes(ref.slice(slash + 1) as Arch);
  return { ...loadSpecRef(ref, specRoot), kind: pinned ? 'pinned' : 'spec-file' };
}

function fromTree(ref: string, files: TreeFiles, kernel: string | undefined, arch: Arch, opts: SourceOptions): LoadedSpec {
  const fallback = fallbackRoots(arch);
  const version = kernel ?? 'unknown';
  return generated(ref, arch, [files.digest(), ...fallback.keys], opts, (warn) => {
    const staged = stageTree(files, arch);
    try {
      return generateSpec({
        includeDirs: [staged.includeDir, ...fallback.dirs],
        arch,
        kernel: version,
        strict: opts.strict,
        warn,
        displayPath: (p) => (p.startsWith(staged.includeDir + sep) ? staged.displayPath(p) : relativeToIncludeDir(fallback.dirs)(p)),
      });
    } finally {
      staged.remove();
    }
  });
}

/** An installed include root (a distro's /usr/include, a kernel build's usr/include). */
function fromHeadersDir(ref: string, dir: string, arch: Arch, opts: SourceOptions): LoadedSpec {
  const own = [dir, join(dir, MULTIARCH[arch])].filter((d) => existsSync(d) && statSync(d).isDirectory());
  // The KVM headers themselves must come from DIR: a fallback may only fill in generic headers.
  for (const h of ['linux/kvm.h', 'asm/kvm.h']) {
    if (!own.some((d) => existsSync(join(d, h)))) {
      throw new SpecSourceError(`${ref}: neither a Linux tree (include/uapi/linux/kvm.h) nor an include dir (${h} not found in ${own.join(' or ')})`);
    }
  }
  // After DIR and the pinned cache, the host's own include dirs, as gcc would search them.
  const fallback = fallbackRoots(arch);
  const host = hostIncludeDirs(arch);
  const includeDirs = [...own, ...fallback.dirs, ...host];
  return generated(ref, arch, [dirDigest(own), ...fallback.keys, `host ${host.join(' ')}`, dirDigest(host)], opts, (warn) => {
    const used: string[] = [];
    const spec = generateSpec({ includeDirs, arch, kernel: kernelVersion(dir), strict: opts.strict, warn, included: (files) => used.push(...files) });
    // Each header under the innermost host dir holding it (the multiarch dir is inside /usr/include).
    const innermost = (f: string) => host.filter((d) => f.startsWith(d + sep)).sort((x, y) => y.length - x.length)[0];
    const fromHost = host
      .map((d) => ({ dir: d, files: used.filter((f) => innermost(f) === d).map((f) => relative(d, f).split(sep).join('/')) }))
      .filter((h) => h.files.length > 0);
    if (fromHost.length > 0) {
      const where = fallback.dirs.length ? `neither ${ref} nor the pinned header cache has them` : `${ref} lacks them and the pinned header cache is not synced`;
      warn(`warning: ${ref}: generic headers from the host (${where}): ${fromHost.map((h) => `${h.files.join(', ')} from ${h.dir}`).join('; ')}`);
    }
    return spec;
  });
}

/** Where Debian's gcc looks for the host's headers; KVM_TS_HOST_INCLUDE stands in for /usr/include. */
const HOST_ARCH: Partial<Record<string, Arch>> = { x64: 'x86_64', arm64: 'arm64', riscv64: 'riscv64' };

/** The host's /usr/include, and its multiarch dir when `arch` is the host's own (another arch's asm/ is not there). */
function hostIncludeDirs(arch: Arch): string[] {
  const root = resolve(process.env.KVM_TS_HOST_INCLUDE || '/usr/include');
  const dirs = [root, ...(HOST_ARCH[process.arch] === arch ? [join(root, MULTIARCH[arch])] : [])];
  return dirs.filter((d) => existsSync(d) && statSync(d).isDirectory());
}

function generated(ref: string, arch: Arch, key: string[], opts: SourceOptions, make: (warn: (line: string) => void) => ReturnType<typeof generateSpec>): LoadedSpec {
  const warnings: string[] = [];
  let entry;
  try {
    entry = cachedSpec([arch, opts.strict ? 'strict' : '', ...key], () => {
      const spec = make((line) => warnings.push(line));
      return { json: serializeSpec(spec), warnings };
    });
  } catch (err) {
    if (err instanceof HeaderError) throw new AbiInputError(`${ref}: ${err.message}`);
    throw err;
  }
  // On a miss the warnings were collected while generating; on a hit they are replayed.
  for (const w of entry.warnings) opts.warn?.(w);
  const spec = parseSpecText(entry.json, ref);
  return { spec, label: { id: seriesOf(spec.kernel), arch: spec.arch, kernel: spec.kernel, source: ref } };
}

/** The synced cache of the newest pinned set for `arch`, if present: it supplies generic headers a source lacks. */
function fallbackRoots(arch: Arch): { dirs: string[]; keys: string[] } {
  try {
    const newest = pinnedSets().filter((s) => s.arches.includes(arch) && cacheReady(s.id, arch)).at(-1);
    return newest ? { dirs: [includeRoot(newest.id, arch)], keys: [`fallback ${newest.id} ${newest.kernel}`] } : { dirs: [], keys: [] };
  } catch {
    return { dirs: [], keys: [] }; // no pins file or cache (e.g. an installed package): the source has to be complete
  }
}

/** A digest of the KVM-relevant part of include dirs (linux/, asm/, asm-generic/). */
function dirDigest(dirs: string[]): string {
  const h = createHash('sha256');
  for (const d of dirs) {
    const walk = (abs: string): void => {
      for (const e of readdirSync(abs, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
        const p = join(abs, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile()) h.update(relative(d, p)).update('\0').update(readFileSync(p)).update('\0');
      }
    };
    for (const sub of ['linux', 'asm', 'asm-generic']) if (existsSync(join(d, sub))) walk(join(d, sub));
  }
  return h.digest('hex');
}

/** "6.12.107" from DIR/linux/version.h, or "unknown". */
export function kernelVersion(dir: string): string {
  const path = join(dir, 'linux', 'version.h');
  if (!existsSync(path)) return 'unknown';
  const text = readFileSync(path, 'utf8');
  const num = (name: string): number | undefined => {
    const m = new RegExp(`^#\\s*define\\s+${name}\\s+(\\d+)\\s*$`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  // Newer headers spell the parts out; LINUX_VERSION_CODE clamps the sublevel at 255.
  const [major, minor, sub] = [num('LINUX_VERSION_MAJOR'), num('LINUX_VERSION_PATCHLEVEL'), num('LINUX_VERSION_SUBLEVEL')];
  if (major !== undefined && minor !== undefined && sub !== undefined) return `${major}.${minor}.${sub}`;
  const code = num('LINUX_VERSION_CODE');
  if (code === undefined) return 'unknown';
  return `${code >> 16}.${(code >> 8) & 0xff}.${code & 0xff}`;
}
