// Fetches a stock Debian bookworm kernel (the bzImage from linux-image-<abi>-amd64) for the loader
// tests into ~/.cache/kvm-ts/kernels/vmlinuz and prints its path. Nothing is installed: apt runs
// against a private sources list and state directory, and dpkg-deb only extracts /boot/vmlinuz-*.
// A cached kernel is reused; KVM_TS_TEST_KERNEL=<path> skips the download entirely.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const SUITES = ['bookworm', 'bookworm-updates', 'bookworm-security'];
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

function cacheDir() {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'kvm-ts', 'kernels');
}

function fail(msg) {
  console.error(`fetch-test-kernel: ${msg}`);
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) fail(`${cmd} not available: ${r.error.message}`);
  if (r.status !== 0) {
    const line = `${r.stderr}\n${r.stdout}`.split('\n').map((l) => l.trim()).find((l) => /^(E:|Err|error)/i.test(l)) ?? r.stderr.trim().split('\n')[0];
    fail(`${cmd} ${args.filter((a) => !a.includes('=')).join(' ')} failed: ${line}`);
  }
  return r.stdout;
}

function compareVersions(a, b) {
  const pa = a.split(/[.-]/).map(Number);
  const pb = b.split(/[.-]/).map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

const dir = cacheDir();
const target = join(dir, 'vmlinuz');
if (process.env.KVM_TS_TEST_KERNEL) {
  if (!existsSync(process.env.KVM_TS_TEST_KERNEL)) fail(`KVM_TS_TEST_KERNEL=${process.env.KVM_TS_TEST_KERNEL} does not exist`);
  console.log(process.env.KVM_TS_TEST_KERNEL);
  process.exit(0);
}
if (existsSync(target)) {
  console.log(target);
  process.exit(0);
}

const aptDir = join(dir, 'apt');
for (const sub of ['lists/partial', 'cache/archives/partial']) mkdirSync(join(aptDir, sub), { recursive: true });
const mirror = process.env.KVM_TS_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
writeFileSync(
  join(aptDir, 'sources.list'),
  SUITES.map((s) => `deb [arch=amd64 signed-by=${KEYRING}] ${s.endsWith('-security') ? mirror.replace(/\/debian\/?$/, '/debian-security') : mirror} ${s} main\n`).join(''),
);
const aptOptions = [
  `Dir::Etc::SourceList=${join(aptDir, 'sources.list')}`,
  'Dir::Etc::SourceParts=/dev/null',
  `Dir::State::Lists=${join(aptDir, 'lists')}`,
  `Dir::Cache=${join(aptDir, 'cache')}`,
  'Dir::State::status=/dev/null',
  'Debug::NoLocking=1',
  'APT::Architecture=amd64',
  'APT::Architectures=amd64',
  'Acquire::Languages=none',
  'Acquire::Retries=2',
  ...(process.getuid?.() === 0 ? ['APT::Sandbox::User=root'] : []),
].flatMap((o) => ['-o', o]);

run('apt-get', [...aptOptions, '-qq', 'update']);
const names = run('apt-cache', [...aptOptions, 'pkgnames', 'linux-image-'])
  .split('\n')
  .map((n) => /^linux-image-(\d+\.\d+\.\d+-\d+)-amd64$/.exec(n.trim()))
  .filter(Boolean)
  .map((m) => ({ pkg: m[0], abi: m[1] }))
  .sort((a, b) => compareVersions(b.abi, a.abi));
if (names.length === 0) fail('no linux-image-<version>-amd64 package in Debian bookworm');
const { pkg } = names[0];

const work = mkdtempSync(join(dir, 'dl-'));
try {
  run('apt-get', [...aptOptions, '-qq', 'download', pkg], { cwd: work });
  const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
  if (!deb) fail(`apt-get download ${pkg} produced no .deb`);
  const tar = spawnSync('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -x --wildcards -C "$2" "./boot/vmlinuz-*"', 'sh', join(work, deb), work], { encoding: 'utf8' });
  if (tar.status !== 0) fail(`extracting /boot/vmlinuz-* from ${deb} failed: ${tar.stderr.trim().split('\n')[0]}`);
  const kernel = readdirSync(join(work, 'boot')).find((f) => f.startsWith('vmlinuz-'));
  if (!kernel) fail(`${deb} holds no /boot/vmlinuz-*`);
  copyFileSync(join(work, 'boot', kernel), target + '.tmp');
  // Rename last, so an interrupted fetch never leaves a partial kernel at the well-known path.
  renameSync(target + '.tmp', target);
  writeFileSync(join(dir, 'vmlinuz.version'), `${kernel.slice('vmlinuz-'.length)} (${deb})\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
console.log(target);
