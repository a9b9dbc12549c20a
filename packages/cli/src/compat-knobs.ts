/**
 * The compatibility knobs `run` and `caps` share (docs/compatibility.md): which pinned spec the VMM
 * runs on (--abi), and which capabilities it pretends the kernel lacks (--kernel-caps-as,
 * --without-cap). Bad values are usage errors, before anything is opened.
 */
import type { CapabilityMask, LoadedAbi } from '@kvm-ts/hypervisor';
import { UsageError } from './errors.js';

type Hv = typeof import('@kvm-ts/hypervisor');


export interface Knobs {
  abi: LoadedAbi;
  mask: CapabilityMask;
}

function spec(hv: Hv, flag: string, version: string): LoadedAbi {
  try {
    return hv.abiVersion(version);
  } catch (err) {
    throw new UsageError(`${flag}: ${(err as Error).message}`);
  }
}

/** --without-cap takes names (comma-separated, repeatable); each must be a KVM_CAP_* some pinned spec defines. */
function capNames(hv: Hv, label: string, values: string[]): string[] {
  const names = values.flatMap((v) => v.split(',')).map((n) => n.trim()).filter(Boolean);
  const known = (cap: string) => hv.hostSpecIds().some((id) => hv.abiVersion(id).hasConstant(cap));
  for (const n of names) {
    if (!/^KVM_CAP_[A-Z0-9_]+$/.test(n) || !known(n)) throw new UsageError(`${label}: '${n}' is not a KVM_CAP_* of any pinned spec`);
  }
  return names;
}

export interface KnobValues {
  abi?: string;
  kernelAs?: string;
  without?: string[];
}

/** Where each value came from, as messages name it (`caps` says --as; a config file names its key). */
export type KnobLabels = Record<keyof KnobValues, string>;
const FLAGS: KnobLabels = { abi: '--abi', kernelAs: '--kernel-caps-as', without: '--without-cap' };

export function parseKnobs(hv: Hv, values: KnobValues, labels: Partial<KnobLabels> = {}): Knobs {
  const label = { ...FLAGS, ...labels };
  const abi = spec(hv, label.abi, values.abi ?? 'latest');
  const mask: CapabilityMask = {};
  if (values.kernelAs !== undefined) mask.kernelAs = hv.kernelAsMask(spec(hv, label.kernelAs, values.kernelAs));
  if (values.without?.length) mask.without = capNames(hv, label.without, values.without);
  return { abi, mask };
}
