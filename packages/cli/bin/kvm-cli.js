#!/usr/bin/env node
// Committed so npm can link the bin at install time; the CLI itself is compiled to dist/.
//
// SIGUSR1 would start Node's inspector, an unauthenticated debugger on 127.0.0.1:9229, for the
// rest of the process's life: take the signal before anything else runs (the import below is
// dynamic so that this line comes first), and close an inspector a signal that arrived during
// Node's own start-up opened anyway (docs/limits.md, "Signals").
process.on('SIGUSR1', () => {});
const inspector = await import('node:inspector');
const closeInspector = () => {
  if (inspector.url() !== undefined) inspector.close();
};
closeInspector();
setImmediate(closeInspector);

const { main } = await import('../dist/main.js');
main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => {
    process.stderr.write(`kvm-cli: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
