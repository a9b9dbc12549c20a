/**
 * Finding, validating and caching spec files, and the LoadedAbi the hypervisor talks to.
 * Spec files live in packages/abi/spec/<id>/<arch>.json; this module sits at the same depth
 * under src/ and dist/, so the directory is found relative to it in both.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findSpecInconsistency, findSpecShapeProblem, specSchemas } from '../spec/spec-schemas.js';
import { ARCHES, type Arch, type IoctlSpec, type LayoutLeaf, type Spec } from '../spec/types.js';
import type { LoadedAbi, StructCodec, StructValue } from './api.js';
import { describeChoices } from './choices.js';
import { CodecRegistry } from './codec.js';
import { compareSpecIds, isLocalSpecId, SPEC_ID } from '../spec/ids.js';

export { compareSpecIds, isLocalSpecId };

export const SPEC_DIR = fileURLToPath(new URL('../../spec/', import.meta.url));

export interface SpecEntry {
  id: string;
  arch: Arch;
  path: string;
}

/** Every committed spec file, sorted by id then arch. */
export function listSpecs(dir: string = SPEC_DIR): SpecEntry[] {
  if (!existsSync(dir)) return [];
  const entries: SpecEntry[] = [];
  for (const id of readdirSync(dir)) {
    if (!SPEC_ID.test(id)) continue;
    const idDir = join(dir, id);
    let files: string[];
    try {
      files = readdirSync(idDir);
    } catch {
      continue; // a plain file named like an id is not a spec directory
    }
    for (const arch of ARCHES) {
      if (files.includes(`${arch}.json`)) entries.push({ id, arch, path: join(idDir, `${arch}.json`) });
    }
  }
  return entries.sort((a, b) => compareSpecIds(a.id, b.id) || ARCHES.indexOf(a.arch) - ARCHES.indexOf(b.arch));
}

/** Reads and fully validates (zod schema) one spec file; any problem is a one-line Error naming the file. */
export function loadSpecFile(path: string): Spec {
  return readSpecFile(path, true);
}

/**
 * Committed specs of this package are validated fully in CI (tests, probe, regenerate), so by
 * default loading one only checks its structure (no zod: see findSpecShapeProblem);
 * KVM_TS_VALIDATE_SPECS=1 validates them fully too. Spec files from anywhere else (loadSpecFile,
 * a createSpecLoader directory, registerSpec, abiFromSpec) are always validated fully.
 */
function validatesFully(dir: string): boolean {
  return dir !== SPEC_DIR || process.env.KVM_TS_VALIDATE_SPECS === '1';
}

function readSpecFile(path: string, full: boolean): Spec {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`${path}: cannot read spec file: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${path}: not valid JSON: ${(error as Error).message}`);
  }
  if (full) return validateSpec(json, path);
  const problem = findSpecShapeProblem(json);
  if (problem) throw new Error(`${path}: malformed spec at ${problem}`);
  const spec = json as Spec;
  const inconsistency = findSpecInconsistency(spec);
  if (inconsistency) throw new Error(`${path}: malformed spec: ${inconsistency}`);
  return spec;
}

/** Validates an in-memory spec object the way loadSpecFile validates files. */
export function validateSpec(json: unknown, source: string): Spec {
  const parsed = specSchemas().SpecSchema.safeParse(json);
  if (!parsed.success) {
    const [first, ...rest] = parsed.error.issues;
    const where = first.path.length ? first.path.map(String).join('.') : '(root)';
    const more = rest.length ? ` (and ${rest.length} more issue${rest.length > 1 ? 's' : ''})` : '';
    throw new Error(`${source}: malformed spec at ${where}: ${first.message}${more}`);
  }
  const spec = parsed.data as Spec;
  const inconsistency = findSpecInconsistency(spec);
  if (inconsistency) throw new Error(`${source}: malformed spec: ${inconsistency}`);
  return spec;
}

export interface SpecLoader {
  /** The directory spec files are read from. */
  readonly dir: string;
  /** See the module-level loadAbi. */
  loadAbi(version?: string, arch?: Arch): LoadedAbi;
  listSpecs(): SpecEntry[];
  /** The id "latest" resolves to for `arch`. */
  latestSpecId(arch?: Arch): string;
  /**
   * Makes an in-memory spec (e.g. generated from patched headers) loadable as loadAbi(id, arch).
   * It may not shadow a committed spec file, and "latest" never picks it.
   */
  registerSpec(id: string, spec: Spec): LoadedAbi;
}

/** A loader over the spec files in `dir` (the package's spec/ for the module-level functions). */
export function createSpecLoader(dir: string): SpecLoader {
  const cache = new Map<string, LoadedAbi>();
  const registered = new Map<string, Spec>();

  const loader: SpecLoader = {
    dir,
    listSpecs: () => listSpecs(dir),

    latestSpecId(arch = 'x86_64') {
      const ids = listSpecs(dir)
        .filter((s) => s.arch === arch && !isLocalSpecId(s.id))
        .map((s) => s.id);
      if (ids.length === 0) throw new Error(`no committed ${arch} spec exists in ${dir}, so 'latest' has nothing to pick`);
      return ids[ids.length - 1];
    },

    loadAbi(version = 'latest', arch = 'x86_64') {
      if (!(ARCHES as readonly string[]).includes(arch)) {
        throw new Error(`unknown arch '${arch}' (available: ${ARCHES.join(', ')})`);
      }
      const id = version === 'latest' ? loader.latestSpecId(arch) : version;
      const key = `${id}/${arch}`;
      const cached = cache.get(key);
      if (cached) return cached;
      const spec = registered.get(key) ?? readCommittedSpec(dir, id, arch);
      const abi = new Abi(spec, id);
      cache.set(key, abi);
      return abi;
    },

    registerSpec(id, spec) {
      if (!SPEC_ID.test(id)) throw new Error(`invalid spec id '${id}' (expected e.g. 6.12 or 7.2+local)`);
      const validated = validateSpec(spec, `spec ${id}/${String(spec?.arch)}`);
      const key = `${id}/${validated.arch}`;
      if (listSpecs(dir).some((s) => s.id === id && s.arch === validated.arch)) {
        throw new Error(`spec ${key} is committed in ${dir}; register the local one under another id (e.g. ${id}+local)`);
      }
      registered.set(key, validated);
      cache.delete(key);
      return loader.loadAbi(id, validated.arch);
    },
  };
  return loader;
}

