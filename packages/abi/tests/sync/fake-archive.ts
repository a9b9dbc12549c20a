/**
 * A throwaway Debian "archive" for sync tests: fixture linux-libc-dev .debs built with dpkg-deb, and
 * fake apt-get / apt-cache scripts that serve them, log every call and can be told to fail.
 * Nothing touches the network or the real caches.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256File } from '../../src/debian/hash.js';
import { findOnPath } from '../../src/debian/unpacked.js';

export const PKG = 'linux-libc-dev';
export const SUITE = 'fakesuite';
/** The sync's mirror in these tests (KVM_TS_DEBIAN_MIRROR): a reserved name nothing resolves. */
export const FAKE_MIRROR = 'http://archive.invalid/debian';

/** Header text by package path; the closure of linux/kvm.h + asm/kvm.h is everything but unrelated.h. */
const FILES: Record<string, string> = {
  'usr/include/linux/kvm.h': '#ifndef _LINUX_KVM_H\n#define _LINUX_KVM_H\n#include <linux/types.h>\n#include <asm/kvm.h>\n#ifdef __KERNEL__\n# include <linux/kernel_only.h>\n#endif\n#define KVM_API_VERSION 12\n#endif\n',
  'usr/include/linux/types.h': '#include <asm/types.h>\n#include <stddef.h> /* not in the package */\n',
  'usr/include/linux/kernel_only.h': '/* reached only through an #ifdef branch */\n',
  'usr/include/linux/unrelated.h': '/* not included by anything */\n',
  'usr/include/asm-generic/int-ll64.h': 'typedef unsigned long long __u64;\n',
  'usr/lib/linux/uapi/x86/asm/kvm.h': '#include "types.h"\nstruct kvm_regs { __u64 rax; };\n',
  'usr/lib/linux/uapi/x86/asm/types.h': '#include <asm-generic/int-ll64.h>\n',
};

export const CLOSURE = ['asm-generic/int-ll64.h', 'asm/kvm.h', 'asm/types.h', 'linux/kernel_only.h', 'linux/kvm.h', 'linux/types.h'];

export interface FakeArchive {
  root: string;
  debs: string;
  bin: string;
  /** Env for a sync run: private caches, fixture pins, fake apt first on PATH. */
  env: NodeJS.ProcessEnv;
  pinsFile: string;
  headersCache: string;
  userCache: string;
  aptLog: string;
  /** Builds pkg_<version>_all.deb into the archive, returning its sha256. */
  buildDeb(version: string): string;
  /** Versions apt-cache madison lists, as [version, suite]. */
  setMadison(rows: Array<[string, string]>): void;
  /** Next apt-get update behaves like: 'ok' | 'unreachable'. */
  setUpdate(mode: 'ok' | 'unreachable'): void;
  headerHashes(version: string): Record<string, string>;
  writePins(pin: { version: string; debSha256: string; headers: Record<string, string> }): void;
  aptCalls(): string[];
  cleanup(): void;
}

const FAKE_APT_GET = `#!/bin/bash
# Fake apt-get: logs the call, then serves "update" and "download PKG=VER" from $FAKE_ARCHIVE.
cmd=""; for a in "$@"; do case "$a" in update|download) cmd="$a";; esac; done
echo "apt-get $cmd" >> "$FAKE_ARCHIVE/apt.log"
case "$cmd" in
  update)
    if [ "$(cat "$FAKE_ARCHIVE/update-mode")" = unreachable ]; then
      echo "Err:1 ${FAKE_MIRROR} ${SUITE} InRelease"
      echo "  Could not resolve 'archive.invalid'"
      echo "W: Failed to fetch ${FAKE_MIRROR}/dists/${SUITE}/InRelease  Could not resolve 'archive.invalid'" >&2
      echo "E: Some index files failed to download. They have been ignored, or old ones used instead." >&2
      exit 100
    fi
    echo "Get:1 ${FAKE_MIRROR} ${SUITE} InRelease"; exit 0;;
  download)
    spec="\${@: -1}"; pkg="\${spec%%=*}"; ver="\${spec#*=}"
    f="$FAKE_ARCHIVE/debs/\${pkg}_\${ver}_all.deb"
    if [ -f "$f" ]; then cp "$f" .; exit 0; fi
    echo "E: Version '\$ver' for '\$pkg' was not found" >&2; exit 100;;
esac
echo "E: fake apt-get: unsupported call: $*" >&2; exit 100
`;

const FAKE_APT_CACHE = `#!/bin/bash
echo "apt-cache \${@: -2}" >> "$FAKE_ARCHIVE/apt.log"
cat "$FAKE_ARCHIVE/madison"
`;

/** Tools the sync legitimately needs besides apt: dpkg-deb and what it and the fake scripts run. */
const HOST_TOOLS = ['dpkg-deb', 'apt-config', 'tar', 'bash', 'sh', 'cp', 'cat', 'grep', 'sed', 'xz', 'gzip', 'zstd', 'rm', 'mkdir'];

