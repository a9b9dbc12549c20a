// The test pipeline's fetch step for this package (turbo task "fetch"): the stock kernel the loader
// and boot tests need, and Debian's passt for the user-mode networking tests when passt is not on
// PATH. A failure is one line and exit 0 here: those tests then fail under CI=true and skip with the
// reason elsewhere. `--strict` exits 1 instead.
import { fetchPasst } from '../dist/passt-fetch.js';
import { fetchTestKernel } from '../dist/test-kernel-fetch.js';

const strict = process.argv.includes('--strict');
try {
  const k = await fetchTestKernel();
  console.log(k.downloaded ? `test kernel: downloaded ${k.downloaded} to ${k.path}` : `test kernel: ${k.path}`);
} catch (err) {
  if (!(err instanceof Error) || err.name !== 'FetchError') throw err;
  console.log(`test kernel: could not fetch (${err.message}); fetch it with \`npm run fetch\` once the Debian archive is reachable`);
  process.exitCode = strict ? 1 : 0;
}

try {
  const p = await fetchPasst();
  console.log(p.downloaded ? `passt: downloaded ${p.downloaded} to ${p.path}` : `passt: ${p.path}`);
} catch (err) {
  if (!(err instanceof Error) || err.name !== 'FetchError') throw err;
  console.log(`passt: could not fetch (${err.message}); fetch it with \`npm run fetch\` once the Debian archive is reachable`);
  process.exitCode = strict ? 1 : 0;
}
