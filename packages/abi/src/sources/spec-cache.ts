import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { userCacheDir } from '../headers/paths.js';

/** $XDG_CACHE_HOME/kvm-ts/specs (KVM_TS_SPEC_CACHE overrides, "off" disables). */
export function specCacheDir(): string | undefined {
  const env = process.env.KVM_TS_SPEC_CACHE;
  if (env === 'off') return undefined;
  return env ? env : join(userCacheDir(), 'specs');
}

let fingerprint: string | undefined;

/** A digest of the generator's own code: a changed generator never reuses an old spec. */
function generatorFingerprint(): string {
  if (fingerprint) return fingerprint;
  const h = createHash('sha256');
  for (const dir of ['../generator', '../spec', '../sources']) {
    const abs = fileURLToPath(new URL(dir, import.meta.url));
    for (const f of readdirSync(abs).sort()) if (/\.(ts|js)$/.test(f)) h.update(f).update(readFileSync(join(abs, f)));
  }
  return (fingerprint = h.digest('hex'));
}

export interface CachedSpec {
  /** The serialized spec. */
  json: string;
  /** The warning lines generation printed, replayed on a hit. */
  warnings: string[];
}

/**
 * Specs generated from header sources, keyed by the content of those headers and everything else
 * that decides the output. Repeated `abi diff git:…@A git:…@B` runs regenerate nothing.
 */
export function cachedSpec(keyParts: string[], make: () => CachedSpec): CachedSpec {
  const dir = specCacheDir();
  if (dir === undefined) return make();
  const key = createHash('sha256').update([generatorFingerprint(), ...keyParts].join('\0')).digest('hex');
  const path = join(dir, `${key}.json`);
  if (existsSync(path)) {
    try {
      const hit = JSON.parse(readFileSync(path, 'utf8')) as CachedSpec;
      if (typeof hit.json === 'string' && Array.isArray(hit.warnings)) return hit;
    } catch {
      // A damaged entry is regenerated and overwritten.
    }
  }
  const fresh = make();
  try {
    mkdirSync(dirname(path), { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(fresh));
    renameSync(tmp, path);
  } catch {
    // A read-only cache only costs time.
  }
  return fresh;
}