export function fakeArchive(opts: { withApt?: boolean } = {}): FakeArchive {
  const root = mkdtempSync(join(tmpdir(), 'kvm-ts-sync-test-'));
  const debs = join(root, 'debs');
  const bin = join(root, 'bin');
  const tools = join(root, 'tools');
  for (const d of [debs, bin, tools]) mkdirSync(d);
  // A PATH of only these tools: so "apt-get missing" is real even though the host has apt-get.
  for (const tool of HOST_TOOLS) {
    const p = findOnPath(tool);
    if (p) symlinkSync(p, join(tools, tool));
  }
  if (opts.withApt !== false) {
    writeFileSync(join(bin, 'apt-get'), FAKE_APT_GET);
    writeFileSync(join(bin, 'apt-cache'), FAKE_APT_CACHE);
    chmodSync(join(bin, 'apt-get'), 0o755);
    chmodSync(join(bin, 'apt-cache'), 0o755);
  }
  writeFileSync(join(root, 'update-mode'), 'ok');
  writeFileSync(join(root, 'madison'), '');
  writeFileSync(join(root, 'apt.log'), '');
  const pinsFile = join(root, 'versions.json');
  const headersCache = join(root, 'headers-cache');
  const userCache = join(root, 'user-cache');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${bin}:${tools}`,
    FAKE_ARCHIVE: root,
    KVM_TS_HEADERS_PINS: pinsFile,
    KVM_TS_HEADERS_CACHE: headersCache,
    XDG_CACHE_HOME: userCache,
    KVM_TS_DEBIAN_MIRROR: FAKE_MIRROR,
    KVM_TS_DEBUG: '',
  };
  const trees = new Map<string, string>();

  const treeFor = (version: string): string => {
    const cached = trees.get(version);
    if (cached) return cached;
    const tree = join(root, `tree-${version}`);
    for (const [rel, text] of Object.entries(FILES)) {
      mkdirSync(dirname(join(tree, rel)), { recursive: true });
      writeFileSync(join(tree, rel), text.replace('KVM_API_VERSION 12', `KVM_API_VERSION 12 /* ${version} */`));
    }
    mkdirSync(join(tree, 'DEBIAN'));
    writeFileSync(
      join(tree, 'DEBIAN', 'control'),
      `Package: ${PKG}\nVersion: ${version}\nArchitecture: all\nMaintainer: kvm-ts tests <tests@invalid>\nDescription: fixture headers\n`,
    );
    trees.set(version, tree);
    return tree;
  };

  return {
    root,
    debs,
    bin,
    env,
    pinsFile,
    headersCache,
    userCache,
    aptLog: join(root, 'apt.log'),
    buildDeb(version) {
      const out = join(debs, `${PKG}_${version}_all.deb`);
      const r = spawnSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', treeFor(version), out], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`dpkg-deb --build failed: ${r.stderr}`);
      return sha256File(out);
    },
    setMadison(rows) {
      writeFileSync(join(root, 'madison'), rows.map(([v, s]) => ` ${PKG} | ${v} | ${FAKE_MIRROR} ${s}/main amd64 Packages\n`).join(''));
    },
    setUpdate(mode) {
      writeFileSync(join(root, 'update-mode'), mode);
    },
    headerHashes(version) {
      const tree = treeFor(version);
      const map: Record<string, string> = {};
      for (const rel of CLOSURE) {
        const src = rel.startsWith('asm/') ? `usr/lib/linux/uapi/x86/${rel}` : `usr/include/${rel}`;
        map[rel] = sha256File(join(tree, src));
      }
      return map;
    },
    writePins({ version, debSha256, headers }) {
      const set = { id: '9.9', package: PKG, debianVersion: version, suite: SUITE, series: '9.9', debArch: 'all', debSha256, arches: { x86_64: headers } };
      writeFileSync(pinsFile, JSON.stringify({ sets: [set] }, null, 2));
    },
    aptCalls() {
      return existsSync(join(root, 'apt.log')) ? readFileSync(join(root, 'apt.log'), 'utf8').split('\n').filter(Boolean) : [];
    },
    cleanup() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

const CLI_MAIN = fileURLToPath(new URL('../../../cli/src/main.ts', import.meta.url));

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `kvm-cli abi sync …` from sources in a child process with `env`. */
export function runSyncCli(env: NodeJS.ProcessEnv, args: string[] = []): CliRun {
  const script = `import { main } from ${JSON.stringify(CLI_MAIN)}; main(${JSON.stringify(['abi', 'sync', ...args])}).then((c) => { process.exitCode = c; });`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--conditions=kvm-ts-source', '--input-type=module', '-e', script], {
    env,
    encoding: 'utf8',
    timeout: 60_000,
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
