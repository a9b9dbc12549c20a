#!/usr/bin/env node
// Committed so npm can link the bin at install time; the testbed itself is compiled to dist/.
const { main } = await import('../dist/main.js');
main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => {
    process.stderr.write(`testbed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 125;
  },
);
