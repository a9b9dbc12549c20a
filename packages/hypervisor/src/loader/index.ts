/**
 * The x86 Linux loader: ELF (vmlinux or any ELF64 x86-64 executable) and bzImage, entered in 64-bit
 * mode per the boot protocol, with the zero page, command line, initrd, e820 map, identity page
 * tables, boot GDT, MP table and (when asked for) ACPI tables written into guest memory. See Documentation/arch/x86/boot.rst.
 */
import type { GuestMemory } from '../memory.js';
import { writeBootParams, minimalSetupHeader } from './boot-params.js';
import { HDR, isBzImage, parseBzImage, STARTUP_64_OFFSET, type BzImage } from './bzimage.js';
import { kernelSizeBudget } from './budget.js';
import { decompressKernelPayload } from './decompress.js';
import { buildE820 } from './e820.js';
import { checkPlacement, isElf, loadElf } from './elf.js';
import { ImageError } from './errors.js';
import { BOOT_CODE_SELECTOR, BOOT_DATA_SELECTOR, BOOT_TSS_SELECTOR, writeGdt } from './gdt.js';
import { BOOT_STACK_TOP, BIOS_END, CMDLINE_ADDR, CMDLINE_MAX, HIGH_MEMORY_START, ZERO_PAGE_ADDR } from './layout.js';
import { writeMpTable } from './mptable.js';
import { writeAcpiTables } from './acpi-tables.js';
import type { AcpiMachine } from '../arch/x86/acpi/tables.js';
import { writeIdentityPageTables } from './page-tables.js';

export { ImageError } from './errors.js';
export { GuestMemoryError } from '../memory.js';

export interface BootInfo {
  /** Guest-physical address of the 64-bit entry point (RIP). */
  entry: bigint;
  /** Guest-physical address of the zero page (RSI). */
  bootParams: number;
  /** CR3: the PML4 of the identity map covering the first 4 GiB. */
  pageTable: number;
  gdt: { base: number; limit: number };
  codeSelector: number;
  dataSelector: number;
  /** Initial RSP. */
  stack?: bigint;
  /** What was loaded, e.g. "elf", "bzImage (xz, decompressed on host)", "bzImage". */
  format: string;
  /** An empty IDT (the kernel installs its own). */
  idt: { base: number; limit: number };
  /** A present busy 64-bit TSS descriptor in the GDT, base 0 limit 0x67, for TR. */
  tssSelector: number;
  cmdlineAddr: number;
  initrd?: { addr: number; size: number };
  /** First byte above the loaded kernel (including init_size for an in-place bzImage). */
  kernelEnd: number;
  /** Where the ACPI tables are (RSDP address and the e820 ACPI range), when the machine has them. */
  acpi?: { rsdp: number; range: { addr: number; size: number } };
}

export interface LoadKernelOptions {
  kernel: Uint8Array;
  initrd?: Uint8Array;
  cmdline: string;
  cpus: number;
  /** bzImage only: decompress the payload on the host (default) rather than run the kernel's decompressor. */
  hostDecompress: boolean;
  /** performance.now() by which loading must be done (LoadDeadlineError otherwise): the run's --timeout. */
  deadline?: number;
  /** Address ranges e820 reports as reserved (device windows in the MMIO hole). */
  reserved?: ReadonlyArray<{ addr: number; size: number }>;
  /** The machine as its ACPI tables describe it; without it the guest gets the MP table alone. */
  acpi?: AcpiMachine;
}

const PAGE = 0x1000;
const alignUp = (v: number, a: number) => Math.ceil(v / a) * a;

interface LoadedKernel {
  entry: number;
  end: number;
  setupHeader: Uint8Array;
  format: string;
}

export function loadKernel(mem: GuestMemory, opts: LoadKernelOptions): BootInfo {
  const lowRam = mem.regions.find((r) => r.gpa === 0);
  if (!lowRam || lowRam.size < 2 * HIGH_MEMORY_START) {
    throw new ImageError('guest RAM is too small: the loader needs at least 2 MiB starting at address 0');
  }
  const kernel = loadImage(mem, opts.kernel, opts.hostDecompress, opts.deadline);

  writeCmdline(mem, opts.cmdline, kernel.setupHeader);
  const initrd = opts.initrd && opts.initrd.length > 0 ? placeInitrd(mem, opts.initrd, kernel, lowRam.size) : undefined;
  writeMpTable(mem, opts.cpus);
  const acpi = opts.acpi ? writeAcpiTables(mem, opts.acpi) : undefined;
  writeBootParams(mem, ZERO_PAGE_ADDR, {
    setupHeader: kernel.setupHeader,
    cmdlineAddr: CMDLINE_ADDR,
    initrd,
    e820: buildE820(mem, opts.reserved, acpi?.range),
    acpiRsdp: acpi?.image.rsdp,
  });
  const { gdt, idt } = writeGdt(mem);
  const pageTable = writeIdentityPageTables(mem);
  return {
    entry: BigInt(kernel.entry),
    bootParams: ZERO_PAGE_ADDR,
    pageTable,
    gdt,
    idt,
    codeSelector: BOOT_CODE_SELECTOR,
    dataSelector: BOOT_DATA_SELECTOR,
    tssSelector: BOOT_TSS_SELECTOR,
    stack: BigInt(BOOT_STACK_TOP),
    format: kernel.format,
    cmdlineAddr: CMDLINE_ADDR,
    initrd,
    kernelEnd: kernel.end,
    acpi: acpi && { rsdp: acpi.image.rsdp, range: acpi.range },
  };
}

