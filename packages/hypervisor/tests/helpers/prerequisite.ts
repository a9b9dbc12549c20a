import test, { type ExecutionContext } from 'ava';

/**
 * A test that needs a tool or file from outside the repository (xz/zstd for building payloads, the
 * stock kernel the fetch step caches). When `missing` says what is absent, the test
 * FAILS under CI (CI=true: the fetch step before npm test provides it) and is skipped elsewhere, with the
 * reason in the title. The same rule as @kvm-ts/abi's tests: nothing else may skip.
 */
export function testNeeding(missing: string | undefined, title: string, fn: (t: ExecutionContext) => void | Promise<void>): void {
  if (!missing) test(title, fn);
  else if (process.env.CI === 'true') test(title, (t) => t.fail(missing));
  else test.skip(`${title} — skipped: ${missing}`, fn);
}
