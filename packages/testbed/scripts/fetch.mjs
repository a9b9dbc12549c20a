// The test pipeline's fetch step for the testbed (turbo task "fetch"). Under CI it builds the
// emulated machine (~100 MB from Debian's archive, once), which the testbed's own tests boot and
// .ci/run needs wherever this host's /dev/kvm falls short. A newcomer's npm test does not download
// it: those tests skip with the hint, and the first `npm run testbed` builds it.
import { main } from '../dist/main.js';

if (process.env.CI === 'true' && process.env.KVM_TS_TESTBED !== '1') process.exitCode = await main(['--fetch']);
else console.log('testbed: not fetched outside CI (npm run testbed -- --fetch builds it)');
