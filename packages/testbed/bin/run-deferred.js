#!/usr/bin/env node
// Inside the testbed: runs the tests .ci/run's host pass deferred to it (listed in the file given).
const { runDeferred } = await import('../dist/deferred.js');
if (process.argv.length !== 3) {
  process.stderr.write('usage: run-deferred.js DEFERRED-LIST\n');
  process.exitCode = 2;
} else {
  try {
    process.exitCode = await runDeferred(process.argv[2]);
  } catch (err) {
    process.stderr.write(`testbed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
