/** The boot GDT: Linux's 64-bit boot protocol wants __BOOT_CS = 0x10 and __BOOT_DS = 0x18, both flat. */
import type { GuestMemory } from '../memory.js';
import { GDT_ADDR, GDT_ENTRIES, IDT_ADDR, IDT_BYTES } from './layout.js';

export const BOOT_CODE_SELECTOR = 0x10;
export const BOOT_DATA_SELECTOR = 0x18;
export const BOOT_TSS_SELECTOR = 0x20;

/** Packs a legacy 8-byte segment descriptor. `flags` is access byte | (G/D/L/AVL nibble << 12). */
export function gdtEntry(flags: number, base: number, limit: number): bigint {
  const b = BigInt(base >>> 0);
  const l = BigInt(limit & 0xfffff);
  const f = BigInt(flags & 0xf0ff);
  return (
    ((b & 0xff000000n) << 32n) |
    ((f & 0xf0ffn) << 40n) |
    ((l & 0xf0000n) << 32n) |
    ((b & 0x00ffffffn) << 16n) |
    (l & 0xffffn)
  );
}

/** Present, DPL0, code execute/read, L=1 (64-bit), G=1. */
export const CODE64_FLAGS = 0xa09b;
/** Present, DPL0, data read/write, D/B=1, G=1. */
export const DATA_FLAGS = 0xc093;
/** Present, busy 64-bit TSS: what VMX requires of TR even before the guest loads its own. */
export const TSS_FLAGS = 0x008b;

export const BOOT_GDT: readonly bigint[] = [
  0n,
  0n,
  gdtEntry(CODE64_FLAGS, 0, 0xfffff),
  gdtEntry(DATA_FLAGS, 0, 0xfffff),
  gdtEntry(TSS_FLAGS, 0, 0x67),
  0n, // upper half of the 16-byte long-mode TSS descriptor (base 63:32 = 0)
];

export function writeGdt(mem: GuestMemory): { gdt: { base: number; limit: number }; idt: { base: number; limit: number } } {
  if (BOOT_GDT.length !== GDT_ENTRIES) throw new Error(`boot GDT has ${BOOT_GDT.length} entries, layout.ts reserves ${GDT_ENTRIES}`);
  BOOT_GDT.forEach((e, i) => mem.writeU64(GDT_ADDR + i * 8, e));
  // An empty IDT: the kernel installs its own before enabling interrupts.
  mem.fill(IDT_ADDR, IDT_BYTES);
  return { gdt: { base: GDT_ADDR, limit: GDT_ENTRIES * 8 - 1 }, idt: { base: IDT_ADDR, limit: IDT_BYTES - 1 } };
}
