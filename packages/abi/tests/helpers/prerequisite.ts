import test, { type ExecutionContext } from 'ava';

/**
 * A test that needs something from outside the repository: the synced header cache
 * (`npm run fetch`) or a (cross) C compiler. When `missing` says what is absent, the test
 * FAILS under CI (CI=true: the fetch step before npm test provides both) and is skipped elsewhere, with the reason in the
 * title so ava's summary shows it. Nothing else may skip.
 */
export function testNeeding(missing: string | undefined, title: string, fn: (t: ExecutionContext) => void | Promise<void>): void {
  if (!missing) test(title, fn);
  else if (process.env.CI === 'true') test(title, (t) => t.fail(missing));
  else test.skip(`${title} — skipped: ${missing}`, fn);
}
