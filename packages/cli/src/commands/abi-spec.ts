import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ARCHES, isLocalSpecId, listSpecs, loadSpecFile, type Arch, type Spec, type SpecEntry } from '@kvm-ts/abi';
import { parse } from '../args.js';
import { CliError, UsageError } from '../errors.js';

const SHOW_USAGE = 'kvm-cli abi show [VERSION] [--arch ARCH] [--json]';
const LIST_USAGE = 'kvm-cli abi list';
const GENERATE_USAGE = 'kvm-cli abi generate --headers DIR --arch ARCH [--out FILE]';

/** Debian's multiarch directory, where a distro's /usr/include keeps asm/. */
const MULTIARCH: Record<Arch, string> = { x86_64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu', riscv64: 'riscv64-linux-gnu' };

function archOption(value: unknown, usage: string): Arch {
  const arch = typeof value === 'string' ? value : 'x86_64';
  if (!(ARCHES as readonly string[]).includes(arch)) {
    throw new UsageError(`unknown arch '${arch}' (available: ${ARCHES.join(', ')}; usage: ${usage})`);
  }
  return arch as Arch;
}

function loadSpec(entry: SpecEntry): Spec {
  try {
    return loadSpecFile(entry.path);
  } catch (err) {
    throw new CliError(err instanceof Error ? err.message : String(err));
  }
}

/** kvm-cli abi show: one committed spec, as a readable summary or the JSON file verbatim. */
export async function show(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { arch: { type: 'string' }, json: { type: 'boolean' } }, SHOW_USAGE);
  if (positionals.length > 1) throw new UsageError(`too many arguments (usage: ${SHOW_USAGE})`);
  const arch = archOption(values.arch, SHOW_USAGE);
  const wanted = positionals[0] ?? 'latest';
  const specs = listSpecs();
  const forArch = specs.filter((s) => s.arch === arch);
  const entry = wanted === 'latest'
    ? forArch.filter((s) => !isLocalSpecId(s.id)).at(-1)
    : forArch.find((s) => s.id === wanted);
  if (!entry) {
    const available = specs.length > 0 ? specs.map((s) => `${s.id}/${s.arch}`).join(', ') : 'none';
    throw new UsageError(`no committed spec for ${wanted}/${arch} (available: ${available})`);
  }
  if (values.json) {
    process.stdout.write(readFileSync(entry.path, 'utf8'));
    return 0;
  }
  process.stdout.write(summary(entry.id, loadSpec(entry)));
  return 0;
}

/** kvm-cli abi list: every committed spec with its kernel and counts. */
export async function list(argv: string[]): Promise<number> {
  const { positionals } = parse(argv, {}, LIST_USAGE);
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' (usage: ${LIST_USAGE})`);
  const rows = listSpecs().map((e) => {
    const s = loadSpec(e);
    return [e.id, e.arch, s.kernel, ...[s.ioctls, s.structs, s.constants, s.typedefs].map((r) => String(Object.keys(r).length))];
  });
  if (rows.length === 0) throw new CliError('no committed specs found (run npm run generate -w @kvm-ts/abi)');
  process.stdout.write(table(['VERSION', 'ARCH', 'KERNEL', 'IOCTLS', 'STRUCTS', 'CONSTANTS', 'TYPEDEFS'], rows, [3, 4, 5, 6]));
  return 0;
}

