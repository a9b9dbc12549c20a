// The test pipeline's fetch step for this package (turbo task "fetch", before "test"): the pinned
// header cache and, where they are not on PATH, the cross compilers of the arm64/riscv64 layout
// probe. Everything is cached, so a second run downloads nothing. A failure is one line and exit 0:
// the tests that need what is missing then fail under CI=true and skip with the reason elsewhere.
// `--strict` exits 1 instead.
import { spawnSync } from 'node:child_process';
import { aptUpdate, cachedCrossGcc, FetchError, fetchCrossGcc, hostDebianRelease, privateApt } from '../dist/debian/index.js';
import { syncHeaders } from '../dist/headers/index.js';
import { GNU_TRIPLET } from '../dist/spec/arch.js';

const strict = process.argv.includes('--strict');
let failed = false;
const HOW = 'fetch it with `npm run fetch` once the Debian archive is reachable';

async function step(what, fn) {
  try {
    await fn();
  } catch (err) {
    if (!(err instanceof FetchError)) throw err;
    failed = true;
    console.log(`${what}: could not fetch (${err.message}); ${HOW}`);
  }
}

await step('kernel headers', () => syncHeaders({ log: (line) => console.log(`kernel headers ${line}`) }));

const onPath = (tool) => spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0;
const hostTriplet = { x64: GNU_TRIPLET.x86_64, arm64: GNU_TRIPLET.arm64, riscv64: GNU_TRIPLET.riscv64 }[process.arch];
const triplets = Object.values(GNU_TRIPLET).filter((t) => t !== hostTriplet && !(onPath(`${t}-gcc`) && onPath(`${t}-objcopy`)));
if (triplets.length > 0) {
  await step(`cross gcc (${triplets.join(', ')})`, async () => {
    let apt;
    for (const triplet of triplets) {
      const cached = cachedCrossGcc(triplet);
      if (cached) {
        console.log(`cross gcc ${triplet}: up to date (${cached.dir})`);
        continue;
      }
      // apt-get update only once something is missing from the cache.
      if (!apt) {
        const release = hostDebianRelease();
        apt = privateApt([release, `${release}-updates`, `${release}-security`]);
        await aptUpdate(apt);
      }
      const r = await fetchCrossGcc(apt, triplet);
      console.log(`cross gcc ${triplet}: downloaded ${r.packages.join(' ')} into ${r.dir}`);
    }
  });
}
if (failed && strict) process.exitCode = 1;
