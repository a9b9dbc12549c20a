/**
 * What happens when stdout or stderr fails. A closed stdout (EPIPE: `| head`) is the reader's
 * choice: by default the command ends with status 0, and `kvm-cli run` instead stops console
 * output and keeps the guest's status. Any other write error (ENOSPC on `>/dev/full`, EIO) is one
 * line on stderr and exit status 1 — never an unhandled 'error' event and its stack trace.
 */
import { printable } from '@kvm-ts/hypervisor/control/paths';

export interface StreamPolicy {
  /** The reader of stdout went away (EPIPE). */
  stdoutClosed(): void;
  /** The reader of stderr went away (EPIPE); nothing more can be said. */
  stderrClosed(): void;
  /** Any other write error, described in `line`: say it (once) and end with status 1. */
  failed(line: string): void;
}

const exitPolicy: StreamPolicy = {
  stdoutClosed: () => process.exit(0),
  stderrClosed: () => {},
  failed: (line) => {
    say(line);
    process.exit(1);
  },
};

let policy = exitPolicy;
let stderrUsable = true;
let installed = false;
let exitWhenDone = false;

/**
 * A stream holds writes that will never complete (a reader that stopped reading): Node would wait
 * for them forever, and destroying process.stdout does not release them. main() then exits.
 */
export function abandonPendingWrites(): void {
  exitWhenDone = true;
}

export function mustExit(): boolean {
  return exitWhenDone;
}

/** The longest diagnostic line: one that echoes a whole input file is no diagnostic. */
const MAX_SAY = 4096;

/** One diagnostic line on stderr, unless stderr already failed; what it echoes cannot drive the terminal. */
export function say(line: string): void {
  if (stderrUsable) process.stderr.write(`kvm-cli: ${printable(line, MAX_SAY)}\n`);
}

/** Replaces the policy (kvm-cli run: while and after a VM runs). */
export function setStreamPolicy(next: StreamPolicy): void {
  policy = next;
}

/** What an errno means, in the words of strerror, for the one line. */
function describe(err: NodeJS.ErrnoException): string {
  const what: Record<string, string> = { ENOSPC: 'no space left on device', EIO: 'input/output error', EBADF: 'not open', EFBIG: 'file too large' };
  return err.code ? `${err.code}${what[err.code] ? ` (${what[err.code]})` : ''}` : err.message.split('\n')[0];
}

/** Installs the handlers once, before anything is written. */
export function guardStreams(): void {
  if (installed) return;
  installed = true;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') {
      policy.stdoutClosed();
      return;
    }
    policy.failed(`cannot write to stdout: ${describe(err)}`);
  });
  process.stderr.on('error', (err: NodeJS.ErrnoException) => {
    // Nowhere left to say anything: a closed stderr is ignored, a failing one ends with status 1.
    stderrUsable = false;
    if (err.code === 'EPIPE') policy.stderrClosed();
    else policy.failed(`cannot write to stderr: ${describe(err)}`);
  });
}
