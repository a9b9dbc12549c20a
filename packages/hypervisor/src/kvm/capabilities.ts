/**
 * Which KVM capabilities kvm-ts needs, which it uses when present (and what it does otherwise),
 * and a report of every KVM_CAP_* the spec knows.
 */
import { constantsWithPrefix, type LoadedAbi } from './abi.js';
import { KvmError } from './errors.js';
import type { KvmSystem } from './system.js';

/** Without any of these the VM cannot be set up the way vm.ts does it. */
export const REQUIRED_CAPS: Readonly<Record<string, string>> = {
  KVM_CAP_USER_MEMORY: 'guest RAM from host mappings',
  KVM_CAP_IRQCHIP: 'in-kernel PIC, IOAPIC and LAPICs',
  KVM_CAP_PIT2: 'in-kernel PIT',
  KVM_CAP_SET_TSS_ADDR: 'the TSS pages below 4 GiB',
  KVM_CAP_SET_IDENTITY_MAP_ADDR: 'the identity-map page below 4 GiB',
  KVM_CAP_EXT_CPUID: 'KVM_GET_SUPPORTED_CPUID / KVM_SET_CPUID2',
  KVM_CAP_HLT: 'HLT handled in the kernel',
};

/** Used when present; each has a fallback. */
export const OPTIONAL_CAPS: Readonly<Record<string, string>> = {
  KVM_CAP_IMMEDIATE_EXIT: 'race-free vCPU kicks (else: re-kick until the vCPU acknowledges)',
  KVM_CAP_TSC_DEADLINE_TIMER: 'TSC-deadline LAPIC timer in CPUID (else: not advertised)',
  KVM_CAP_MAX_VCPUS: 'the --cpus limit (else KVM_CAP_NR_VCPUS, else 4)',
  KVM_CAP_NR_VCPUS: 'the --cpus limit when KVM_CAP_MAX_VCPUS is absent',
  KVM_CAP_IOEVENTFD: 'doorbell writes without an exit (else: ordinary exits)',
  KVM_CAP_IRQFD: 'interrupts from an eventfd (else: KVM_IRQ_LINE)',
};

export interface HostCaps {
  /** Value per capability kvm-ts consults (0 = absent). */
  values: Record<string, number>;
  immediateExit: boolean;
  tscDeadline: boolean;
  maxVcpus: number;
}

/** Checks every required capability (one error naming all that are missing) and reads the optional ones. */
export function probeCapabilities(sys: KvmSystem): HostCaps {
  const values: Record<string, number> = {};
  const missing: string[] = [];
  for (const cap of Object.keys(REQUIRED_CAPS)) {
    values[cap] = sys.checkExtension(cap);
    if (values[cap] <= 0) missing.push(cap);
  }
  if (missing.length > 0) {
    throw new KvmError(`${sys.path} lacks capabilities kvm-ts requires: ${missing.join(', ')}`);
  }
  for (const cap of Object.keys(OPTIONAL_CAPS)) values[cap] = sys.abi.hasConstant(cap) ? sys.checkExtension(cap) : 0;
  // api.rst: without KVM_CAP_MAX_VCPUS the limit is KVM_CAP_NR_VCPUS; without that, 4.
  const maxVcpus = values.KVM_CAP_MAX_VCPUS || values.KVM_CAP_NR_VCPUS || 4;
  return { values, immediateExit: values.KVM_CAP_IMMEDIATE_EXIT > 0, tscDeadline: values.KVM_CAP_TSC_DEADLINE_TIMER > 0, maxVcpus };
}

export interface CapabilityRow {
  name: string;
  number: number;
  value: number;
  present: boolean;
  required: boolean;
  used: boolean;
}

/** Every KVM_CAP_* of `abi`, checked against this host. */
export function capabilityReport(sys: KvmSystem, abi: LoadedAbi): CapabilityRow[] {
  return constantsWithPrefix(abi, 'KVM_CAP_').map(([name, number]) => {
    const value = sys.ioctl('KVM_CHECK_EXTENSION', number);
    return { name, number, value, present: value > 0, required: name in REQUIRED_CAPS, used: name in OPTIONAL_CAPS };
  });
}
