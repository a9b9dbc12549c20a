/** A kernel/initrd image the loader cannot use. The message is one line naming what is wrong. */
export class ImageError extends Error {
  override name = 'ImageError';
}

/** Loading ran past the run's deadline (`--timeout` covers loading too); `what` names the step. */
export class LoadDeadlineError extends Error {
  override name = 'LoadDeadlineError';
  constructor(readonly what: string) {
    super(`the deadline passed while ${what}`);
  }
}
