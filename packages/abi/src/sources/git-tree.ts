import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { Arch } from '../spec/types.js';
import { TREE_KVM_H, uapiRoots, type TreeFiles } from './linux-tree.js';
import { entryPathProblem, quoted } from './entry-path.js';
import { SpecSourceError } from './errors.js';

function git(tree: string, args: string[], input?: string): { ok: boolean; out: Buffer; err: string } {
  const r = spawnSync('git', ['-C', tree, ...args], { input, maxBuffer: 1 << 30 });
  if (r.error) throw new SpecSourceError(`git:${tree}: cannot run git (${(r.error as NodeJS.ErrnoException).code ?? r.error.message})`);
  return { ok: r.status === 0, out: r.stdout, err: r.stderr.toString('utf8').trim().split('\n')[0] ?? '' };
}

/**
 * The uapi headers of a Linux tree at `ref`, read from git's object store only (ls-tree and one
 * `cat-file --batch`): neither the work tree nor the index is touched, so a tree mid-rebase or with
 * uncommitted edits gives the same answer.
 */
export function gitTreeFiles(tree: string, ref: string, arch: Arch): TreeFiles & { makefile?: string } {
  const source = `git:${tree}@${ref}`;
  if (!git(tree, ['rev-parse', '--git-dir']).ok) throw new SpecSourceError(`${source}: ${tree} is not a git repository`);
  const commit = git(tree, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
  if (!commit.ok) throw new SpecSourceError(`${source}: no commit '${ref}' in ${tree}`);
  const rev = commit.out.toString('utf8').trim();
  const listing = git(tree, ['ls-tree', '-r', '-z', rev, '--', ...uapiRoots(arch)]);
  if (!listing.ok) throw new SpecSourceError(`${source}: git ls-tree failed: ${listing.err}`);
  const blobs = new Map<string, string>();
  // Submodules (commit entries) are never followed; a symlink or a name checkout would refuse is refused.
  for (const entry of listing.out.toString('utf8').split('\0')) {
    const m = /^(\d+) blob ([0-9a-f]+)\t([^]*)$/.exec(entry);
    if (!m) continue;
    const [, mode, id, path] = m;
    const problem = entryPathProblem(path) ?? (mode === '120000' ? 'a symlink, not followed' : undefined);
    if (problem) throw new SpecSourceError(`${source}: tree entry ${quoted(path)} refused: ${problem}`);
    if (path.endsWith('.h')) blobs.set(path, id);
  }
  if (!blobs.has(TREE_KVM_H)) throw new SpecSourceError(`${source}: no ${TREE_KVM_H} at ${ref}: not a Linux tree`);
  const makefile = git(tree, ['cat-file', 'blob', `${rev}:Makefile`]);
  const paths = [...blobs.keys()].sort();
  let contents: Map<string, Buffer> | undefined;
  const load = (): Map<string, Buffer> => {
    if (contents) return contents;
    const ids = paths.map((p) => blobs.get(p)!);
    const r = git(tree, ['cat-file', '--batch'], `${ids.join('\n')}\n`);
    if (!r.ok) throw new SpecSourceError(`${source}: git cat-file failed: ${r.err}`);
    contents = new Map();
    let at = 0;
    for (const p of paths) {
      const nl = r.out.indexOf(0x0a, at);
      const size = Number(/ (\d+)$/.exec(r.out.subarray(at, nl).toString('utf8'))?.[1]);
      contents.set(p, r.out.subarray(nl + 1, nl + 1 + size));
      at = nl + 1 + size + 1;
    }
    return contents;
  };
  return {
    paths,
    read: (p) => load().get(p)!,
    // Blob ids are content hashes already: a cache hit reads no header at all.
    digest: () => createHash('sha256').update(paths.map((p) => `${p} ${blobs.get(p)}`).join('\n')).digest('hex'),
    makefile: makefile.ok ? makefile.out.toString('utf8') : undefined,
  };
}

/** "git:TREE@REF" → { tree, ref }; the last '@' splits, so a ref may not contain one. */
export function parseGitSource(source: string): { tree: string; ref: string } {
  const body = source.slice('git:'.length);
  const at = body.lastIndexOf('@');
  if (at <= 0 || at === body.length - 1) throw new SpecSourceError(`${source}: expected git:TREE@REF (e.g. git:$HOME/linux@v6.8)`);
  return { tree: body.slice(0, at), ref: body.slice(at + 1) };
}