const packageLoader = createSpecLoader(SPEC_DIR);

/**
 * Loads the committed spec `version` ("latest", or an id such as "6.12" or "7.2+local") for
 * `arch`. "latest" is the newest committed id having that arch, never a "+local" one.
 * Cached per (id, arch): every caller shares one LoadedAbi and its codecs.
 */
export function loadAbi(version: string = 'latest', arch: Arch = 'x86_64'): LoadedAbi {
  return packageLoader.loadAbi(version, arch);
}

/** The id "latest" resolves to for `arch`. */
export function latestSpecId(arch: Arch = 'x86_64'): string {
  return packageLoader.latestSpecId(arch);
}

/** See SpecLoader.registerSpec. */
export function registerSpec(id: string, spec: Spec): LoadedAbi {
  return packageLoader.registerSpec(id, spec);
}

function readCommittedSpec(dir: string, id: string, arch: Arch): Spec {
  const specs = listSpecs(dir);
  const entry = specs.find((s) => s.id === id && s.arch === arch);
  if (!entry) {
    const archesOfId = specs.filter((s) => s.id === id).map((s) => s.arch);
    if (archesOfId.length) {
      throw new Error(`KVM ABI spec ${id} has no ${arch} variant (available for ${id}: ${archesOfId.join(', ')})`);
    }
    const ids = [...new Set(specs.filter((s) => s.arch === arch).map((s) => s.id))];
    throw new Error(`unknown KVM ABI version '${id}' for ${arch} (available: ${ids.join(', ') || 'none'}, or 'latest')`);
  }
  const spec = readSpecFile(entry.path, validatesFully(dir));
  if (spec.arch !== arch) throw new Error(`${entry.path}: malformed spec: arch is '${spec.arch}' but the file is for ${arch}`);
  const series = id.split('+', 1)[0];
  if (!new RegExp(`^${series.replaceAll('.', '\\.')}(?![0-9])`).test(spec.kernel)) {
    throw new Error(`${entry.path}: malformed spec: kernel '${spec.kernel}' does not belong to series ${id}`);
  }
  return spec;
}

/** A LoadedAbi over a spec object (validated first; not cached, not visible to loadAbi). */
export function abiFromSpec(spec: Spec, version: string): LoadedAbi {
  return new Abi(validateSpec(spec, `spec ${version}/${String(spec?.arch)}`), version);
}

class Abi implements LoadedAbi {
  readonly arch: Arch;
  private readonly label: string;
  private readonly registry: CodecRegistry;

  constructor(
    readonly spec: Spec,
    readonly version: string,
  ) {
    this.arch = spec.arch;
    this.label = `KVM ABI ${version}/${spec.arch}`;
    this.registry = new CodecRegistry(spec, this.label);
  }

  ioctl(name: string): number {
    return this.requireIoctl(name).number;
  }

  ioctlSpec(name: string): IoctlSpec | undefined {
    return this.hasIoctl(name) ? this.spec.ioctls[name] : undefined;
  }

  hasIoctl(name: string): boolean {
    return Object.hasOwn(this.spec.ioctls, name);
  }

  constant(name: string): number {
    const raw = this.requireConstant(name);
    if (typeof raw === 'number') return raw;
    // Strings hold values beyond 2^53, where number arithmetic silently loses bits.
    const asNumber = Number(raw);
    if (!Number.isSafeInteger(asNumber)) {
      throw new Error(`constant ${name} = ${raw} in ${this.label} is not a safe integer; use bigConstant()`);
    }
    return asNumber;
  }

  bigConstant(name: string): bigint {
    return BigInt(this.requireConstant(name));
  }

  hasConstant(name: string): boolean {
    return Object.hasOwn(this.spec.constants, name);
  }

  hasStruct(struct: string): boolean {
    return this.registry.has(struct);
  }

  codec<T extends StructValue = StructValue>(struct: string): StructCodec<T> {
    return this.registry.codec(struct) as unknown as StructCodec<T>;
  }

  field(struct: string, path: string): LayoutLeaf {
    // The spec's own leaves: looking one offset up does not need the struct's whole shape built.
    const layout = this.hasStruct(struct) ? this.spec.structs[struct].layout : this.registry.shape(struct).spec.layout;
    const leaf = layout.find((l) => l.path === path);
    if (!leaf) {
      throw new Error(
        `struct ${struct} in ${this.label} has no leaf '${path}' (${describeChoices(path, layout.map((l) => l.path))})`,
      );
    }
    return leaf;
  }

  private requireIoctl(name: string): IoctlSpec {
    if (!this.hasIoctl(name)) {
      throw new Error(`unknown ioctl '${name}' in ${this.label} (${describeChoices(name, Object.keys(this.spec.ioctls))})`);
    }
    return this.spec.ioctls[name];
  }

  private requireConstant(name: string): number | string {
    if (!this.hasConstant(name)) {
      throw new Error(
        `unknown constant '${name}' in ${this.label} (${describeChoices(name, Object.keys(this.spec.constants))})`,
      );
    }
    return this.spec.constants[name];
  }
}
