import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { testbedCacheDir } from './paths.js';

const KEEP = 10;

/** A fresh console log path for one run; only the newest few logs are kept. */
export function consoleLogPath(now = new Date()): string {
  const dir = join(testbedCacheDir(), 'logs');
  mkdirSync(dir, { recursive: true });
  const old = readdirSync(dir).filter((f) => f.startsWith('console-')).sort();
  for (const f of old.slice(0, Math.max(0, old.length - KEEP + 1))) rmSync(join(dir, f), { force: true });
  return join(dir, `console-${now.toISOString().replace(/[:.]/g, '-')}-${process.pid}.log`);
}
