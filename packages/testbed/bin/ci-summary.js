#!/usr/bin/env node
// .ci/run's summary before its last line: ci-summary.js LEDGER HOST-LOG [TESTBED-LOG]
const { ciSummaryFromFiles } = await import('../dist/ci-summary.js');
const { hostKvm } = await import('../dist/host-kvm.js');
const [ledger, hostLog, testbedLog] = process.argv.slice(2);
try {
  console.log(ciSummaryFromFiles(hostKvm(), ledger, hostLog, testbedLog));
} catch (err) {
  console.log(`ci: no summary of where the KVM tests ran (${err instanceof Error ? err.message : String(err)})`);
}
