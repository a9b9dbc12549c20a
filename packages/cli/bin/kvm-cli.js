#!/usr/bin/env node
// Committed so npm can link the bin at install time; the CLI itself is compiled to dist/.
import { main } from '../dist/main.js';

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => {
    process.stderr.write(`kvm-cli: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