/** kvm-cli abi generate: a spec from any include root (a distro's /usr/include, a kernel build's usr/include). */
export async function generate(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { headers: { type: 'string' }, arch: { type: 'string' }, out: { type: 'string' } },
    GENERATE_USAGE,
  );
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' (usage: ${GENERATE_USAGE})`);
  if (typeof values.headers !== 'string') throw new UsageError(`--headers DIR is required (usage: ${GENERATE_USAGE})`);
  if (typeof values.arch !== 'string') throw new UsageError(`--arch ARCH is required (usage: ${GENERATE_USAGE})`);
  const arch = archOption(values.arch, GENERATE_USAGE);
  const dir = resolve(values.headers);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`--headers ${values.headers}: not a directory`);

  const own = [dir, join(dir, MULTIARCH[arch])].filter((d) => existsSync(d) && statSync(d).isDirectory());
  // The KVM headers themselves must come from DIR: a fallback may only fill in generic headers.
  for (const h of ['linux/kvm.h', 'asm/kvm.h']) {
    if (!own.some((d) => existsSync(join(d, h)))) {
      throw new CliError(`abi generate: ${h} not found in ${own.join(' or ')}`, 2);
    }
  }
  const { generateSpec, serializeSpec, HeaderError } = await import('@kvm-ts/abi/generator');
  const includeDirs = [...own, ...(await fallbackRoot(arch))];
  let json: string;
  try {
    json = serializeSpec(generateSpec({ includeDirs, arch, kernel: kernelVersion(dir) }));
  } catch (err) {
    if (err instanceof HeaderError) throw new CliError(`abi generate: ${err.message}`);
    throw err;
  }
  if (typeof values.out === 'string') {
    try {
      writeFileSync(values.out, json);
    } catch (err) {
      throw new CliError(`abi generate: cannot write ${values.out}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  } else process.stdout.write(json);
  return 0;
}

/** The synced cache of the newest pinned set for `arch`, if present: it supplies generic headers DIR lacks. */
async function fallbackRoot(arch: Arch): Promise<string[]> {
  const { pinnedSets, includeRoot, cacheReady } = await import('@kvm-ts/abi/headers');
  try {
    const newest = pinnedSets().filter((s) => s.arches.includes(arch) && cacheReady(s.id, arch)).at(-1);
    return newest ? [includeRoot(newest.id, arch)] : [];
  } catch {
    return []; // no pins file or cache (e.g. an installed package): DIR has to be complete
  }
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

// ---- text output ----

function summary(id: string, spec: Spec): string {
  const count = (r: object) => Object.keys(r).length;
  const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const lines = [
    `KVM ABI spec ${id}/${spec.arch} (kernel ${spec.kernel})`,
    `${count(spec.ioctls)} ioctls, ${count(spec.structs)} structs, ${count(spec.constants)} constants, ${count(spec.typedefs)} typedefs`,
    '',
    'IOCTLS',
  ];
  const ioctlRows = Object.keys(spec.ioctls).sort(byName).map((name) => {
    const io = spec.ioctls[name];
    return [name, `0x${io.number.toString(16).padStart(8, '0')}`, io.dir, String(io.size), io.fd, io.type ?? '-'];
  });
  lines.push(table(['NAME', 'NUMBER', 'DIR', 'SIZE', 'FD', 'TYPE'], ioctlRows, [3]), 'CONSTANTS');
  const constRows = Object.keys(spec.constants).sort(byName).map((name) => {
    const v = BigInt(spec.constants[name]);
    return [name, v.toString(), v >= 0n ? `0x${v.toString(16)}` : '-'];
  });
  lines.push(table(['NAME', 'VALUE', 'HEX'], constRows, [1]), 'STRUCTS');
  const structRows = Object.keys(spec.structs).sort(byName).map((name) => {
    const s = spec.structs[name];
    return [name, s.kind, String(s.size), String(s.align), String(s.layout.length)];
  });
  lines.push(table(['NAME', 'KIND', 'SIZE', 'ALIGN', 'LEAVES'], structRows, [2, 3, 4]));
  return lines.join('\n');
}

/** Columns padded to the widest cell; `right` lists right-aligned (numeric) columns. */
function table(head: string[], rows: string[][], right: number[] = []): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) =>
    r.map((c, i) => (right.includes(i) ? c.padStart(widths[i]) : i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [fmt(head), ...rows.map(fmt)].join('\n') + '\n';
}
