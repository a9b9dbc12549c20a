/** Puts the ACPI tables in the BIOS area, where a guest's scan for the RSDP finds them. */
import { buildAcpiTables, type AcpiImage, type AcpiMachine } from '../arch/x86/acpi/tables.js';
import type { GuestMemory } from '../memory.js';
import { ImageError } from './errors.js';
import { ACPI_ADDR, BIOS_END } from './layout.js';

const PAGE = 0x1000;

export interface PlacedAcpi {
  image: AcpiImage;
  /** What e820 reports as ACPI data: the tables, rounded up to whole pages. */
  range: { addr: number; size: number };
}

export function writeAcpiTables(mem: GuestMemory, machine: AcpiMachine, base = ACPI_ADDR): PlacedAcpi {
  const image = buildAcpiTables(machine, base);
  const size = Math.ceil(image.bytes.length / PAGE) * PAGE;
  if (base + size > BIOS_END) throw new ImageError(`the ACPI tables (${image.bytes.length} bytes) do not fit between 0x${base.toString(16)} and 1 MiB`);
  if (!mem.contains(base, size)) throw new ImageError(`the ACPI tables at 0x${base.toString(16)} are outside guest RAM`);
  mem.write(base, image.bytes);
  return { image, range: { addr: base, size } };
}
