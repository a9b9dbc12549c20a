// Builds the syscall shim with node-gyp against the headers of the Node running this script,
// so nothing is downloaded at install time (npm 11 skips implicit gyp builds when a lockfile exists).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';

const nodedir = dirname(dirname(process.execPath));
if (!existsSync(join(nodedir, 'include', 'node', 'node_api.h'))) {
  console.error(`kvm-ts: Node headers not found under ${nodedir}/include/node; install the nodejs dev headers`);
  process.exit(1);
}
const require = createRequire(import.meta.url);
let gyp;
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js');
} catch {
  // npm ships node-gyp inside itself; use that copy when the package is not installed separately.
  gyp = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
}
const run = (args) => spawnSync(process.execPath, [gyp, ...args, `--nodedir=${nodedir}`], { stdio: 'inherit' });
const r = run(['rebuild']);
if (r.status !== 0) process.exit(r.status ?? 1);
