/**
 * Every npm script that runs turbo runs it with telemetry off (#24): `npm install` (prepare) and
 * `npm test` must not report home, on any machine, not only in CI.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';

const root = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };

test('turbo telemetry is off in every root script that runs turbo', (t) => {
  const turbo = Object.entries(root.scripts).filter(([, cmd]) => /\bturbo\b/.test(cmd));
  t.true(turbo.length > 0);
  for (const [name, cmd] of turbo) t.regex(cmd, /^TURBO_TELEMETRY_DISABLED=1 turbo /, name);
});
