/**
 * A 16550A UART (the PC's 8250-family COM port). Transmission is instantaneous while the console
 * drains: THR is empty again by the time the guest looks. When console output stops draining the
 * transmitter stays full (THRE/TEMT clear, no THRE interrupt) until it drains, so the guest waits
 * instead of the VMM buffering. Received bytes come from feed() into the RX FIFO.
 * The interrupt line is recomputed after every register access, so it always reflects IIR.
 */
import type { DeviceHost, PioDevice } from '../device.js';

export const COM1_PORT = 0x3f8;
export const COM1_IRQ = 4;

const RBR_THR = 0; // DLL when DLAB=1
const IER = 1; // DLM when DLAB=1
const IIR_FCR = 2;
const LCR = 3;
const MCR = 4;
const LSR = 5;
const MSR = 6;
const SCR = 7;

export const IER_RDA = 0x01;
export const IER_THRE = 0x02;
export const IER_RLS = 0x04;
export const IER_MSI = 0x08;

export const IIR_NO_INT = 0x01;
export const IIR_MSI = 0x00;
export const IIR_THRE = 0x02;
export const IIR_RDA = 0x04;
export const IIR_RLS = 0x06;
/** Data sits in the FIFO below the trigger level; real chips raise this after 4 character times. */
export const IIR_CTI = 0x0c;
export const IIR_FIFO_ENABLED = 0xc0;

export const FCR_ENABLE = 0x01;
export const FCR_CLEAR_RX = 0x02;
export const FCR_CLEAR_TX = 0x04;

export const LCR_DLAB = 0x80;

export const MCR_DTR = 0x01;
export const MCR_RTS = 0x02;
export const MCR_OUT1 = 0x04;
export const MCR_OUT2 = 0x08;
export const MCR_LOOP = 0x10;

export const LSR_DR = 0x01;
export const LSR_OE = 0x02;
export const LSR_THRE = 0x20;
export const LSR_TEMT = 0x40;

export const MSR_DCTS = 0x01;
export const MSR_DDSR = 0x02;
export const MSR_TERI = 0x04;
export const MSR_DDCD = 0x08;
export const MSR_CTS = 0x10;
export const MSR_DSR = 0x20;
export const MSR_RI = 0x40;
export const MSR_DCD = 0x80;

export const FIFO_SIZE = 16;
const TRIGGER_LEVELS = [1, 4, 8, 14];
/** With no modem attached the lines read as a connected, ready peer. */
const MSR_CONNECTED = MSR_DCD | MSR_DSR | MSR_CTS;

export interface SerialOptions {
  base?: number;
  irq?: number;
  name?: string;
}

export class Serial implements PioDevice {
  readonly name: string;
  readonly ports: ReadonlyArray<readonly [number, number]>;
  private readonly base: number;
  private readonly irq: number;

  private ier = 0;
  private lcr = 0x03; // 8N1, what firmware leaves behind
  private mcr = MCR_OUT2;
  private lsrErrors = 0;
  private msr = MSR_CONNECTED;
  private scr = 0;
  private dll = 0x0c; // 9600 baud
  private dlm = 0;
  private fifoEnabled = false;
  private triggerLevel = 1;
  private rx: number[] = [];
  /** THRE interrupt latch: set when THR empties (or IER enables it), cleared by reading IIR or writing THR. */
  private thrIntPending = false;
  /** Waiting for the console to drain, to empty THR again. */
  private txWaiting = false;
  private irqLevel = false;
  /** Bytes the guest sent to the console, and bytes from the console the FIFO took. */
  private txBytes = 0;
  private rxBytes = 0;

  constructor(private readonly host: DeviceHost, opts: SerialOptions = {}) {
    this.base = opts.base ?? COM1_PORT;
    this.irq = opts.irq ?? COM1_IRQ;
    this.name = opts.name ?? 'serial';
    this.ports = [[this.base, 8]];
  }

  /** Bytes from the outside world (the console's stdin). Returns how many fit in the RX FIFO. */
  feed(bytes: Uint8Array): number {
    if (this.mcr & MCR_LOOP) return 0; // the receiver listens to our own transmitter in loopback
    const n = Math.min(bytes.length, this.rxCapacity() - this.rx.length);
    for (let i = 0; i < n; i++) this.rx.push(bytes[i]);
    this.rxBytes += n;
    if (n < bytes.length && bytes.length > 0) this.lsrErrors |= LSR_OE;
    this.updateIrq();
    return n;
  }

  /** Free room in the RX FIFO, for callers that want to apply back-pressure instead of overrunning. */
  rxSpace(): number {
    return (this.mcr & MCR_LOOP) ? 0 : this.rxCapacity() - this.rx.length;
  }

  private rxCapacity(): number {
    return this.fifoEnabled ? FIFO_SIZE : 1;
  }

