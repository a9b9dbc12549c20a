/**
 * Every option of `kvm-cli run` that shapes the VM, in ONE table: its flag, its key in a
 * `--config FILE.json`, the zod schema of that key, and how a flag's text or a file's value becomes
 * the option's value (the same checks either way, so a file and a command line fail alike, each
 * naming where: `--mem: …` or `vm.json: memory: …`). The flags, the config file's schema (and its
 * JSON Schema in docs/schemas/), the merge (flags override the file) and `--print-config` all derive
 * from this table: a new option is one entry.
 *
 * Flags that only shape one invocation (--json, -v, --detach, --config, --print-config) are not VM
 * options and live in commands/run.ts.
 */
import { statSync } from 'node:fs';
import { totalmem } from 'node:os';
import { dirname, resolve } from 'node:path';
import { jsonPath, nameProblem } from '@kvm-ts/hypervisor/control/paths';
import type * as Zod from 'zod';
import type { DiskOptions } from '@kvm-ts/hypervisor';
import type { NetworkSpec } from '@kvm-ts/hypervisor/net-spec';
import { parseDiskSpec } from './disks.js';
import { networkSpec, parseNetworkFlag, type NetworkEntry } from './networks.js';
import { UsageError } from './errors.js';
import { FileRefusal, readRegularFile } from './regular-file.js';

const MiB = 1024 * 1024;
const DEFAULT_MEM = 256 * MiB;
const MIN_MEM = 4 * MiB;

/** A bad option value. `subject`: the value it is about (a path), `at`: where inside the option (`[1, 'path']`). */
export class OptionError extends Error {
  constructor(
    message: string,
    readonly subject?: string,
    readonly at: Array<string | number> = [],
  ) {
    super(message);
  }
}

type Z = typeof Zod;
type FlagValue = string | boolean | string[];

/** Where a value came from, for relative paths and messages. */
export interface Origin {
  /** Relative paths resolve against this directory (the cwd for flags, the file's directory for a config file). */
  baseDir: string;
}

export interface RunOption<T = unknown> {
  /** The key in a config file, and in the resolved config. */
  key: string;
  /** The long flag, without `--`. */
  flag: string;
  short?: string;
  /** `string` takes a value, `boolean` is a switch, `strings` is repeatable. */
  kind: 'string' | 'boolean' | 'strings';
  /** The flag's value in the usage line (`MEM`, `PATH`), for `string` and `strings`. */
  arg?: string;
  help: string;
  /** The config file's value. Shape only: the checks are in fromFile. */
  schema(z: Z): Zod.ZodType;
  fromFlag(raw: FlagValue, origin: Origin): T;
  /** A shape-checked file value; the default runs fromFlag on it. */
  fromFile?(raw: unknown, origin: Origin): T;
  /** The value as the config file spells it (default: as it is). */
  toFile?(value: T): unknown;
  /** The value when neither a flag nor the file gives one (undefined: the option stays unset). */
  default?: T;
}

/** Type-checks one entry while keeping the table's element type uniform. */
function option<T>(o: RunOption<T>): RunOption {
  return o as unknown as RunOption;
}

/** "256" (MiB), or a number with a K, M or G suffix; a whole number of 4 KiB pages that this host has. */
function memBytes(text: string): number {
  const m = /^(\d+)([KMG])?i?B?$/i.exec(text.trim());
  if (!m) throw new OptionError(`'${text}' is not a size (e.g. 256, 512M, 2G)`);
  const unit = { K: 1024, M: MiB, G: 1024 * MiB }[(m[2] ?? 'M').toUpperCase() as 'K' | 'M' | 'G'];
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(bytes)) throw new OptionError(`'${text}' is too large`);
  if (bytes % 4096 !== 0) throw new OptionError(`${text} is not a whole number of 4 KiB pages`);
  if (bytes < MIN_MEM) throw new OptionError(`${text} is too small (at least ${MIN_MEM / MiB} MiB)`);
  const host = totalmem();
  if (bytes > host) throw new OptionError(`${text} is more than this host's ${Math.floor(host / MiB)} MiB of RAM`);
  return bytes;
}

