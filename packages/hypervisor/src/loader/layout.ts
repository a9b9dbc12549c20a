/**
 * Where the loader puts the boot structures in low guest memory (the same neighbourhood Firecracker
 * and kvmtool use): all below 640 KiB, clear of the kernel (at or above 1 MiB) and of the
 * EBDA/BIOS area, which the e820 map reports as reserved and where the MP table lives.
 */
export const GDT_ADDR = 0x500;
/** null, unused, code, data, and the 16-byte long-mode TSS descriptor (gdt.ts BOOT_GDT). */
export const GDT_ENTRIES = 6;
/** Right after the GDT: one empty 8-byte IDT (the kernel installs its own). */
export const IDT_ADDR = GDT_ADDR + GDT_ENTRIES * 8;
export const IDT_BYTES = 8;
export const ZERO_PAGE_ADDR = 0x7000;
/** Initial stack pointer: top of the page below the page tables, 16-byte aligned. */
export const BOOT_STACK_TOP = 0x8ff0;
export const PML4_ADDR = 0x9000;
export const PDPT_ADDR = 0xa000;
/** Four page directories, one per GiB of the identity map. */
export const PD_ADDR = 0xb000;
export const IDENTITY_MAP_GIB = 4;
export const CMDLINE_ADDR = 0x20000;
export const CMDLINE_MAX = 0x10000;
/** Start of the last KiB of 640 KiB of base memory: EBDA, then the BIOS area up to 1 MiB. */
export const EBDA_ADDR = 0x9fc00;
export const MPTABLE_ADDR = EBDA_ADDR;
export const BIOS_END = 0x100000;
/** The ACPI tables, RSDP first: the start of the BIOS area Linux scans for "RSD PTR " (0xE0000-0xFFFFF). */
export const ACPI_ADDR = 0xe0000;
/** Lowest address a kernel may be loaded at. */
export const HIGH_MEMORY_START = 0x100000;

/** Everything the loader writes below 1 MiB, which the kernel image must not overlap: [start, end). */
export const BOOT_STRUCTURES: ReadonlyArray<{ name: string; start: number; end: number }> = [
  { name: 'boot GDT', start: GDT_ADDR, end: GDT_ADDR + GDT_ENTRIES * 8 },
  { name: 'boot IDT', start: IDT_ADDR, end: IDT_ADDR + IDT_BYTES },
  { name: 'zero page', start: ZERO_PAGE_ADDR, end: ZERO_PAGE_ADDR + 0x1000 },
  { name: 'boot stack', start: BOOT_STACK_TOP - 0x1000 + 0x10, end: BOOT_STACK_TOP + 0x10 },
  { name: 'page tables', start: PML4_ADDR, end: PD_ADDR + IDENTITY_MAP_GIB * 0x1000 },
  { name: 'command line', start: CMDLINE_ADDR, end: CMDLINE_ADDR + CMDLINE_MAX },
  { name: 'EBDA/BIOS area (MP table, ACPI tables)', start: EBDA_ADDR, end: BIOS_END },
];