  read(port: number, size: number): number {
    void size;
    const off = port - this.base;
    let v: number;
    switch (off) {
      case RBR_THR:
        if (this.lcr & LCR_DLAB) v = this.dll;
        else v = this.rx.length > 0 ? (this.rx.shift() as number) : 0;
        break;
      case IER:
        v = this.lcr & LCR_DLAB ? this.dlm : this.ier;
        break;
      case IIR_FCR: {
        const id = this.interruptId();
        if (id === IIR_THRE) this.thrIntPending = false;
        v = id | (this.fifoEnabled ? IIR_FIFO_ENABLED : 0);
        break;
      }
      case LCR:
        v = this.lcr;
        break;
      case MCR:
        v = this.mcr;
        break;
      case LSR:
        v = (this.rx.length > 0 ? LSR_DR : 0) | (this.txEmpty() ? LSR_THRE | LSR_TEMT : 0) | this.lsrErrors;
        this.lsrErrors = 0; // error bits clear on read
        break;
      case MSR:
        v = this.msr;
        this.msr &= 0xf0; // delta bits clear on read
        break;
      case SCR:
        v = this.scr;
        break;
      default:
        v = 0;
    }
    this.updateIrq();
    return v & 0xff;
  }

  write(port: number, size: number, value: number): void {
    void size;
    const off = port - this.base;
    const v = value & 0xff;
    switch (off) {
      case RBR_THR:
        if (this.lcr & LCR_DLAB) {
          this.dll = v;
        } else {
          this.transmit(v);
        }
        break;
      case IER:
        if (this.lcr & LCR_DLAB) {
          this.dlm = v;
        } else {
          // Enabling THRE interrupts while THR is empty raises one at once (the 8250 driver relies on
          // it); while the console is not draining, once it drains.
          if (v & IER_THRE && !(this.ier & IER_THRE)) {
            if (this.txEmpty()) this.thrIntPending = true;
            else this.emptyOnDrain();
          }
          this.ier = v & 0x0f;
        }
        break;
      case IIR_FCR:
        this.writeFcr(v);
        break;
      case LCR:
        this.lcr = v;
        break;
      case MCR:
        this.writeMcr(v & 0x1f);
        break;
      case LSR:
        break; // factory-test register on real parts; writes ignored
      case MSR:
        break;
      case SCR:
        this.scr = v;
        break;
    }
    this.updateIrq();
  }

  private transmit(byte: number): void {
    if (this.mcr & MCR_LOOP) {
      if (this.rx.length < this.rxCapacity()) this.rx.push(byte);
      else this.lsrErrors |= LSR_OE;
    } else {
      this.txBytes++;
      this.host.consoleWrite(Uint8Array.of(byte));
    }
    // THR drained at once: the write cleared the THRE interrupt and the empty THR raises it again,
    // unless the console stopped draining: then THR stays full until it does.
    this.thrIntPending = this.txEmpty();
    if (!this.thrIntPending) this.emptyOnDrain();
  }

  /** THR empties (THRE interrupt) when the console drains again. */
  private emptyOnDrain(): void {
    if (this.txWaiting) return;
    this.txWaiting = true;
    this.host.onConsoleWritable(() => {
      this.txWaiting = false;
      this.thrIntPending = true;
      this.updateIrq();
    });
  }

  /** THR is empty unless the console is not draining (loopback never leaves the chip). */
  private txEmpty(): boolean {
    return (this.mcr & MCR_LOOP) !== 0 || this.host.consoleWritable();
  }

  private writeFcr(v: number): void {
    const enable = (v & FCR_ENABLE) !== 0;
    if (enable !== this.fifoEnabled) this.rx = []; // toggling FIFO mode resets both FIFOs
    this.fifoEnabled = enable;
    if (v & FCR_CLEAR_RX) this.rx = [];
    this.triggerLevel = enable ? TRIGGER_LEVELS[v >> 6] : 1;
  }

  private writeMcr(v: number): void {
    this.mcr = v;
    const loop = (v & MCR_LOOP) !== 0;
    let lines: number;
    if (loop) {
      // Loopback wires the modem outputs to the inputs: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD.
      lines =
        (v & MCR_RTS ? MSR_CTS : 0) | (v & MCR_DTR ? MSR_DSR : 0) | (v & MCR_OUT1 ? MSR_RI : 0) | (v & MCR_OUT2 ? MSR_DCD : 0);
    } else {
      lines = MSR_CONNECTED;
    }
    const old = this.msr & 0xf0;
    let delta = this.msr & 0x0f;
    if ((old ^ lines) & MSR_CTS) delta |= MSR_DCTS;
    if ((old ^ lines) & MSR_DSR) delta |= MSR_DDSR;
    if ((old ^ lines) & MSR_DCD) delta |= MSR_DDCD;
    if (old & MSR_RI && !(lines & MSR_RI)) delta |= MSR_TERI; // trailing edge only
    this.msr = lines | delta;
  }

  /** The highest-priority pending interrupt, as IIR reports it. */
  private interruptId(): number {
    if (this.ier & IER_RLS && this.lsrErrors & LSR_OE) return IIR_RLS;
    if (this.ier & IER_RDA && this.rx.length > 0) return this.rx.length >= this.triggerLevel ? IIR_RDA : IIR_CTI;
    if (this.ier & IER_THRE && this.thrIntPending) return IIR_THRE;
    if (this.ier & IER_MSI && this.msr & 0x0f) return IIR_MSI;
    return IIR_NO_INT;
  }

  private updateIrq(): void {
    const level = this.interruptId() !== IIR_NO_INT;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.host.setIrq(this.irq, level);
    }
  }

  counters(): Record<string, number> {
    return { txBytes: this.txBytes, rxBytes: this.rxBytes };
  }

  /** Current state of the interrupt line (for tests and the dispatcher). */
  get irqAsserted(): boolean {
    return this.irqLevel;
  }
}
