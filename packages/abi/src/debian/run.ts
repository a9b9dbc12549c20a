import { spawn } from 'node:child_process';
import { FetchError } from './errors.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a tool with stdin closed and output captured. A missing binary becomes a one-line
 * 'tool-missing' error naming the Debian package that provides it; `timeoutMs` turns a stuck
 * network fetch into a failure instead of a hang.
 */
export function runTool(
  tool: string,
  args: string[],
  opts: { cwd?: string; timeoutMs?: number; providedBy: string },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, {
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive' },
    });
    // Not spawn's own `timeout`: its timer outlives a spawn that fails with ENOENT and holds the process open.
    const timer = setTimeout(() => child.kill('SIGTERM'), opts.timeoutMs ?? 300_000);
    timer.unref();
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ENOENT') {
        reject(new FetchError('tool-missing', `${tool} not found on PATH: fetching from the Debian archive needs it (Debian package ${opts.providedBy})`));
      } else {
        reject(new FetchError('tool-missing', `cannot run ${tool}: ${err.message}`));
      }
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (signal) {
        resolve({ code: 128, stdout, stderr: `${stderr}\n${tool} killed by ${signal} (timed out?)` });
      } else {
        resolve({ code: code ?? 1, stdout, stderr });
      }
    });
  });
}

/** The most telling line of a tool's stderr: its first "E:" line, else the first non-empty one. */
export function firstErrorLine(output: string): string {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
  return (lines.find((l) => l.startsWith('E:')) ?? lines[0] ?? 'no output').replace(/^E:\s*/, '');
}