/** Bytes as the shortest exact size text: 2G, 256M, 4100K. */
export function sizeText(bytes: number): string {
  if (bytes % (1024 * MiB) === 0) return `${bytes / (1024 * MiB)}G`;
  if (bytes % MiB === 0) return `${bytes / MiB}M`;
  return `${bytes / 1024}K`;
}

function cpuCount(text: string): number {
  if (!/^\d+$/.test(text.trim())) throw new OptionError(`'${text}' is not a whole number`);
  const n = Number(text);
  if (n < 1) throw new OptionError('at least 1 vCPU is needed');
  return n;
}

function seconds(text: string): number {
  const s = Number(text);
  if (text.trim() === '' || !Number.isFinite(s) || s <= 0) throw new OptionError(`'${text}' is not a positive number of seconds`);
  if (s > 2_000_000) throw new OptionError(`${text} s is too long`);
  return s;
}

/** An input file the VM reads: it must exist, be a regular file and not be empty. Returns the absolute path. */
function inputFile(path: string, origin: Origin): string {
  const abs = resolve(origin.baseDir, path);
  let st;
  try {
    st = statSync(abs);
  } catch {
    throw new OptionError('no such file', path);
  }
  if (!st.isFile()) throw new OptionError('not a regular file', path);
  if (st.size === 0) throw new OptionError('empty', path);
  return abs;
}

const str = (raw: FlagValue) => String(raw);

/** A disk's path, relative to where it was given, must exist; the image's own checks come when it is opened. */
function diskFile(disk: DiskOptions, origin: Origin, index: number): DiskOptions {
  const path = resolve(origin.baseDir, disk.path);
  try {
    statSync(path);
  } catch {
    throw new OptionError('no such file', disk.path, [index, 'path']);
  }
  return { ...disk, path };
}

/** Runs `fn`, placing an OptionError it throws at item `index` of a repeatable option. */
function withIndex<T>(index: number, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof OptionError) throw new OptionError(err.message, err.subject, [index, ...err.at]);
    throw err;
  }
}

