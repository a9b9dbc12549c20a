/**
 * Which KVM capabilities kvm-ts needs, which it uses when present (and what it does otherwise), the
 * one place every KVM_CHECK_EXTENSION answer passes through — where a capability can be masked to
 * run the VMM as it would run on an older kernel — and a report of every KVM_CAP_* the spec knows.
 */
import { constantsWithPrefix, type LoadedAbi } from './abi.js';
import { KvmError } from './errors.js';

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

export interface OptionalCap {
  /** What kvm-ts uses it for. */
  use: string;
  /** What it does without it. */
  fallback: string;
}

/** Used when present; each has a fallback, which a run reports when it takes it. */
export const OPTIONAL_CAPS: Readonly<Record<string, OptionalCap>> = {
  KVM_CAP_IMMEDIATE_EXIT: { use: 'race-free vCPU kicks', fallback: 're-kick every 2 ms until the vCPU acknowledges' },
  KVM_CAP_TSC_DEADLINE_TIMER: { use: 'the TSC-deadline LAPIC timer in CPUID', fallback: 'not advertised: the guest uses the LAPIC timer' },
  KVM_CAP_MAX_VCPUS: { use: 'the --cpus limit', fallback: 'KVM_CAP_NR_VCPUS as the --cpus limit' },
  KVM_CAP_NR_VCPUS: { use: 'the --cpus limit without KVM_CAP_MAX_VCPUS', fallback: 'at most 4 vCPUs, as api.rst says' },
  KVM_CAP_IOEVENTFD: { use: 'doorbell writes without an exit', fallback: 'ordinary MMIO exits' },
  KVM_CAP_IRQFD: { use: 'interrupts from an eventfd', fallback: 'KVM_IRQ_LINE from the VMM' },
  KVM_CAP_KVMTS_VM_TAG: { use: 'the VM tag in the kernel (the co-edit example, 7.2+local)', fallback: 'the VM tag stays in userspace' },
};

/**
 * What a run pretends the kernel lacks. `kernelAs`: answer as a kernel of that spec version could at
 * most (a capability its spec does not define reads as absent); `without`: single capabilities.
 */
export interface CapabilityMask {
  kernelAs?: { version: string; defines(cap: string): boolean };
  without?: readonly string[];
}

/** Why a capability reads as absent, or undefined when the kernel was asked and said yes. */
export type AbsentBecause = 'not-in-spec' | 'kernel-as' | 'without-cap' | 'kernel';

export interface CapabilityAnswer {
  value: number;
  absent?: AbsentBecause;
}

/**
 * The single KVM_CHECK_EXTENSION path of a /dev/kvm or VM fd: a name the VMM's spec does not define
 * is absent (the VMM cannot even name it), then the mask, then the kernel.
 */
export class CapabilityCheck {
  constructor(
    private readonly abi: LoadedAbi,
    private readonly ask: (cap: number) => number,
    readonly mask: CapabilityMask = {},
  ) {}

  answer(cap: string): CapabilityAnswer {
    if (!this.abi.hasConstant(cap)) return { value: 0, absent: 'not-in-spec' };
    if (this.mask.kernelAs && !this.mask.kernelAs.defines(cap)) return { value: 0, absent: 'kernel-as' };
    if (this.mask.without?.includes(cap)) return { value: 0, absent: 'without-cap' };
    const value = this.ask(this.abi.constant(cap));
    return value > 0 ? { value } : { value, absent: 'kernel' };
  }

  value(cap: string): number {
    return this.answer(cap).value;
  }
}

/** "KVM_CAP_X is absent (masked by --without-cap)": why, in the words a user typed. */
export function describeAbsence(cap: string, because: AbsentBecause, ctx: { spec: string; kernelAs?: string; device: string }): string {
  switch (because) {
    case 'not-in-spec':
      return `${cap} is not in the ${ctx.spec} spec`;
    case 'kernel-as':
      return `${cap} is absent from a ${ctx.kernelAs} kernel (--kernel-caps-as ${ctx.kernelAs})`;
    case 'without-cap':
      return `${cap} is masked (--without-cap)`;
    case 'kernel':
      return `${ctx.device} lacks ${cap}`;
  }
}

export interface Fallback {
  capability: string;
  fallback: string;
}

