import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { isLocalSpecId, listSpecs, loadSpecFile, type Spec, type SpecEntry } from '@kvm-ts/abi';
import { parse } from '../args.js';
import { usageLine, type CommandSpec } from '../usage.js';
import { CliError, UsageError } from '../errors.js';
import { ARCH_OPTION, archOption, loadSource, SOURCES_HELP, STRICT_OPTION } from './abi-source.js';

export const SHOW: CommandSpec = {
  name: 'abi show',
  args: '[VERSION|SOURCE]',
  summary: 'one spec as a readable summary (default: the latest pinned one)',
  options: [
    ARCH_OPTION,
    { flag: 'json', kind: 'boolean', help: 'the spec\'s JSON itself' },
    STRICT_OPTION,
  ],
  notes: [`SOURCE: ${SOURCES_HELP}`],
};
export const LIST: CommandSpec = { name: 'abi list', summary: 'the pinned spec versions and arches, with their counts', options: [] };
export const GENERATE: CommandSpec = {
  name: 'abi generate',
  summary: 'a spec from uapi headers, a Linux tree or a git ref of one (warnings on stderr)',
  options: [
    { flag: 'headers', kind: 'string', arg: 'DIR|TREE|git:TREE@REF', help: 'an include dir (linux/kvm.h and asm/kvm.h; generic headers it lacks come from the pinned cache, then the host), a Linux tree or a git ref', required: true },
    { flag: 'arch', kind: 'string', arg: 'ARCH', help: 'x86_64, arm64 or riscv64', required: true },
    { flag: 'out', kind: 'string', arg: 'FILE', help: 'write the spec there instead of stdout' },
    STRICT_OPTION,
  ],
};
const SHOW_USAGE = `${usageLine(SHOW)}  (SOURCE: ${SOURCES_HELP})`;
const LIST_USAGE = usageLine(LIST);
const GENERATE_USAGE = usageLine(GENERATE);

function loadSpec(entry: SpecEntry): Spec {
  try {
    return loadSpecFile(entry.path);
  } catch (err) {
    throw new CliError(err instanceof Error ? err.message : String(err));
  }
}

/** kvm-cli abi show: one committed spec, as a readable summary or the JSON file verbatim. */
export async function show(argv: string[]): Promise<number> {
  const args = parse(argv, SHOW);
  if (!args) return 0;
  const { values, positionals } = args;
  if (positionals.length > 1) throw new UsageError(`too many arguments (usage: ${SHOW_USAGE})`);
  const arch = archOption(values.arch, SHOW_USAGE);
  const wanted = positionals[0] ?? 'latest';
  const specs = listSpecs();
  const forArch = specs.filter((s) => s.arch === arch);
  const entry = wanted === 'latest'
    ? forArch.filter((s) => !isLocalSpecId(s.id)).at(-1)
    : forArch.find((s) => s.id === wanted);
  if (!entry && (wanted.startsWith('git:') || existsSync(wanted) || /^[^/]+\/(x86_64|arm64|riscv64)$/.test(wanted))) {
    // Any other spec source: a spec file, ID/ARCH, headers, a Linux tree, a git ref.
    const loaded = await loadSource(wanted, { arch, strict: values.strict === true });
    if (values.json) {
      const { serializeSpec } = await import('@kvm-ts/abi/generator');
      process.stdout.write(serializeSpec(loaded.spec));
    } else process.stdout.write(summary(`${loaded.label.id} from ${wanted}`, loaded.spec));
    return 0;
  }
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
  const args = parse(argv, LIST);
  if (!args) return 0;
  const { positionals } = args;
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' (usage: ${LIST_USAGE})`);
  const rows = listSpecs().map((e) => {
    const s = loadSpec(e);
    return [e.id, e.arch, s.kernel, ...[s.ioctls, s.structs, s.constants, s.typedefs].map((r) => String(Object.keys(r).length))];
  });
  if (rows.length === 0) throw new CliError('no committed specs found (run npm run generate -w @kvm-ts/abi)');
  process.stdout.write(table(['VERSION', 'ARCH', 'KERNEL', 'IOCTLS', 'STRUCTS', 'CONSTANTS', 'TYPEDEFS'], rows, [3, 4, 5, 6]));
  return 0;
}

/**
 * kvm-cli abi generate: a spec from any include root (a distro's /usr/include, a kernel build's
 * usr/include), a Linux source tree, or a git ref of one; warnings on stderr.
 */
export async function generate(argv: string[]): Promise<number> {
  const args = parse(argv, GENERATE);
  if (!args) return 0;
  const { values, positionals } = args;
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' (usage: ${GENERATE_USAGE})`);
  if (typeof values.headers !== 'string') throw new UsageError(`--headers DIR is required (usage: ${GENERATE_USAGE})`);
  if (typeof values.arch !== 'string') throw new UsageError(`--arch ARCH is required (usage: ${GENERATE_USAGE})`);
  const arch = archOption(values.arch, GENERATE_USAGE);
  const source = values.headers;
  if (!source.startsWith('git:') && (!existsSync(source) || !statSync(source).isDirectory())) {
    throw new UsageError(`--headers ${source}: not a directory`);
  }
  const loaded = await loadSource(source, { arch, strict: values.strict === true });
  const { serializeSpec } = await import('@kvm-ts/abi/generator');
  const json = serializeSpec(loaded.spec);
  if (typeof values.out === 'string') {
    try {
      writeFileSync(values.out, json);
    } catch (err) {
      throw new CliError(`abi generate: cannot write ${values.out}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  } else process.stdout.write(json);
  return 0;
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
