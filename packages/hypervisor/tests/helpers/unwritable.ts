import { execFileSync } from 'node:child_process';
import { chmodSync } from 'node:fs';

/**
 * Makes `path` impossible to open for writing, even for root (the immutable attribute, since a
 * plain chmod does not stop root), until the returned function undoes it.
 */
export function unwritable(path: string): () => void {
  if (process.getuid?.() !== 0) {
    chmodSync(path, 0o444);
    return () => chmodSync(path, 0o644);
  }
  execFileSync('chattr', ['+i', path]);
  return () => execFileSync('chattr', ['-i', path]);
}
