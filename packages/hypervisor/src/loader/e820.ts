/** The BIOS memory map handed to the kernel in boot_params.e820_table. */
import type { GuestMemory } from '../memory.js';
import { BIOS_END, EBDA_ADDR } from './layout.js';

export const E820_RAM = 1;
export const E820_RESERVED = 2;
/** ACPI tables (reclaimable once the OS has read them). */
export const E820_ACPI = 3;
/** boot_params.e820_table holds at most this many entries. */
export const E820_MAX_ENTRIES_ZEROPAGE = 128;

export interface E820Entry {
  addr: number;
  size: number;
  type: number;
}

/**
 * RAM from the memory regions, with the EBDA/BIOS hole below 1 MiB reported as reserved, and the
 * `reserved` ranges (device windows in the MMIO hole) in address order. `acpi`, the ACPI tables'
 * range, lies in that hole below 1 MiB and is reported as ACPI data there.
 */
export function buildE820(mem: GuestMemory, reserved: ReadonlyArray<{ addr: number; size: number }> = [], acpi?: { addr: number; size: number }): E820Entry[] {
  if (acpi && (acpi.addr < EBDA_ADDR || acpi.addr + acpi.size > BIOS_END || acpi.size <= 0)) {
    throw new RangeError(`ACPI range 0x${acpi.addr.toString(16)}+0x${acpi.size.toString(16)} is not inside the BIOS area below 1 MiB`);
  }
  const out: E820Entry[] = [];
  const add = (addr: number, end: number, type: number) => {
    if (end <= addr) return;
    const last = out[out.length - 1];
    if (last && last.type === type && last.addr + last.size === addr) last.size += end - addr;
    else out.push({ addr, size: end - addr, type });
  };
  for (const r of mem.regions) {
    const end = r.gpa + r.size;
    if (r.gpa < BIOS_END) {
      add(r.gpa, Math.min(end, EBDA_ADDR), E820_RAM);
      const hole = Math.max(r.gpa, EBDA_ADDR);
      if (acpi && end >= BIOS_END) {
        add(hole, acpi.addr, E820_RESERVED);
        add(acpi.addr, acpi.addr + acpi.size, E820_ACPI);
        add(acpi.addr + acpi.size, BIOS_END, E820_RESERVED);
      } else {
        add(hole, BIOS_END, E820_RESERVED);
      }
      add(BIOS_END, end, E820_RAM);
    } else {
      add(r.gpa, end, E820_RAM);
    }
  }
  for (const r of reserved) {
    if (out.some((e) => r.addr < e.addr + e.size && e.addr < r.addr + r.size)) {
      throw new RangeError(`reserved range 0x${r.addr.toString(16)}+0x${r.size.toString(16)} overlaps RAM`);
    }
    out.push({ addr: r.addr, size: r.size, type: E820_RESERVED });
  }
  return out.sort((a, b) => a.addr - b.addr);
}
