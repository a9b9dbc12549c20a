/**
 * The one rule for every name an input hands us and we turn into a file (a git tree entry, a .deb
 * member, an #include target, a header-cache key): a plain relative path, and the file it names
 * stays inside the directory it is put in. git's object store and hand-made archives hold names
 * like `..` that checkout and tar refuse; kvm-ts reads those stores directly, so it refuses them too.
 */
import { realpathSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';

/** A name as an error line may print it: control characters and backslashes escaped, quoted. */
export function quoted(name: string): string {
  return JSON.stringify(name);
}

/** Why `path` is not a plain relative path (`a/b.h`), or undefined when it is. */
export function entryPathProblem(path: string): string | undefined {
  if (path === '') return 'an empty path';
  if (path.includes('\0')) return 'a NUL byte in it';
  if (path.includes('\\')) return 'a backslash in it';
  if (path.startsWith('/')) return 'an absolute path';
  for (const part of path.split('/')) {
    if (part === '') return 'an empty component';
    if (part === '.' || part === '..') return `a '${part}' component`;
  }
  return undefined;
}

/** Is `path` (resolved) `dir` itself or below it? */
function within(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!isAbsolute(rel) && rel !== '..' && !rel.startsWith(`..${sep}`));
}

/**
 * `dir/rel` once `rel` is a plain relative path, else `refuse(problem)` is thrown. When `real` is
 * set, an existing file is also resolved through symlinks and must still be inside `dir`: for
 * reading from a tree someone else unpacked (a missing one is left to the caller's own check).
 */
export function joinInside(dir: string, rel: string, refuse: (problem: string) => Error, real = false): string {
  const problem = entryPathProblem(rel);
  if (problem) throw refuse(problem);
  const path = join(dir, rel);
  if (!within(resolve(dir), resolve(path))) throw refuse('it leaves its directory');
  if (real) {
    let realPath: string;
    try {
      realPath = realpathSync(path);
    } catch {
      return path; // nothing there: the caller's own "missing" handling applies
    }
    if (!within(realpathSync(dir), realPath)) throw refuse('it is a symlink out of its directory');
  }
  return path;
}
