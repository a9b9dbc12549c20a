/**
 * A hostile git:REPO@REF source: trees whose entries git's object store holds but checkout refuses
 * (`..`, a symlink), made with plumbing (hash-object, mktree, commit-tree). kvm-cli refuses the
 * entry in one line, exits 2 and writes nothing outside its scratch directory.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './helpers/cli.js';

// The CLI's scratch directories go under a TMPDIR of our own, so where `..` leads is known.
const base = mkdtempSync(join(tmpdir(), 'kvm-ts-hostile-tree-'));
const scratch = join(base, 'tmp');
mkdirSync(scratch);
process.env.TMPDIR = scratch;
process.env.KVM_TS_SPEC_CACHE = mkdtempSync(join(base, 'spec-cache-'));

test.after.always(() => rmSync(base, { recursive: true, force: true }));

const repo = join(base, 'repo');
execFileSync('git', ['init', '-q', repo]);
const git = (args: string[], input?: string) =>
  execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@t.invalid', ...args], { input, encoding: 'utf8' }).trim();
const blob = (text: string) => git(['hash-object', '-w', '--stdin'], text);
const tree = (entries: Array<[mode: string, type: 'blob' | 'tree', id: string, name: string]>) =>
  git(['mktree'], entries.map(([mode, type, id, name]) => `${mode} ${type} ${id}\t${name}\n`).join(''));

/** A commit whose include/uapi/linux holds kvm.h and, beside it, `extra`. */
function commitWith(extra: Array<[string, 'blob' | 'tree', string, string]>): string {
  const kvm = blob('#ifndef _UAPI_LINUX_KVM_H\n#define _UAPI_LINUX_KVM_H\n#define KVMIO 0xAE\n#endif\n');
  const linux = tree([['100644', 'blob', kvm, 'kvm.h'], ...extra]);
  const uapi = tree([['040000', 'tree', linux, 'linux']]);
  const include = tree([['040000', 'tree', uapi, 'uapi']]);
  const root = tree([['040000', 'tree', include, 'include']]);
  return git(['commit-tree', root, '-m', 'hostile']);
}

// include/uapi/linux/../../../victim/evil.h: staged under TMPDIR/kvm-ts-linux-XXXX, it lands in base/victim.
const evil = tree([['100644', 'blob', blob('#define EVIL 1\n'), 'evil.h']]);
const victim = tree([['040000', 'tree', evil, 'victim']]);
const up1 = tree([['040000', 'tree', victim, '..']]);
const up2 = tree([['040000', 'tree', up1, '..']]);
const dotdot = commitWith([['040000', 'tree', up2, '..']]);
const symlink = commitWith([['120000', 'blob', blob('/etc/passwd'), 'types.h']]);

/** kvm-ts's own scratch directories (tsx keeps a cache there too). */
const ours = () => readdirSync(scratch).filter((n) => n.startsWith('kvm-ts-'));

function refusedInOneLine(t: import('ava').ExecutionContext, r: ReturnType<typeof cli>, entry: RegExp): void {
  t.is(r.code, 2, r.stderr);
  const lines = r.stderr.split('\n').filter(Boolean);
  t.is(lines.length, 1, r.stderr);
  t.regex(lines[0] ?? '', entry);
}

test('git:REPO@REF with a `..` tree entry: one line naming it, exit 2, nothing written outside', (t) => {
  const r = cli('abi', 'show', `git:${repo}@${dotdot}`);
  refusedInOneLine(t, r, /tree entry "include\/uapi\/linux\/\.\.\/\.\.\/\.\.\/victim\/evil\.h" refused: a '\.\.' component/);
  t.false(existsSync(join(base, 'victim')), 'a file was written outside the scratch directory');
  t.deepEqual(ours(), [], 'the scratch directory was left behind');
});

test('git:REPO@REF with a symlink header: refused, not followed', (t) => {
  const r = cli('abi', 'show', `git:${repo}@${symlink}`);
  refusedInOneLine(t, r, /tree entry "include\/uapi\/linux\/types\.h" refused: a symlink, not followed/);
  t.deepEqual(ours(), []);
});
