/** Identity map of the first 4 GiB with 2 MiB pages, as the 64-bit boot protocol requires of the loader. */
import type { GuestMemory } from '../memory.js';
import { IDENTITY_MAP_GIB, PD_ADDR, PDPT_ADDR, PML4_ADDR } from './layout.js';

export const PTE_PRESENT = 1n << 0n;
export const PTE_WRITABLE = 1n << 1n;
export const PTE_USER = 1n << 2n;
/** In a page-directory entry: maps a 2 MiB page instead of pointing at a page table. */
export const PTE_PAGE_SIZE = 1n << 7n;

const TWO_MIB = 0x200000n;
const ONE_GIB = 0x40000000n;

/** Writes PML4, PDPT and page directories; returns the CR3 value. */
export function writeIdentityPageTables(mem: GuestMemory): number {
  mem.fill(PML4_ADDR, 0x1000);
  mem.fill(PDPT_ADDR, 0x1000);
  mem.writeU64(PML4_ADDR, BigInt(PDPT_ADDR) | PTE_PRESENT | PTE_WRITABLE);
  // The page directories are built in one buffer and copied in with one write (2048 entries for 4 GiB).
  const pds = new BigUint64Array(IDENTITY_MAP_GIB * 512);
  for (let gib = 0; gib < IDENTITY_MAP_GIB; gib++) {
    const pd = PD_ADDR + gib * 0x1000;
    mem.writeU64(PDPT_ADDR + gib * 8, BigInt(pd) | PTE_PRESENT | PTE_WRITABLE);
    for (let i = 0; i < 512; i++) {
      const phys = BigInt(gib) * ONE_GIB + BigInt(i) * TWO_MIB;
      pds[gib * 512 + i] = phys | PTE_PRESENT | PTE_WRITABLE | PTE_PAGE_SIZE;
    }
  }
  mem.write(PD_ADDR, new Uint8Array(pds.buffer)); // little-endian host (x86_64 only), as the guest reads them
  return PML4_ADDR;
}