/** The table. Order: the order of `--help`, of the config schema and of `--print-config`. */
export const RUN_OPTIONS: readonly RunOption[] = [
  option<string>({
    key: 'kernel',
    flag: 'kernel',
    short: 'k',
    kind: 'string',
    arg: 'KERNEL',
    help: 'a bzImage or vmlinux ELF (default: the built-in test guest)',
    schema: (z) => z.string(),
    fromFlag: (raw, origin) => inputFile(str(raw), origin),
  }),
  option<string>({
    key: 'initrd',
    flag: 'initrd',
    short: 'i',
    kind: 'string',
    arg: 'INITRD',
    help: 'an initial ramdisk',
    schema: (z) => z.string(),
    fromFlag: (raw, origin) => inputFile(str(raw), origin),
  }),
  option<string>({
    key: 'cmdline',
    flag: 'params',
    short: 'p',
    kind: 'string',
    arg: 'PARAMS',
    help: 'kernel command-line parameters, appended to the defaults',
    schema: (z) => z.string(),
    fromFlag: (raw) => str(raw),
  }),
  option<number>({
    key: 'cpus',
    flag: 'cpus',
    short: 'c',
    kind: 'string',
    arg: 'CPUS',
    help: 'vCPUs',
    schema: (z) => z.int().min(1),
    fromFlag: (raw) => cpuCount(str(raw)),
    default: 1,
  }),
  option<number>({
    key: 'memory',
    flag: 'mem',
    short: 'm',
    kind: 'string',
    arg: 'MEM',
    help: 'guest RAM: MiB, or with a K, M or G suffix (a number in a config file is MiB)',
    schema: (z) => z.union([z.string(), z.int().min(1)]),
    fromFlag: (raw) => memBytes(str(raw)),
    fromFile: (raw) => memBytes(typeof raw === 'number' ? `${raw}M` : String(raw)),
    toFile: sizeText,
    default: DEFAULT_MEM,
  }),
  option<DiskOptions[]>({
    key: 'disks',
    flag: 'disk',
    short: 'd',
    kind: 'strings',
    arg: 'PATH[,ro][,direct]',
    help: 'a raw disk image as virtio-blk vda, vdb, … (repeatable; a config file lists { path, ro, direct })',
    schema: (z) => z.array(z.strictObject({ path: z.string(), ro: z.boolean().optional(), direct: z.boolean().optional() })),
    fromFlag: (raw, origin) => (raw as string[]).map((spec, i) => diskFile(parseDiskSpec(spec), origin, i)),
    fromFile: (raw, origin) =>
      (raw as Array<{ path: string; ro?: boolean; direct?: boolean }>).map((d, i) => diskFile({ path: d.path, readOnly: d.ro, direct: d.direct }, origin, i)),
    toFile: (disks) => disks.map((d) => ({ path: d.path, ...(d.readOnly ? { ro: true } : {}), ...(d.direct ? { direct: true } : {}) })),
    default: [],
  }),
  option<NetworkSpec[]>({
    key: 'network',
    flag: 'network',
    short: 'n',
    kind: 'strings',
    arg: 'mode=tap,tapif=NAME|mode=user|mode=socket,path=P[,listen][,peer-uid=UID][,mac=…][,hostfwd=tcp:[ADDR:]H:G]',
    help: 'a virtio-net device (repeatable): a tap, user-mode networking through passt, or a UNIX socket to another VM (docs/networking.md; a config file lists { mode, tapif, mac, path, listen, peerUid, hostfwd }); a forward listens on 127.0.0.1 unless its ADDR says otherwise (0.0.0.0 for every interface)',
    schema: (z) =>
      z.array(
        z.strictObject({
          mode: z.enum(['tap', 'user', 'socket']),
          tapif: z.string().optional(),
          mac: z.string().optional(),
          path: z.string().optional(),
          listen: z.boolean().optional(),
          hostfwd: z.array(z.string()).optional(),
          peerUid: z.number().int().min(0).max(0xfffffffe).optional(),
        }),
      ),
    fromFlag: (raw, origin) => (raw as string[]).map((text, i) => networkSpec(withIndex(i, () => parseNetworkFlag(text)), origin, i)),
    fromFile: (raw, origin) => (raw as NetworkEntry[]).map((e, i) => networkSpec(e, origin, i)),
    default: [],
  }),
  option<boolean>({
    key: 'rng',
    flag: 'rng',
    kind: 'boolean',
    help: 'a virtio-rng device (always on for the built-in guest)',
    schema: (z) => z.boolean(),
    fromFlag: () => true,
    fromFile: (raw) => raw as boolean,
    default: false,
  }),
  option<string>({
    key: 'console',
    flag: 'console',
    kind: 'string',
    arg: 'serial|virtio',
    help: "the guest's console: the 8250 UART (ttyS0) or a virtio console (hvc0)",
    schema: (z) => z.enum(['serial', 'virtio']),
    fromFlag: (raw) => {
      if (raw !== 'serial' && raw !== 'virtio') throw new OptionError(`'serial' or 'virtio', got '${str(raw)}'`);
      return raw;
    },
    default: 'serial',
  }),
  option<string>({
    key: 'transport',
    flag: 'transport',
    kind: 'string',
    arg: 'mmio|pci',
    help: 'where the virtio devices sit: virtio-mmio windows named on the command line, or virtio-pci functions on a PCI bus with MSI-X (default: mmio; docs/design-vmm.md)',
    schema: (z) => z.enum(['mmio', 'pci']),
    fromFlag: (raw) => {
      if (raw !== 'mmio' && raw !== 'pci') throw new OptionError(`'mmio' or 'pci', got '${str(raw)}'`);
      return raw;
    },
  }),
  option<boolean>({
    key: 'acpi',
    flag: 'no-acpi',
    kind: 'boolean',
    help: 'no ACPI tables: the MP table alone describes the machine, and a Linux kernel gets acpi=off (docs/design-vmm.md)',
    schema: (z) => z.boolean(),
    fromFlag: () => false,
    fromFile: (raw) => raw as boolean,
    default: true,
  }),
  option<boolean>({
    key: 'debugPort',
    flag: 'debug-port',
    kind: 'boolean',
    help: 'log every write to port 0x80 with the time since start',
    schema: (z) => z.boolean(),
    fromFlag: () => true,
    fromFile: (raw) => raw as boolean,
    default: false,
  }),
  option<boolean>({
    key: 'debugExit',
    flag: 'debug-exit',
    kind: 'boolean',
    help: 'give the guest the debug-exit port 0x501, whose value becomes the exit status (always on for the built-in guest)',
    schema: (z) => z.boolean(),
    fromFlag: () => true,
    fromFile: (raw) => raw as boolean,
    default: false,
  }),
  option<number>({
    key: 'timeout',
    flag: 'timeout',
    kind: 'string',
    arg: 'SECONDS',
    help: 'end the VM after this long (status 124)',
    schema: (z) => z.number().positive(),
    fromFlag: (raw) => seconds(str(raw)),
  }),
  option<boolean>({
    key: 'hostDecompress',
    flag: 'no-host-decompress',
    kind: 'boolean',
    help: 'boot a compressed bzImage through its own decompressor instead of decompressing it on the host',
    schema: (z) => z.boolean(),
    fromFlag: () => false,
    fromFile: (raw) => raw as boolean,
    default: true,
  }),
  option<string>({
    key: 'abi',
    flag: 'abi',
    kind: 'string',
    arg: 'VERSION',
    help: 'the pinned spec the VMM runs on (docs/compatibility.md)',
    schema: (z) => z.string(),
    fromFlag: (raw) => str(raw),
  }),
  option<string>({
    key: 'kernelCapsAs',
    flag: 'kernel-caps-as',
    kind: 'string',
    arg: 'VERSION',
    help: 'answer KVM_CHECK_EXTENSION as that kernel version could at most',
    schema: (z) => z.string(),
    fromFlag: (raw) => str(raw),
  }),
  option<string[]>({
    key: 'withoutCap',
    flag: 'without-cap',
    kind: 'strings',
    arg: 'CAP[,CAP…]',
    help: 'capabilities that read as absent (repeatable; a config file lists them)',
    schema: (z) => z.array(z.string()),
    fromFlag: (raw) => (raw as string[]).flatMap((v) => v.split(',')).map((n) => n.trim()).filter(Boolean),
    fromFile: (raw) => (raw as string[]).map((n) => n.trim()).filter(Boolean),
    default: [],
  }),
  option<string>({
    key: 'name',
    flag: 'name',
    kind: 'string',
    arg: 'NAME',
    help: 'the VM\'s name: its control socket is $XDG_RUNTIME_DIR/kvm-ts/NAME.sock (default: guest-PID)',
    schema: (z) => z.string(),
    fromFlag: (raw) => {
      const problem = nameProblem(str(raw));
      if (problem) throw new OptionError(problem);
      return str(raw);
    },
  }),
];

