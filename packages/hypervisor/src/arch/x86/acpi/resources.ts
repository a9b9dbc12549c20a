/**
 * ACPI resource descriptors (ACPI 6.5 §6.4): the byte lists inside a ResourceTemplate, which
 * `_CRS` returns as an AML Buffer closed by an End Tag whose checksum makes the bytes sum to 0.
 */
import { buffer, concat, littleEndian } from './aml.js';

/** §6.4.2 small item tags: (type << 3) | length. */
const SMALL_IRQ_NO_FLAGS = (0x04 << 3) | 2;
const SMALL_IO = (0x08 << 3) | 7;
const SMALL_END_TAG = (0x0f << 3) | 1;
/** §6.4.3 large item tags: 0x80 | type. */
const LARGE_MEMORY32_FIXED = 0x86;
const LARGE_DWORD_ADDRESS = 0x87;
const LARGE_WORD_ADDRESS = 0x88;
const LARGE_EXTENDED_INTERRUPT = 0x89;
const LARGE_QWORD_ADDRESS = 0x8a;

/** §6.4.3.5 address space resource types. */
export const RESOURCE_MEMORY = 0;
export const RESOURCE_IO = 1;
export const RESOURCE_BUS = 2;
/** General flags: _MAF and _MIF (max and min address fixed), positive decode, produced by the device (a bridge's window). */
const ADDRESS_MIN_MAX_FIXED_PRODUCER = 0x0c;
/** Type-specific flags: memory read-write non-cacheable; I/O over the entire range (ISA and non-ISA). */
const MEMORY_READ_WRITE = 0x01;
const IO_ENTIRE_RANGE = 0x03;
/** §6.4.3.6 Extended Interrupt flags: bit 0 consumer, bit 1 edge, bit 2 active low, bit 3 shared. */
const EXT_INT_CONSUMER = 0x01;
const EXT_INT_EDGE = 0x02;
const EXT_INT_ACTIVE_LOW = 0x04;


/** §6.4.2.5 I/O port descriptor, 16-bit decode: IO (Decode16, min, max, alignment, length). */
export function io(min: number, max: number, alignment: number, length: number): Uint8Array {
  return Uint8Array.of(SMALL_IO, 0x01, ...littleEndian(min, 2), ...littleEndian(max, 2), alignment, length);
}

/** §6.4.2.1 IRQ descriptor without flags (edge, active high, exclusive): IRQNoFlags () {irq}. */
export function irqNoFlags(irq: number): Uint8Array {
  if (!Number.isInteger(irq) || irq < 0 || irq > 15) throw new RangeError(`IRQNoFlags takes ISA IRQ 0-15, got ${irq}`);
  return Uint8Array.of(SMALL_IRQ_NO_FLAGS, ...littleEndian(1 << irq, 2));
}

/** §6.4.3.4 32-bit fixed memory range, read-write: Memory32Fixed (ReadWrite, base, length). */
export function memory32Fixed(base: number, length: number): Uint8Array {
  return Uint8Array.of(LARGE_MEMORY32_FIXED, ...littleEndian(9, 2), 0x01, ...littleEndian(base, 4), ...littleEndian(length, 4));
}

/** §6.4.3.6 Extended Interrupt descriptor, consumer, exclusive, one GSI: Interrupt (ResourceConsumer, Edge|Level, ActiveHigh|ActiveLow, Exclusive) {gsi}. */
export function extendedInterrupt(gsi: number, opts: { edge: boolean; activeLow: boolean }): Uint8Array {
  const flags = EXT_INT_CONSUMER | (opts.edge ? EXT_INT_EDGE : 0) | (opts.activeLow ? EXT_INT_ACTIVE_LOW : 0);
  return Uint8Array.of(LARGE_EXTENDED_INTERRUPT, ...littleEndian(2 + 4, 2), flags, 1, ...littleEndian(gsi, 4));
}

interface AddressSpace {
  type: typeof RESOURCE_MEMORY | typeof RESOURCE_IO | typeof RESOURCE_BUS;
  min: number | bigint;
  max: number | bigint;
}

function typeFlags(type: AddressSpace['type']): number {
  return type === RESOURCE_MEMORY ? MEMORY_READ_WRITE : type === RESOURCE_IO ? IO_ENTIRE_RANGE : 0;
}

/** §6.4.3.5.1-3 address space descriptors of `width` bytes per field: granularity, min, max, translation 0, length. */
function addressSpace(tag: number, width: 2 | 4 | 8, a: AddressSpace): Uint8Array {
  const min = BigInt(a.min);
  const max = BigInt(a.max);
  if (max < min || max >= 1n << BigInt(8 * width)) throw new RangeError(`address range ${min}-${max} does not fit ${8 * width} bits`);
  const fields = [0n, min, max, 0n, max - min + 1n].flatMap((v) => littleEndian(v, width));
  return Uint8Array.of(tag, ...littleEndian(3 + fields.length, 2), a.type, ADDRESS_MIN_MAX_FIXED_PRODUCER, typeFlags(a.type), ...fields);
}

/** WordBusNumber / WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, …). */
export function wordAddress(type: AddressSpace['type'], min: number, max: number): Uint8Array {
  return addressSpace(LARGE_WORD_ADDRESS, 2, { type, min, max });
}

/** DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite, …). */
export function dwordMemory(min: number, max: number): Uint8Array {
  return addressSpace(LARGE_DWORD_ADDRESS, 4, { type: RESOURCE_MEMORY, min, max });
}

/** QWordMemory, the same for windows above 4 GiB. */
export function qwordMemory(min: bigint, max: bigint): Uint8Array {
  return addressSpace(LARGE_QWORD_ADDRESS, 8, { type: RESOURCE_MEMORY, min, max });
}

/** ResourceTemplate () {…}: the descriptors, an End Tag (§6.4.2.9) with the checksum, as an AML Buffer. */
export function resourceTemplate(descriptors: readonly Uint8Array[]): Uint8Array {
  const body = concat([...descriptors, [SMALL_END_TAG]]);
  const sum = body.reduce((s, b) => (s + b) & 0xff, 0);
  return buffer(concat([body, [(0x100 - sum) & 0xff]]));
}
