import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

/** The CLI from source in a child process, so exit codes and stdout/stderr are the real ones. */
export function cli(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(
    process.execPath,
    ['--import=tsx', '--conditions=kvm-ts-source', '--input-type=module', '-e',
      `import { main } from ${JSON.stringify(MAIN)}; process.exitCode = await main(process.argv.slice(1));`, '--', ...args],
    { encoding: 'utf8' },
  );
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