export interface HostCaps {
  /** Value per capability kvm-ts consults, as the VM sees it (0 = absent or masked). */
  values: Record<string, number>;
  immediateExit: boolean;
  tscDeadline: boolean;
  ioeventfd: boolean;
  irqfd: boolean;
  /**
   * virtio-pci's MSI-X paths (devices/virtio/pci-platform.ts): KVM_CAP_IRQ_ROUTING's value, how many
   * GSI routes the kernel takes (0: no KVM_SET_GSI_ROUTING), and KVM_CAP_SIGNAL_MSI. Not among
   * OPTIONAL_CAPS' fallbacks: only a machine with the PCI transport consults them, and its devices'
   * stats say which path it took.
   */
  irqRoutes: number;
  signalMsi: boolean;
  maxVcpus: number;
  /** Every optional capability this VM goes without, and what it does instead. */
  fallbacks: Fallback[];
}

/** A CapabilityCheck's /dev/kvm side, as KvmSystem provides it. */
export interface CapabilitySource {
  readonly path: string;
  readonly abi: LoadedAbi;
  readonly caps: CapabilityCheck;
}

/**
 * Checks every required capability (one line naming each missing one, why, and what needs it) and
 * reads the optional ones, recording the fallback of each that is absent.
 */
export function probeCapabilities(sys: CapabilitySource): HostCaps {
  const values: Record<string, number> = {};
  const missing: string[] = [];
  const ctx = { spec: sys.abi.version, kernelAs: sys.caps.mask.kernelAs?.version, device: sys.path };
  for (const [cap, need] of Object.entries(REQUIRED_CAPS)) {
    const a = sys.caps.answer(cap);
    values[cap] = a.value;
    if (a.absent) missing.push(`${describeAbsence(cap, a.absent, ctx)} (kvm-ts needs it for ${need})`);
  }
  if (missing.length > 0) throw new KvmError(`required capability missing: ${missing.join('; ')}`);
  for (const cap of Object.keys(OPTIONAL_CAPS)) values[cap] = sys.caps.value(cap);
  // api.rst: without KVM_CAP_MAX_VCPUS the limit is KVM_CAP_NR_VCPUS; without that, 4.
  const maxVcpus = values.KVM_CAP_MAX_VCPUS || values.KVM_CAP_NR_VCPUS || 4;
  const fallbacks = Object.entries(OPTIONAL_CAPS)
    .filter(([cap]) => values[cap] <= 0)
    // NR_VCPUS only matters once MAX_VCPUS is gone.
    .filter(([cap]) => cap !== 'KVM_CAP_NR_VCPUS' || values.KVM_CAP_MAX_VCPUS <= 0)
    // The co-edit extension is only a fallback for a spec that has it.
    .filter(([cap]) => cap !== 'KVM_CAP_KVMTS_VM_TAG' || sys.abi.hasConstant(cap))
    .map(([capability, c]) => ({ capability, fallback: c.fallback }));
  return {
    values,
    immediateExit: values.KVM_CAP_IMMEDIATE_EXIT > 0,
    tscDeadline: values.KVM_CAP_TSC_DEADLINE_TIMER > 0,
    ioeventfd: values.KVM_CAP_IOEVENTFD > 0,
    irqfd: values.KVM_CAP_IRQFD > 0,
    irqRoutes: Math.max(0, sys.caps.value('KVM_CAP_IRQ_ROUTING')),
    signalMsi: sys.caps.value('KVM_CAP_SIGNAL_MSI') > 0,
    maxVcpus,
    fallbacks,
  };
}

export interface CapabilityRow {
  name: string;
  number: number;
  value: number;
  present: boolean;
  required: boolean;
  used: boolean;
  /** Why it reads as absent when the mask (not the kernel) made it so. */
  masked?: 'kernel-as' | 'without-cap';
}

/** Every KVM_CAP_* of the source's spec, as a VM with its mask would see this host. */
export function capabilityReport(sys: CapabilitySource): CapabilityRow[] {
  return constantsWithPrefix(sys.abi, 'KVM_CAP_').map(([name, number]) => {
    const a = sys.caps.answer(name);
    const row: CapabilityRow = { name, number, value: a.value, present: !a.absent, required: name in REQUIRED_CAPS, used: name in OPTIONAL_CAPS };
    if (a.absent === 'kernel-as' || a.absent === 'without-cap') row.masked = a.absent;
    return row;
  });
}

/** A mask's --kernel-caps-as half from a spec: the capabilities that kernel version defines. */
export function kernelAsMask(spec: LoadedAbi): NonNullable<CapabilityMask['kernelAs']> {
  return { version: spec.version, defines: (cap) => spec.hasConstant(cap) };
}
