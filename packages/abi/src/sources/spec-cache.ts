import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { userCacheDir } from '../headers/paths.js';

/** $XDG_CACHE_HOME/kvm-ts/specs (KVM_TS_SPEC_CACHE overrides, "off" disables). */
export function specCacheDir(): string | undefined {
  const env = process.env.KVM_TS_SPEC_CACHE;
  if (env === 'off') return undefined;
  return env ? env : join(userCacheDir(), 'specs');
}

/** The cache's bound on its total size; the least recently used entries go first. */
export const SPEC_CACHE_MAX_BYTES = 64 * 1024 * 1024;

/** The bound: KVM_TS_SPEC_CACHE_MAX (bytes, or with a K, M or G suffix) overrides SPEC_CACHE_MAX_BYTES. */
export function specCacheMaxBytes(): number {
  const m = /^(\d+)([KMG])?$/i.exec(process.env.KVM_TS_SPEC_CACHE_MAX?.trim() ?? '');
  if (!m) return SPEC_CACHE_MAX_BYTES;
  return Number(m[1]) * { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[(m[2] ?? '').toUpperCase() as '' | 'K' | 'M' | 'G'];
}

export interface SpecCacheEntry {
  path: string;
  bytes: number;
  /** Last written or hit (ms since the epoch). */
  usedMs: number;
}

/** The cache's entries, least recently used first (a missing directory has none). */
export function specCacheEntries(dir: string): SpecCacheEntry[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const entries: SpecCacheEntry[] = [];
  for (const name of names) {
    if (!/^[0-9a-f]{64}\.json$/.test(name)) continue;
    try {
      const st = statSync(join(dir, name));
      if (st.isFile()) entries.push({ path: join(dir, name), bytes: st.size, usedMs: st.mtimeMs });
    } catch {
      // Removed by another process meanwhile.
    }
  }
  return entries.sort((a, b) => a.usedMs - b.usedMs);
}

/** Removes the least recently used entries until the cache fits its bound; `keep` (the entry just written) stays. */
export function pruneSpecCache(dir: string, maxBytes = specCacheMaxBytes(), keep?: string): void {
  const entries = specCacheEntries(dir);
  let total = entries.reduce((n, e) => n + e.bytes, 0);
  for (const e of entries) {
    if (total <= maxBytes) break;
    if (e.path === keep) continue;
    rmSync(e.path, { force: true });
    total -= e.bytes;
  }
}

/** Empties the cache: how many entries and bytes went. */
export function clearSpecCache(dir: string): { entries: number; bytes: number } {
  const entries = specCacheEntries(dir);
  for (const e of entries) rmSync(e.path, { force: true });
  return { entries: entries.length, bytes: entries.reduce((n, e) => n + e.bytes, 0) };
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
      if (typeof hit.json === 'string' && Array.isArray(hit.warnings)) {
        // A hit counts as a use: the bound removes the least recently used entries.
        try {
          const now = new Date();
          utimesSync(path, now, now);
        } catch {
          // A read-only cache keeps its order.
        }
        return hit;
      }
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
    pruneSpecCache(dir, specCacheMaxBytes(), path);
  } catch {
    // A read-only cache only costs time.
  }
  return fresh;
}
