/** A kernel/initrd image the loader cannot use. The message is one line naming what is wrong. */
export class ImageError extends Error {
  override name = 'ImageError';
}
