/**
 * MC146818 CMOS RTC + NVRAM behind index port 0x70 / data port 0x71. Time registers show the host
 * clock (UTC) plus whatever offset the guest set by writing them, encoded per status register B
 * (BCD or binary, 12- or 24-hour). NVRAM carries the BIOS memory-size fields guests still read.
 */
import type { DeviceHost, PioDevice } from '../device.js';

export const CMOS_INDEX_PORT = 0x70;
export const CMOS_DATA_PORT = 0x71;
export const RTC_IRQ = 8;

export const REG_SECONDS = 0x00;
export const REG_MINUTES = 0x02;
export const REG_HOURS = 0x04;
export const REG_WEEKDAY = 0x06;
export const REG_DAY = 0x07;
export const REG_MONTH = 0x08;
export const REG_YEAR = 0x09;
export const REG_STATUS_A = 0x0a;
export const REG_STATUS_B = 0x0b;
export const REG_STATUS_C = 0x0c;
export const REG_STATUS_D = 0x0d;
export const REG_BASE_MEM_LO = 0x15;
export const REG_EXT_MEM_LO = 0x17;
export const REG_EXT_MEM2_LO = 0x30;
export const REG_MEM_ABOVE_16M_LO = 0x34;
export const REG_CENTURY = 0x32;
/** QEMU's extension, read by SeaBIOS and others: RAM above 4 GiB in 64 KiB units, 3 bytes. */
export const REG_MEM_ABOVE_4G = 0x5b;

export const NMI_DISABLE = 0x80;
/** Status A: 32.768 kHz time base, 1024 Hz periodic rate; UIP (bit 7) never set, reads are atomic. */
export const STATUS_A_DEFAULT = 0x26;
export const STATUS_B_SET = 0x80;
export const STATUS_B_DM_BINARY = 0x04;
export const STATUS_B_24H = 0x02;
/** Status D: the battery is good (valid RAM and time). */
export const STATUS_D_VRT = 0x80;

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export interface CmosOptions {
  /** Guest RAM in bytes, for the memory-size fields. */
  memBytes: number;
  /** The host clock (ms since the epoch); tests pass a fixed one. */
  clock?: () => number;
}

const toBcd = (v: number) => ((Math.floor(v / 10) % 10) << 4) | v % 10;
const fromBcd = (v: number) => (v >> 4) * 10 + (v & 0x0f);

export class Cmos implements PioDevice {
  readonly name = 'cmos';
  readonly ports: ReadonlyArray<readonly [number, number]> = [[CMOS_INDEX_PORT, 2]];
  private readonly ram = new Uint8Array(128);
  private index = 0;
  private nmiDisabled = false;
  /** Guest-set time minus host time, in ms. */
  private offsetMs = 0;
  private readonly clock: () => number;

  constructor(private readonly host: DeviceHost, opts: CmosOptions) {
    void this.host;
    this.clock = opts.clock ?? Date.now;
    this.ram[REG_STATUS_A] = STATUS_A_DEFAULT;
    this.ram[REG_STATUS_B] = STATUS_B_24H;
    this.ram[REG_STATUS_D] = STATUS_D_VRT;
    this.setMemorySize(opts.memBytes);
  }

  get nmiMasked(): boolean {
    return this.nmiDisabled;
  }

  private setMemorySize(memBytes: number): void {
    const low = Math.min(memBytes, 3 * GiB);
    const high = Math.max(0, memBytes - 3 * GiB);
    const u16 = (reg: number, v: number) => {
      const c = Math.max(0, Math.min(0xffff, Math.floor(v)));
      this.ram[reg] = c & 0xff;
      this.ram[reg + 1] = c >> 8;
    };
    u16(REG_BASE_MEM_LO, 640);
    u16(REG_EXT_MEM_LO, (low - MiB) / KiB);
    u16(REG_EXT_MEM2_LO, (low - MiB) / KiB);
    u16(REG_MEM_ABOVE_16M_LO, (low - 16 * MiB) / (64 * KiB));
    const above4g = Math.min(0xffffff, Math.floor(high / (64 * KiB)));
    this.ram[REG_MEM_ABOVE_4G] = above4g & 0xff;
    this.ram[REG_MEM_ABOVE_4G + 1] = (above4g >> 8) & 0xff;
    this.ram[REG_MEM_ABOVE_4G + 2] = (above4g >> 16) & 0xff;
  }