/** The resolved options, by key (a key is absent when the option is unset). */
export type RunConfig = Record<string, unknown>;

export interface ResolvedConfig {
  values: RunConfig;
  /** How messages name where an option's value came from: `--mem`, or `vm.json: memory`. */
  label(key: string): string;
}

/** The config file's schema: one optional key per option, nothing else (but `$schema`). */
export function configSchema(z: Z) {
  const shape: Record<string, Zod.ZodType> = { $schema: z.string().optional().describe('ignored: for editors') };
  for (const o of RUN_OPTIONS) shape[o.key] = o.schema(z).optional().describe(o.help);
  return z.strictObject(shape).describe('kvm-cli run --config FILE.json: every VM option of `kvm-cli run`; flags override the file');
}

/** A config file's JSON Schema, as docs/schemas/run-config.schema.json holds it. */
export function configJsonSchema(z: Z): unknown {
  return { title: 'kvm-cli run --config', ...z.toJSONSchema(configSchema(z), { io: 'input' }) };
}

/** The largest config file read (docs/limits.md): far above any real one, far below a memory problem. */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/**
 * Reads and shape-checks a config file: each key's raw value. Errors name the file and the JSON
 * path. Only a regular file of at most MAX_CONFIG_BYTES is read (checked on the opened fd).
 */
