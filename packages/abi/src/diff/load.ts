import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SPEC_ID } from '../spec/ids.js';
import { ARCHES, type Arch, type Spec } from '../spec/types.js';
import type { SpecLabel } from './types.js';

/** A spec or suppression file that cannot be used; the CLI prints the message as one line. */
export class AbiInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AbiInputError';
  }
}

/** packages/abi/spec, found from this module both as src/diff/*.ts and dist/diff/*.js. */
export const DEFAULT_SPEC_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../spec');

/** "<spec id>/<arch>", e.g. "6.1/x86_64" or "7.2+local/x86_64". */
function pinnedRef(ref: string): [id: string, arch: Arch] | undefined {
  const slash = ref.lastIndexOf('/');
  const [id, arch] = [ref.slice(0, slash), ref.slice(slash + 1)];
  return slash > 0 && SPEC_ID.test(id) && ARCHES.includes(arch as Arch) ? [id, arch as Arch] : undefined;
}

export interface LoadedSpec {
  spec: Spec;
  label: SpecLabel;
}

/** `ref` is a spec file path or a pinned reference such as "6.1/x86_64". */
export function loadSpecRef(ref: string, specRoot = DEFAULT_SPEC_ROOT): LoadedSpec {
  const pinned = pinnedRef(ref);
  const path = pinned ? join(specRoot, pinned[0], `${pinned[1]}.json`) : ref;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new AbiInputError(`${ref}: cannot read ${pinned ? `${path} ` : ''}(${code ?? String(err)})`);
  }
  const spec = parseSpecText(text, ref);
  return { spec, label: { id: pinned ? pinned[0] : seriesOf(spec.kernel), arch: spec.arch, kernel: spec.kernel, source: ref } };
}

export function parseSpecText(text: string, source: string): Spec {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new AbiInputError(`${source}: not JSON (${(err as Error).message.split('\n')[0]})`);
  }
  return validateSpec(raw, source);
}

/** "6.12.107" -> "6.12", "7.2.13+local" -> "7.2+local": the pinned series a kernel belongs to. */
export function seriesOf(kernel: string): string {
  const m = /^(\d+)\.(\d+)/.exec(kernel);
  if (!m) return kernel;
  return `${m[1]}.${m[2]}${kernel.endsWith('+local') ? '+local' : ''}`;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;

/**
 * Checks the parts of the spec contract the diff reads, so a malformed file fails with one line
 * naming the first bad item instead of a TypeError deep inside a comparison.
 */
export function validateSpec(raw: unknown, source: string): Spec {
  const bad = (where: string, what: string): never => {
    throw new AbiInputError(`${source}: malformed spec: ${where}: ${what}`);
  };
  if (!isObj(raw)) return bad('top level', 'not an object');
  if (typeof raw.kernel !== 'string' || raw.kernel === '') bad('kernel', 'not a non-empty string');
  if (!ARCHES.includes(raw.arch as Arch)) bad('arch', `not one of ${ARCHES.join(', ')}`);
  for (const key of ['ioctls', 'structs', 'constants', 'typedefs']) if (!isObj(raw[key])) bad(key, 'not an object');
  for (const [name, io] of Object.entries(raw.ioctls as Obj)) {
    if (!isObj(io)) bad(`ioctls.${name}`, 'not an object');
    const i = io as Obj;
    if (!isCount(i.number) || (i.number as number) > 0xffffffff) bad(`ioctls.${name}.number`, 'not a 32-bit unsigned integer');
    if (!['none', 'read', 'write', 'readwrite'].includes(i.dir as string)) bad(`ioctls.${name}.dir`, 'not none/read/write/readwrite');
    if (!isCount(i.size)) bad(`ioctls.${name}.size`, 'not a non-negative integer');
    if (i.type !== null && typeof i.type !== 'string') bad(`ioctls.${name}.type`, 'not a string or null');
    if (!['system', 'vm', 'vcpu', 'device'].includes(i.fd as string)) bad(`ioctls.${name}.fd`, 'not system/vm/vcpu/device');
  }
  for (const [name, st] of Object.entries(raw.structs as Obj)) {
    if (!isObj(st)) bad(`structs.${name}`, 'not an object');
    const s = st as Obj;
    if (!isCount(s.size)) bad(`structs.${name}.size`, 'not a non-negative integer');
    if (!isCount(s.align)) bad(`structs.${name}.align`, 'not a non-negative integer');
    if (s.kind !== 'struct' && s.kind !== 'union') bad(`structs.${name}.kind`, 'not struct/union');
    if (!Array.isArray(s.layout)) bad(`structs.${name}.layout`, 'not an array');
    (s.layout as unknown[]).forEach((leaf, n) => {
      const at = `structs.${name}.layout[${n}]`;
      if (!isObj(leaf)) bad(at, 'not an object');
      const l = leaf as Obj;
      if (typeof l.path !== 'string' || l.path === '') bad(`${at}.path`, 'not a non-empty string');
      if (typeof l.type !== 'string' || l.type === '') bad(`${at}.type`, 'not a non-empty string');
      if (!isCount(l.offset)) bad(`${at}.offset`, 'not a non-negative integer');
      if (!isCount(l.size)) bad(`${at}.size`, 'not a non-negative integer');
      for (const opt of ['count', 'bitOffset', 'bitWidth']) if (l[opt] !== undefined && !isCount(l[opt])) bad(`${at}.${opt}`, 'not a non-negative integer');
    });
  }
  for (const [name, v] of Object.entries(raw.constants as Obj)) {
    const ok = (typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && /^-?\d+$/.test(v));
    if (!ok) bad(`constants.${name}`, 'not an integer or a decimal string');
  }
  for (const [name, v] of Object.entries(raw.typedefs as Obj)) if (typeof v !== 'string') bad(`typedefs.${name}`, 'not a string');
  return raw as unknown as Spec;
}