  read(port: number, size: number): number {
    void size;
    if (port === CMOS_INDEX_PORT) return this.index | (this.nmiDisabled ? NMI_DISABLE : 0);
    const reg = this.index;
    if (reg <= REG_YEAR || reg === REG_CENTURY) {
      const t = this.timeFields();
      if (reg in t) return t[reg];
    }
    if (reg === REG_STATUS_C) {
      const v = this.ram[REG_STATUS_C];
      this.ram[REG_STATUS_C] = 0; // interrupt flags clear on read
      return v;
    }
    return this.ram[reg];
  }

  write(port: number, size: number, value: number): void {
    void size;
    const v = value & 0xff;
    if (port === CMOS_INDEX_PORT) {
      this.index = v & 0x7f;
      this.nmiDisabled = (v & NMI_DISABLE) !== 0;
      return;
    }
    const reg = this.index;
    switch (reg) {
      case REG_SECONDS:
      case REG_MINUTES:
      case REG_HOURS:
      case REG_WEEKDAY:
      case REG_DAY:
      case REG_MONTH:
      case REG_YEAR:
      case REG_CENTURY:
        this.setTimeField(reg, v);
        return;
      case REG_STATUS_A:
        this.ram[reg] = (v & 0x7f) | 0; // UIP is read-only
        return;
      case REG_STATUS_C:
      case REG_STATUS_D:
        return; // read-only
      default:
        this.ram[reg] = v;
    }
  }

  private encode(v: number): number {
    return this.ram[REG_STATUS_B] & STATUS_B_DM_BINARY ? v : toBcd(v);
  }

  private decode(v: number): number {
    return this.ram[REG_STATUS_B] & STATUS_B_DM_BINARY ? v : fromBcd(v);
  }

  private encodeHour(h: number): number {
    if (this.ram[REG_STATUS_B] & STATUS_B_24H) return this.encode(h);
    return this.encode(h % 12 === 0 ? 12 : h % 12) | (h >= 12 ? 0x80 : 0);
  }

  private decodeHour(v: number): number {
    if (this.ram[REG_STATUS_B] & STATUS_B_24H) return this.decode(v);
    const h = this.decode(v & 0x7f) % 12;
    return v & 0x80 ? h + 12 : h;
  }

  private now(): Date {
    return new Date(this.clock() + this.offsetMs);
  }

  private timeFields(): Record<number, number> {
    const d = this.now();
    const year = d.getUTCFullYear();
    return {
      [REG_SECONDS]: this.encode(d.getUTCSeconds()),
      [REG_MINUTES]: this.encode(d.getUTCMinutes()),
      [REG_HOURS]: this.encodeHour(d.getUTCHours()),
      [REG_WEEKDAY]: this.encode(d.getUTCDay() + 1),
      [REG_DAY]: this.encode(d.getUTCDate()),
      [REG_MONTH]: this.encode(d.getUTCMonth() + 1),
      [REG_YEAR]: this.encode(year % 100),
      [REG_CENTURY]: this.encode(Math.floor(year / 100)),
    };
  }

  /** A guest setting the clock: rebuild the date with one field changed and keep the difference. */
  private setTimeField(reg: number, raw: number): void {
    const d = this.now();
    const f = {
      year: d.getUTCFullYear(),
      month: d.getUTCMonth(),
      day: d.getUTCDate(),
      hour: d.getUTCHours(),
      min: d.getUTCMinutes(),
      sec: d.getUTCSeconds(),
    };
    const v = reg === REG_HOURS ? this.decodeHour(raw) : this.decode(raw);
    switch (reg) {
      case REG_SECONDS: f.sec = Math.min(v, 59); break;
      case REG_MINUTES: f.min = Math.min(v, 59); break;
      case REG_HOURS: f.hour = Math.min(v, 23); break;
      case REG_WEEKDAY: return; // derived from the date
      case REG_DAY: f.day = Math.max(1, Math.min(v, 31)); break;
      case REG_MONTH: f.month = Math.max(0, Math.min(v, 12) - 1); break;
      case REG_YEAR: f.year = Math.floor(f.year / 100) * 100 + (v % 100); break;
      case REG_CENTURY: f.year = (v % 100) * 100 + (f.year % 100); break;
    }
    const target = Date.UTC(f.year, f.month, f.day, f.hour, f.min, f.sec, d.getUTCMilliseconds());
    this.offsetMs = target - this.clock();
  }
}