export function readConfigFile(path: string, z: Z): Record<string, unknown> {
  let text: string;
  try {
    text = readRegularFile(path, MAX_CONFIG_BYTES).toString('utf8');
  } catch (err) {
    if (err instanceof FileRefusal && err.size !== undefined) {
      throw new UsageError(`--config: ${path}: larger than ${MAX_CONFIG_BYTES / 1024 / 1024} MiB, the most a config file may be`);
    }
    if (err instanceof FileRefusal) throw new UsageError(`--config: ${path}: ${err.reason}`);
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${path}: not JSON (${(err as Error).message})`);
  }
  const parsed = configSchema(z).safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue.code === 'unrecognized_keys') {
      const where = jsonPath([...issue.path, issue.keys[0]]);
      // Inside an option (a disk's keys) the top-level list would only mislead.
      if (issue.path.length > 0) throw new UsageError(`${path}: ${where}: unknown key`);
      throw new UsageError(`${path}: ${where}: unknown option (options: ${RUN_OPTIONS.map((o) => o.key).join(', ')})`);
    }
    const where = jsonPath(issue.path);
    throw new UsageError(`${path}: ${where ? `${where}: ` : ''}${issue.message}`);
  }
  const out = { ...(parsed.data as Record<string, unknown>) };
  delete out.$schema;
  return out;
}

/**
 * Every option's value: the flag's if given, else the config file's, else the default. Checks
 * each value the same way whichever it came from; errors name the flag or the file and JSON path.
 */
export function resolveRunConfig(flags: Record<string, FlagValue | undefined>, file?: { path: string; values: Record<string, unknown> }): ResolvedConfig {
  const config: RunConfig = {};
  const cwd = { baseDir: process.cwd() };
  const fromFile = new Set<string>();
  for (const o of RUN_OPTIONS) {
    const flag = flags[o.flag];
    if (flag === undefined && file && file.values[o.key] !== undefined) fromFile.add(o.key);
    try {
      if (flag !== undefined) config[o.key] = o.fromFlag(flag, cwd);
      else if (file && file.values[o.key] !== undefined) {
        const origin = { baseDir: dirname(resolve(file.path)) };
        const raw = file.values[o.key];
        config[o.key] = o.fromFile ? o.fromFile(raw, origin) : o.fromFlag(raw as FlagValue, origin);
      } else if (o.default !== undefined) config[o.key] = o.default;
    } catch (err) {
      if (!(err instanceof OptionError)) throw err;
      if (flag !== undefined) throw new UsageError(`--${o.flag}: ${err.subject !== undefined ? `${err.subject}: ` : ''}${err.message}`);
      throw new UsageError(`${file!.path}: ${jsonPath([o.key, ...err.at])}: ${err.message}${err.subject !== undefined ? ` (${err.subject})` : ''}`);
    }
  }
  const flagOf = new Map(RUN_OPTIONS.map((o) => [o.key, o.flag]));
  return { values: config, label: (key) => (fromFile.has(key) ? `${file!.path}: ${key}` : `--${flagOf.get(key) ?? key}`) };
}

/** The config as a file spells it: feeding it back with --config gives the same VM. */
export function configFile(config: RunConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const o of RUN_OPTIONS) {
    if (config[o.key] === undefined) continue;
    out[o.key] = o.toFile ? o.toFile(config[o.key]) : config[o.key];
  }
  return out;
}
