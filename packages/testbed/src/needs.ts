/**
 * How a test that needs /dev/kvm registers with ava. Where this host's /dev/kvm can do what the test
 * needs, the test runs. Where it cannot:
 * - under CI with KVM_TS_TESTBED_DEFER set (.ci/run), it is skipped here as "deferred to the testbed"
 *   and listed in that file, and .ci/run runs it inside the testbed;
 * - under CI otherwise, the file gets one failing test saying so (CI must not pass by skipping);
 * - elsewhere (a newcomer's npm test), the file's tests are skipped with one visible reason and the
 *   hint to run them in the testbed.
 * KVM_TS_TEST_LEDGER, when set, gets one line per test saying where it went, for CI's summary.
 */
import test, { type ExecutionContext } from 'ava';
import { appendFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { hostKvm, kvmLacking, type KvmNeed } from './host-kvm.js';

export { hostKvm, kvmLacking, type HostKvm, type KvmNeed } from './host-kvm.js';
export { scaled, timeScale } from './time-scale.js';

export const TESTBED_HINT = 'npm run testbed -- npm test';

type Implementation = (t: ExecutionContext) => void | Promise<void>;

export interface KvmTestOptions {
  /** 'linux': the test boots a stock kernel, which kvm_pvm cannot. Default 'kvm'. */
  need?: KvmNeed;
  /** Run with test.serial (default), or concurrently with the file's other tests. */
  serial?: boolean;
}

export type Disposition = 'host' | 'deferred' | 'skipped' | 'failed';

export interface DeferredTest {
  file: string;
  title: string;
}

const currentFile = () => {
  const f = test.meta.file;
  return f.startsWith('file:') ? fileURLToPath(f) : f;
};

function ledger(title: string, where: Disposition, why?: string): void {
  const path = process.env.KVM_TS_TEST_LEDGER;
  if (path) appendFileSync(path, `${JSON.stringify({ file: currentFile(), title, where, ...(why ? { why } : {}) })}\n`);
}

/** Whether this process runs inside the testbed's emulated machine (main.ts sets it there). */
export function inTestbed(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.KVM_TS_TESTBED === '1';
}

/** Whether a test this host cannot run goes to the testbed (CI sets this; the testbed itself never). */
export function deferring(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CI === 'true' && !!env.KVM_TS_TESTBED_DEFER && !inTestbed(env);
}

/**
 * A registrar for one group of tests (`what`, e.g. "virtio runs") that need /dev/kvm: call it as
 * ava's `test`. Its `lacking` says why this host cannot run them (undefined: it can).
 */
/**
 * What the emulated machine cannot do that a test needs (QEMU's TCG does not emulate everything a
 * hardware host does): inside the testbed the test is a visible skip, never a failure, and docs/
 * testbed.md lists it among the tests left to hosts with /dev/kvm.
 */
export interface TestbedGap {
  testbedGap: string;
}

export function kvmTests(what: string, options: KvmTestOptions = {}): ((title: string, fn: Implementation, missing?: string | TestbedGap) => void) & { lacking: string | undefined } {
  const lacking = kvmLacking(options.need ?? 'kvm', hostKvm());
  let marked = false;
  const markOnce = () => {
    if (marked) return;
    marked = true;
    if (process.env.CI === 'true') test(`${what}: ${lacking} but CI=true requires it`, (t) => t.fail(`${lacking} (.ci/run runs these in the testbed)`));
    else test.skip(`${what} — skipped: ${lacking}; run them with: ${TESTBED_HINT}`, () => {});
  };
  const register = (title: string, fn: Implementation, needed?: string | TestbedGap) => {
    const ava = options.serial === false ? test : test.serial;
    const gap = typeof needed === 'object' && inTestbed() ? needed.testbedGap : undefined;
    const missing = typeof needed === 'string' ? needed : undefined;
    if (lacking && deferring()) {
      test.skip(`${title} — deferred to the testbed`, fn);
      appendFileSync(process.env.KVM_TS_TESTBED_DEFER!, `${JSON.stringify({ file: currentFile(), title } satisfies DeferredTest)}\n`);
      ledger(title, 'deferred', lacking);
    } else if (lacking) {
      markOnce();
      test.skip(title, fn);
      ledger(title, process.env.CI === 'true' ? 'failed' : 'skipped', lacking);
    } else if (gap) {
      test.skip(`${title} — skipped: ${gap}`, fn);
      ledger(title, 'skipped', gap);
    } else if (missing && process.env.CI === 'true') {
      test(title, (t) => t.fail(missing));
      ledger(title, 'failed', missing);
    } else if (missing) {
      test.skip(`${title} — skipped: ${missing}`, fn);
      ledger(title, 'skipped', missing);
    } else {
      ava(title, fn);
      ledger(title, 'host');
    }
  };
  return Object.assign(register, { lacking });
}
