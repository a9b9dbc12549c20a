// The test pipeline's fetch step for this package (turbo task "fetch"): the stock kernel the loader
// and boot tests need, and — when they are not on PATH — Debian's passt and ping for the network
// tests, busybox-static for the stock kernel's /init, and acpica-tools' iasl for the ACPI table tests. A failure is one line and exit 0 here: those tests then fail under CI=true and skip with
// the reason elsewhere. `--strict` exits 1 instead.
import { fetchTestKernel } from '../dist/test-kernel-fetch.js';
import { fetchBusybox, fetchIasl, fetchPasst, fetchPing } from '../dist/test-tools.js';

const strict = process.argv.includes('--strict');
const HOW = 'fetch it with `npm run fetch` once the Debian archive is reachable';

for (const [what, fetch] of [['test kernel', fetchTestKernel], ['passt', fetchPasst], ['ping', fetchPing], ['busybox', fetchBusybox], ['iasl', fetchIasl]]) {
  try {
    const r = await fetch();
    console.log(r.downloaded ? `${what}: downloaded ${r.downloaded} to ${r.path}` : `${what}: ${r.path}`);
  } catch (err) {
    if (!(err instanceof Error) || err.name !== 'FetchError') throw err;
    console.log(`${what}: could not fetch (${err.message}); ${HOW}`);
    if (strict) process.exitCode = 1;
  }
}
