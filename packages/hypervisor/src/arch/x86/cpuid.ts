/**
 * Per-vCPU CPUID: what KVM supports, made consistent with the VM's shape. Leaf and bit positions
 * are the x86 architecture's (Intel SDM vol. 2A, CPUID), not KVM ABI.
 */
import type { LoadedAbi } from '../../kvm/abi.js';
import type { CpuidEntry } from '../../kvm/system.js';

const LEAF1_ECX_TSC_DEADLINE = 1 << 24;
const LEAF1_ECX_HYPERVISOR = 1 << 31;
const LEAF1_EDX_HTT = 1 << 28;
const TOPO_LEVEL_SMT = 1;
const TOPO_LEVEL_CORE = 2;

export interface CpuidShape {
  index: number;
  cpus: number;
  tscDeadline: boolean;
}

/** bits needed to number `n` things: the x2APIC id shift for a topology level. */
function shiftFor(n: number): number {
  return n <= 1 ? 0 : 32 - Math.clz32(n - 1);
}

/** Leaf 4 EAX[31:26] holds cores per package - 1 in 6 bits: packages never hold more than this. */
export const MAX_CORES_PER_PACKAGE = 64;

/**
 * The topology every vCPU reports: single-thread cores, `cpus` of them in one package, or packages
 * of 64 when there are more (APIC id = vCPU index = package << coreBits | core, so ids stay dense).
 */
export function topology(cpus: number): { coresPerPackage: number; coreBits: number } {
  const coresPerPackage = Math.min(cpus, MAX_CORES_PER_PACKAGE);
  return { coresPerPackage, coreBits: shiftFor(cpus > MAX_CORES_PER_PACKAGE ? MAX_CORES_PER_PACKAGE : cpus) };
}

/**
 * One vCPU's CPUID: APIC ids, the topology above and the hypervisor bit. KVM's own leaves
 * (0x40000000 signature, 0x40000001 features) pass through as KVM_GET_SUPPORTED_CPUID reports
 * them: their layout is KVM's paravirt ABI, which the spec does not carry, so kvm-ts never writes it.
 */
export function normalizeCpuid(supported: readonly CpuidEntry[], shape: CpuidShape): CpuidEntry[] {
  const { index: apicId, cpus } = shape;
  const { coresPerPackage, coreBits } = topology(cpus);
  // The vCPUs in this one's package (the last package may be partly filled).
  const inPackage = Math.min(coresPerPackage, cpus - (apicId >> coreBits << coreBits));
  const out = supported.map((e) => ({ ...e }));
  for (const e of out) {
    switch (e.function) {
      case 1:
        // EBX[23:16]: addressable logical processor ids per package.
        e.ebx = ((e.ebx & 0x0000_ffff) | (((1 << coreBits) & 0xff) << 16) | ((apicId & 0xff) << 24)) >>> 0;
        e.ecx = (e.ecx | LEAF1_ECX_HYPERVISOR) >>> 0;
        e.ecx = (shape.tscDeadline ? e.ecx | LEAF1_ECX_TSC_DEADLINE : e.ecx & ~LEAF1_ECX_TSC_DEADLINE) >>> 0;
        e.edx = (cpus > 1 ? e.edx | LEAF1_EDX_HTT : e.edx & ~LEAF1_EDX_HTT) >>> 0;
        break;
      case 4: {
        // Cores per package - 1 in EAX[31:26]; logical CPUs sharing this cache - 1 in EAX[25:14]:
        // private L1/L2, an L3 shared by the package.
        const level = (e.eax >>> 5) & 0x7;
        const sharing = level >= 3 ? inPackage - 1 : 0;
        e.eax = ((e.eax & 0x3fff) | ((sharing & 0xfff) << 14) | (((coresPerPackage - 1) & 0x3f) << 26)) >>> 0;
        break;
      }
      case 0xb:
      case 0x1f: {
        const levels: Array<[number, number, number]> = [
          [0, 1, TOPO_LEVEL_SMT],
          [coreBits, inPackage, TOPO_LEVEL_CORE],
        ];
        const lvl = levels[e.index];
        if (lvl) {
          e.eax = lvl[0];
          e.ebx = lvl[1];
          e.ecx = (e.index | (lvl[2] << 8)) >>> 0;
        } else {
          e.eax = 0;
          e.ebx = 0;
          e.ecx = e.index & 0xff;
        }
        e.edx = apicId >>> 0;
        break;
      }
      default:
        break;
    }
  }
  return out;
}

/** kvm_cpuid2 with its flexible entries array, for KVM_SET_CPUID2. */
/** Whether `entries` tell the guest it has the TSC-deadline LAPIC timer (leaf 1, ECX bit 24). */
export function advertisesTscDeadline(entries: readonly CpuidEntry[]): boolean {
  const leaf1 = entries.find((e) => e.function === 1);
  return leaf1 !== undefined && (leaf1.ecx & LEAF1_ECX_TSC_DEADLINE) !== 0;
}

export function encodeCpuid2(abi: LoadedAbi, entries: readonly CpuidEntry[]): Uint8Array {
  const header = abi.codec('kvm_cpuid2');
  const entry = abi.codec<CpuidEntry>('kvm_cpuid_entry2');
  const entriesAt = abi.field('kvm_cpuid2', 'entries').offset;
  const bytes = new Uint8Array(entriesAt + entries.length * entry.size);
  const view = new DataView(bytes.buffer);
  header.encode({ nent: entries.length }, view);
  entries.forEach((e, i) => entry.encode(e, view, entriesAt + i * entry.size));
  return bytes;
}