function loadImage(mem: GuestMemory, image: Uint8Array, hostDecompress: boolean, deadline?: number): LoadedKernel {
  if (!(image instanceof Uint8Array) || image.length === 0) throw new ImageError('kernel image is empty');
  if (isElf(image)) {
    const { entry, end } = loadElf(mem, image);
    return { entry, end, setupHeader: minimalSetupHeader(), format: 'elf' };
  }
  if (!isBzImage(image)) {
    throw new ImageError('unrecognised kernel image: neither ELF (no \\x7fELF magic) nor bzImage (no "HdrS" at 0x202)');
  }
  const bz = parseBzImage(image);
  return hostDecompress ? loadBzImageDecompressed(mem, bz, deadline) : loadBzImageInPlace(mem, bz);
}

function loadBzImageDecompressed(mem: GuestMemory, bz: BzImage, deadline?: number): LoadedKernel {
  // Only an ELF comes back (the decoders refuse anything else on its first bytes).
  const { data, compression } = decompressKernelPayload(bz.payload, mem.size, { plausible: kernelSizeBudget(bz.initSize), deadline });
  const { entry, end, image } = loadElf(mem, data);
  // Keep the initrd clear of everything the kernel was told it may use (init_size from its load address).
  const lowest = Math.min(...image.segments.map((s) => s.paddr));
  const label = compression === 'none' ? 'uncompressed' : compression;
  return { entry, end: Math.max(end, lowest + bz.initSize), setupHeader: bz.setupHeader, format: `bzImage (${label}, decompressed on host)` };
}

function loadBzImageInPlace(mem: GuestMemory, bz: BzImage): LoadedKernel {
  const footprint = Math.max(bz.kernel.length, bz.initSize);
  const candidates = bz.prefAddress >= HIGH_MEMORY_START && bz.prefAddress !== HIGH_MEMORY_START ? [bz.prefAddress, HIGH_MEMORY_START] : [HIGH_MEMORY_START];
  // A relocatable kernel may go lower than pref_address when RAM is short; others must sit there.
  const usable = bz.relocatable ? candidates : [candidates[0]];
  const load = usable.find((a) => mem.contains(a, footprint));
  if (load === undefined) {
    if (footprint > mem.size) throw new ImageError(`kernel is larger than RAM: bzImage needs ${footprint} bytes (init_size), guest has ${mem.size}`);
    throw new ImageError(`bzImage does not fit in RAM at 0x${usable[0].toString(16)} (needs ${footprint} bytes)`);
  }
  checkPlacement(mem, load, footprint, 'protected-mode kernel');
  mem.write(load, bz.kernel);
  const header = bz.setupHeader.slice();
  new DataView(header.buffer).setUint32(HDR.code32Start - HDR.setupSects, load, true);
  return { entry: load + STARTUP_64_OFFSET, end: load + footprint, setupHeader: header, format: 'bzImage' };
}

function headerU32(header: Uint8Array, off: number): number {
  const rel = off - HDR.setupSects;
  if (rel + 4 > header.length) return 0;
  return new DataView(header.buffer, header.byteOffset, header.length).getUint32(rel, true);
}

function writeCmdline(mem: GuestMemory, cmdline: string, header: Uint8Array): number {
  const bytes = new TextEncoder().encode(cmdline);
  if (bytes.includes(0)) throw new ImageError('kernel command line contains a NUL byte');
  const version = header.length > HDR.version + 2 - HDR.setupSects ? header[HDR.version - HDR.setupSects] | (header[HDR.version + 1 - HDR.setupSects] << 8) : 0;
  // cmdline_size exists from protocol 2.06; older kernels take 255 bytes.
  const declared = version >= 0x0206 ? headerU32(header, HDR.cmdlineSize) : 255;
  const limit = Math.min(declared, CMDLINE_MAX - 1);
  if (bytes.length > limit) throw new ImageError(`kernel command line is ${bytes.length} bytes; this kernel accepts at most ${limit}`);
  mem.write(CMDLINE_ADDR, bytes);
  mem.writeU8(CMDLINE_ADDR + bytes.length, 0);
  return bytes.length;
}

/** As high as allowed (below initrd_addr_max and the top of low RAM), page aligned, above the kernel. */
function placeInitrd(mem: GuestMemory, initrd: Uint8Array, kernel: LoadedKernel, lowRamEnd: number): { addr: number; size: number } {
  const addrMax = headerU32(kernel.setupHeader, HDR.initrdAddrMax) || 0x37ffffff;
  const top = Math.min(addrMax + 1, lowRamEnd);
  const addr = Math.floor((top - initrd.length) / PAGE) * PAGE;
  const floor = alignUp(Math.max(kernel.end, BIOS_END), PAGE);
  if (addr < floor) {
    throw new ImageError(`initrd of ${initrd.length} bytes does not fit between the kernel end 0x${floor.toString(16)} and 0x${top.toString(16)}`);
  }
  mem.write(addr, initrd);
  return { addr, size: initrd.length };
}
