/**
 * A vCPU's registers at the kernel entry point: 64-bit long mode with the loader's page tables
 * and GDT (Linux x86 boot protocol, 64-bit entry). Control-register and descriptor bits are the
 * x86 architecture's; the kvm_regs/kvm_sregs layouts come from the spec.
 */
import type { LoadedAbi, StructValue } from '../../kvm/abi.js';
import type { BootInfo } from '../../loader/index.js';

/**
 * What the loader leaves for the boot vCPU (its BootInfo, or a test's hand-made state). Without a
 * `tssSelector` TR points at no descriptor; without an `idt` IDTR is empty.
 */
export type BootState = Pick<BootInfo, 'entry' | 'bootParams' | 'pageTable' | 'gdt' | 'codeSelector' | 'dataSelector' | 'stack'> &
  Partial<Pick<BootInfo, 'tssSelector' | 'idt'>>;

const CR0_PE = 1n;
const CR0_ET = 1n << 4n;
const CR0_PG = 1n << 31n;
const CR4_PAE = 1n << 5n;
const EFER_LME = 1n << 8n;
const EFER_LMA = 1n << 10n;
const RFLAGS_RESERVED = 2n; // bit 1 always reads as one

const SEG_CODE_EXEC_READ_ACCESSED = 0xb;
const SEG_DATA_READ_WRITE_ACCESSED = 0x3;
const SEG_TSS_BUSY_64 = 0xb;
const SEG_LDT = 0x2;

interface Segment {
  base: bigint;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable: number;
}

function flat(selector: number, type: number, code: boolean): Segment {
  return { base: 0n, limit: 0xffff_ffff, selector, type, present: 1, dpl: 0, db: code ? 0 : 1, s: 1, l: code ? 1 : 0, g: 1, avl: 0, unusable: 0 };
}

/** General registers for the boot vCPU: RIP at the entry, RSI at the zero page. */
export function bootRegs(boot: BootState): StructValue {
  return { rip: boot.entry, rsi: BigInt(boot.bootParams), rsp: boot.stack ?? 0n, rflags: RFLAGS_RESERVED };
}

/** Special registers: paging on with the loader's tables, flat 64-bit code, flat data. */
export function bootSregs(current: StructValue, boot: BootState): StructValue {
  const data = flat(boot.dataSelector, SEG_DATA_READ_WRITE_ACCESSED, false);
  const cr0 = BigInt(current.cr0 as bigint) & ~((1n << 30n) | (1n << 29n)); // caches on: clear CD and NW
  return {
    ...current,
    cs: flat(boot.codeSelector, SEG_CODE_EXEC_READ_ACCESSED, true),
    ds: data,
    es: data,
    fs: data,
    gs: data,
    ss: data,
    tr: { base: 0n, limit: boot.tssSelector ? 0x67 : 0xffff, selector: boot.tssSelector ?? 0, type: SEG_TSS_BUSY_64, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0 },
    ldt: { base: 0n, limit: 0xffff, selector: 0, type: SEG_LDT, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 1 },
    gdt: { base: BigInt(boot.gdt.base), limit: boot.gdt.limit },
    idt: { base: BigInt(boot.idt?.base ?? 0), limit: boot.idt?.limit ?? 0 },
    cr0: cr0 | CR0_PE | CR0_ET | CR0_PG,
    cr3: BigInt(boot.pageTable),
    cr4: BigInt(current.cr4 as bigint) | CR4_PAE,
    efer: BigInt(current.efer as bigint) | EFER_LME | EFER_LMA,
  };
}

/** x87 and SSE control words at their reset defaults (all exceptions masked). */
export function bootFpu(abi: LoadedAbi): Uint8Array {
  return abi.codec('kvm_fpu').toBytes({ fcw: 0x37f, mxcsr: 0x1f80 });
}
