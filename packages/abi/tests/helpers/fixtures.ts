/** The hand-written fixture spec exercising every layout feature the runtime supports. */
import { fileURLToPath } from 'node:url';
import { abiFromSpec, loadSpecFile, type Arch, type LoadedAbi, type Spec } from '../../src/index.js';

export const FEATURES_PATH = fileURLToPath(new URL('../fixtures/runtime/features.json', import.meta.url));

export function featuresSpec(arch: Arch = 'x86_64'): Spec {
  return { ...loadSpecFile(FEATURES_PATH), arch };
}

export function featuresAbi(arch: Arch = 'x86_64'): LoadedAbi {
  return abiFromSpec(featuresSpec(arch), '6.12');
}

export function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}
