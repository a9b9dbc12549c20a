import { AbiInputError } from '../diff/load.js';

/**
 * A spec source that names nothing usable: a missing git ref, a directory without kvm.h, a
 * non-git directory. The CLI prints it as one line and exits 2 (a usage problem, not a diff result).
 */
export class SpecSourceError extends AbiInputError {
  constructor(message: string) {
    super(message);
    this.name = 'SpecSourceError';
  }
}
