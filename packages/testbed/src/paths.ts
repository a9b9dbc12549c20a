import { join } from 'node:path';
import { userCacheDir } from '@kvm-ts/abi/debian';

/** Everything the testbed builds lives here, beside the other fetched tools: built once, reused. */
export function testbedCacheDir(): string {
  return join(userCacheDir(), 'testbed');
}
