/**
 * LAPIC LINT0 as ExtINT (the PIC's output) and LINT1 as NMI, as a BIOS leaves them for Linux.
 * Register offsets and delivery modes are the APIC's architecture, not KVM ABI; the register
 * page's place in kvm_lapic_state comes from the spec.
 */
import type { LoadedAbi } from '../../kvm/abi.js';

const APIC_LVT_LINT0 = 0x350;
const APIC_LVT_LINT1 = 0x360;
const DELIVERY_MODE_MASK = 0x700;
const DELIVERY_EXTINT = 0x700;
const DELIVERY_NMI = 0x400;

/** Rewrites the LVT entries inside a KVM_GET_LAPIC buffer, ready for KVM_SET_LAPIC. */
export function routeLegacyInterrupts(abi: LoadedAbi, state: Uint8Array): void {
  const regs = abi.field('kvm_lapic_state', 'regs');
  const view = new DataView(state.buffer, state.byteOffset, state.byteLength);
  for (const [reg, mode] of [
    [APIC_LVT_LINT0, DELIVERY_EXTINT],
    [APIC_LVT_LINT1, DELIVERY_NMI],
  ] as const) {
    const at = regs.offset + reg;
    view.setUint32(at, ((view.getUint32(at, true) & ~DELIVERY_MODE_MASK) | mode) >>> 0, true);
  }
}
