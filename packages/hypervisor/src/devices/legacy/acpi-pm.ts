/**
 * The ACPI fixed hardware the FADT describes (ACPI 6.5 §4.8): the PM1a event block (PM1_STS,
 * write-1-to-clear, and PM1_EN), the PM1a control block (PM1_CNT, SCI_EN always set: there is no
 * legacy mode) and the reset register. The SCI (IRQ 9, level) is up while an enabled status bit
 * is set; the fixed-feature power button is the one event source. Writing SLP_EN with the SLP_TYP of \_S5_ ends the run as
 * "poweroff", writing RESET_VALUE to the reset register ends it as "reboot" (status 0 both, as the
 * i8042's reset line does). Anything else a guest writes changes only the registers' writable bits,
 * and a write that means nothing is logged once per kind.
 */
import {
  PM1_CNT_BM_RLD,
  PM1_CNT_LEN,
  PM1_CNT_SCI_EN,
  PM1_CNT_SLP_EN,
  PM1_CNT_SLP_TYP_MASK,
  PM1_CNT_SLP_TYP_SHIFT,
  PM1_EVT_LEN,
  PM1_GBL,
  PM1_PCIEXP_WAKE,
  PM1_PWRBTN,
  PM1_RTC,
  PM1_SLPBTN,
  PM1_TMR,
  PM1A_CNT_PORT,
  PM1A_EVT_PORT,
  RESET_PORT,
  RESET_VALUE,
  SCI_IRQ,
  SLP_TYP_S5,
} from '../../arch/x86/acpi/hardware.js';
import { hex } from '../../hex.js';
import type { DeviceHost, PioDevice } from '../device.js';

/** PM1_EN bits a guest may set: the events §4.8.3.1 defines (none of which this machine raises yet). */
const PM1_EN_WRITABLE = PM1_TMR | PM1_GBL | PM1_PWRBTN | PM1_SLPBTN | PM1_RTC | PM1_PCIEXP_WAKE;
/** PM1_CNT bits that read back; SLP_EN and GBL_RLS are write-only, SCI_EN reads 1. */
const PM1_CNT_KEPT = PM1_CNT_BM_RLD | PM1_CNT_SLP_TYP_MASK;

type Cause = 'sleep-type' | 'reset-value' | 'width';

export class AcpiPm implements PioDevice {
  readonly name = 'acpi-pm';
  readonly ports: ReadonlyArray<readonly [number, number]> = [
    [PM1A_EVT_PORT, PM1_EVT_LEN],
    [PM1A_CNT_PORT, PM1_CNT_LEN],
    [RESET_PORT, 1],
  ];
  private status = 0;
  private enable = 0;
  private control = PM1_CNT_SCI_EN;
  private sci = false;
  private readonly logged = new Set<Cause>();
  private readonly count = { sleeps: 0, resets: 0, ignored: 0 };

  constructor(private readonly host: DeviceHost) {}

  read(port: number, size: number): number {
    let value = 0;
    for (let i = 0; i < size; i++) value += this.readByte(port + i) * 2 ** (8 * i);
    return value;
  }

  write(port: number, size: number, value: number): void {
    if (size !== 1 && size !== 2 && size !== 4) return this.ignore('width', `${size}-byte write at ${hex(port, 4)}`);
    if (port === RESET_PORT) {
      if (size === 1 && (value & 0xff) === RESET_VALUE) {
        this.count.resets++;
        return this.host.requestExit(0, 'reboot');
      }
      return this.ignore('reset-value', `write of ${hex(value, size * 2)} (${size} bytes) to the reset register, which resets on ${hex(RESET_VALUE, 2)}`);
    }
    // An access at a block's start covers its registers in order; bytes past the block go nowhere.
    const evtEnd = PM1A_EVT_PORT + PM1_EVT_LEN;
    const cntEnd = PM1A_CNT_PORT + PM1_CNT_LEN;
    const bytes = Array.from({ length: size }, (_, i) => ({ port: port + i, byte: Math.floor(value / 2 ** (8 * i)) & 0xff }));
    const inBlock = (lo: number, hi: number) => bytes.filter((b) => b.port >= lo && b.port < hi);
    const sts = this.merge(inBlock(PM1A_EVT_PORT, PM1A_EVT_PORT + 2), PM1A_EVT_PORT);
    const en = this.merge(inBlock(PM1A_EVT_PORT + 2, evtEnd), PM1A_EVT_PORT + 2);
    const cnt = this.merge(inBlock(PM1A_CNT_PORT, cntEnd), PM1A_CNT_PORT);
    if (sts) this.status &= ~(sts.value & sts.mask);
    if (en) this.enable = ((this.enable & ~en.mask) | (en.value & en.mask)) & PM1_EN_WRITABLE;
    this.updateSci();
    if (cnt) this.writeControl(cnt.value, cnt.mask);
  }

  /** A press of the fixed-feature power button: PWRBTN_STS, and the SCI if the guest enabled it. */
  pressPowerButton(): void {
    this.status |= PM1_PWRBTN;
    this.updateSci();
  }

  private updateSci(): void {
    const level = (this.status & this.enable) !== 0;
    if (level !== this.sci) this.host.setIrq(SCI_IRQ, (this.sci = level));
  }

  counters(): Record<string, number> {
    return { ...this.count };
  }

  /** The bytes written to a 16-bit register at `base`: their value and which of its bits they cover. */
  private merge(bytes: Array<{ port: number; byte: number }>, base: number): { value: number; mask: number } | undefined {
    if (bytes.length === 0) return undefined;
    let value = 0;
    let mask = 0;
    for (const b of bytes) {
      value |= b.byte << (8 * (b.port - base));
      mask |= 0xff << (8 * (b.port - base));
    }
    return { value, mask };
  }

  private writeControl(value: number, mask: number): void {
    this.control = PM1_CNT_SCI_EN | (((this.control & ~mask) | (value & mask)) & PM1_CNT_KEPT);
    if (!(mask & PM1_CNT_SLP_EN) || !(value & PM1_CNT_SLP_EN)) return;
    const type = (this.control & PM1_CNT_SLP_TYP_MASK) >> PM1_CNT_SLP_TYP_SHIFT;
    if (type === SLP_TYP_S5) {
      this.count.sleeps++;
      return this.host.requestExit(0, 'poweroff');
    }
    this.ignore('sleep-type', `SLP_EN with SLP_TYP ${type}: only S5 (SLP_TYP ${SLP_TYP_S5}) is a sleep state of this machine`);
  }

  private readByte(port: number): number {
    const at = (reg: number, base: number) => (reg >> (8 * (port - base))) & 0xff;
    if (port >= PM1A_EVT_PORT && port < PM1A_EVT_PORT + 2) return at(this.status, PM1A_EVT_PORT);
    if (port >= PM1A_EVT_PORT + 2 && port < PM1A_EVT_PORT + PM1_EVT_LEN) return at(this.enable, PM1A_EVT_PORT + 2);
    if (port >= PM1A_CNT_PORT && port < PM1A_CNT_PORT + PM1_CNT_LEN) return at(this.control, PM1A_CNT_PORT);
    return 0; // the reset register reads 0, as does anything past a block
  }

  private ignore(cause: Cause, what: string): void {
    this.count.ignored++;
    if (this.logged.has(cause)) return;
    this.logged.add(cause);
    this.host.log(`acpi-pm: ${what} (ignored; further ones of this kind counted, not logged)`);
  }
}
