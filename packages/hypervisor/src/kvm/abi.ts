/**
 * Where the hypervisor gets every KVM number: the newest pinned spec for x86_64, loaded once
 * (through the zod-free runtime entry point: a VMM start-up must not pay for zod).
 */
import { listSpecs, loadAbi } from '@kvm-ts/abi/runtime';
import type { LoadedAbi, StructCodec, StructValue } from '@kvm-ts/abi/runtime';
import { KvmError } from './errors.js';

export type { LoadedAbi, StructCodec, StructValue };

let cached: LoadedAbi | undefined;

function checkHostArch(): void {
  if (process.arch !== 'x64') throw new KvmError(`kvm-ts runs x86_64 guests on x86_64 hosts only (this host is ${process.arch})`);
}

/** The spec this VMM drives /dev/kvm with by default: the newest pinned one. Only x86_64 hosts run guests. */
export function hostAbi(): LoadedAbi {
  if (cached) return cached;
  checkHostArch();
  cached = loadAbi(undefined, 'x86_64');
  return cached;
}

/** The ids of every committed spec of the host arch ("5.10" … "7.2+local"). */
export function hostSpecIds(): string[] {
  return listSpecs().filter((s) => s.arch === 'x86_64').map((s) => s.id);
}

/** The host arch's pinned spec `version` ("5.10", "7.2+local", "latest"), or a one-line error listing them. */
export function abiVersion(version: string): LoadedAbi {
  checkHostArch();
  if (version === 'latest') return hostAbi();
  const known = hostSpecIds();
  if (!known.includes(version)) throw new KvmError(`no x86_64 spec '${version}' (pinned: ${known.join(', ')})`);
  return loadAbi(version, 'x86_64');
}

/** Every constant of the spec with `prefix`, as name → value, in ascending value order. */
export function constantsWithPrefix(abi: LoadedAbi, prefix: string): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  for (const name of Object.keys(abi.spec.constants)) {
    if (!name.startsWith(prefix)) continue;
    const v = abi.spec.constants[name];
    if (typeof v === 'number') out.push([name, v]);
  }
  // Code-unit order for ties: localeCompare would load ICU's collator (~15 ms at start-up).
  return out.sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}
