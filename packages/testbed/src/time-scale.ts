/**
 * One knob for every time limit a test sets: inside the testbed everything runs ~10× slower (TCG
 * plus nested virtualization), so tests, the CLI's --timeout in tests and benchmark guards multiply
 * by KVM_TS_TIME_SCALE instead of each guessing.
 */
export function timeScale(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.KVM_TS_TIME_SCALE;
  if (raw === undefined || raw === '') return 1;
  const n = Number(raw);
  return Number.isFinite(n) && n >= 1 && n <= 1000 ? n : 1;
}

/** `ms` (or seconds) scaled, rounded up. */
export function scaled(n: number, env: NodeJS.ProcessEnv = process.env): number {
  return Math.ceil(n * timeScale(env));
}
