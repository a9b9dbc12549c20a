/**
 * The i8042 keyboard controller: no keyboard or mouse behind it, but enough of the controller for
 * Linux's i8042 probe (controller self-test, command byte, port tests) and for its reboot path
 * (command 0xFE pulses the CPU reset line), which is how `reboot` ends a guest without ACPI.
 */
import type { DeviceHost, PioDevice } from '../device.js';

export const I8042_DATA_PORT = 0x60;
export const I8042_COMMAND_PORT = 0x64;
export const KBD_IRQ = 1;
export const AUX_IRQ = 12;

export const STATUS_OBF = 0x01;
export const STATUS_IBF = 0x02;
export const STATUS_SYS = 0x04;
/** Last write went to the command port. */
export const STATUS_CMD = 0x08;
export const STATUS_UNLOCKED = 0x10;
/** The byte in the output buffer came from the aux (mouse) port. */
export const STATUS_AUX = 0x20;

export const CMD_READ_CTR = 0x20;
export const CMD_WRITE_CTR = 0x60;
export const CMD_AUX_DISABLE = 0xa7;
export const CMD_AUX_ENABLE = 0xa8;
export const CMD_AUX_TEST = 0xa9;
export const CMD_SELF_TEST = 0xaa;
export const CMD_KBD_TEST = 0xab;
export const CMD_KBD_DISABLE = 0xad;
export const CMD_KBD_ENABLE = 0xae;
export const CMD_READ_OUTPUT_PORT = 0xd0;
export const CMD_WRITE_OUTPUT_PORT = 0xd1;
export const CMD_WRITE_KBD_OUTBUF = 0xd2;
export const CMD_WRITE_AUX_OUTBUF = 0xd3;
export const CMD_WRITE_AUX = 0xd4;
export const CMD_PULSE_RESET = 0xfe;

export const CTR_KBD_INT = 0x01;
export const CTR_AUX_INT = 0x02;
export const CTR_SYS = 0x04;
export const CTR_KBD_DISABLE = 0x10;
export const CTR_AUX_DISABLE = 0x20;
export const CTR_XLATE = 0x40;

const SELF_TEST_OK = 0x55;
const PORT_TEST_OK = 0x00;
const KBD_ACK = 0xfa;
const KBD_RESET_OK = 0xaa;
/** Output-port bit 0 low holds the CPU in reset; bit 1 is the A20 gate. */
const OUTPORT_RESET_N = 0x01;
const OUTPORT_A20 = 0x02;

export class I8042 implements PioDevice {
  readonly name = 'i8042';
  readonly ports: ReadonlyArray<readonly [number, number]> = [
    [I8042_DATA_PORT, 1],
    [I8042_COMMAND_PORT, 1],
  ];
  private ctr = CTR_KBD_INT | CTR_SYS | CTR_XLATE;
  private outputPort = OUTPORT_RESET_N | OUTPORT_A20;
  /** Bytes waiting for the guest at 0x60, each tagged with the port it came from. */
  private queue: Array<{ byte: number; aux: boolean }> = [];
  /** A command that takes a parameter byte through the data port. */
  private pending = 0;
  private lastWasCommand = false;
  private kbdIrq = false;
  private auxIrq = false;

  constructor(private readonly host: DeviceHost) {}

  read(port: number, size: number): number {
    void size;
    if (port === I8042_COMMAND_PORT) return this.status();
    const head = this.queue.shift();
    this.updateIrq();
    return head ? head.byte : 0;
  }

  write(port: number, size: number, value: number): void {
    void size;
    const v = value & 0xff;
    if (port === I8042_COMMAND_PORT) {
      this.lastWasCommand = true;
      this.command(v);
    } else if (port === I8042_DATA_PORT) {
      this.lastWasCommand = false;
      this.data(v);
    }
    this.updateIrq();
  }

  private status(): number {
    const head = this.queue[0];
    return (
      (head ? STATUS_OBF : 0) |
      (head?.aux ? STATUS_AUX : 0) |
      (this.ctr & CTR_SYS ? STATUS_SYS : 0) |
      (this.lastWasCommand ? STATUS_CMD : 0) |
      STATUS_UNLOCKED
    );
  }

  private reply(byte: number, aux = false): void {
    // A real controller has a one-byte buffer; a short queue keeps multi-byte replies in order.
    if (this.queue.length < 16) this.queue.push({ byte, aux });
  }

  private command(cmd: number): void {
    this.pending = 0;
    switch (cmd) {
      case CMD_READ_CTR:
        this.reply(this.ctr);
        break;
      case CMD_WRITE_CTR:
      case CMD_WRITE_OUTPUT_PORT:
      case CMD_WRITE_KBD_OUTBUF:
      case CMD_WRITE_AUX_OUTBUF:
      case CMD_WRITE_AUX:
        this.pending = cmd;
        break;
      case CMD_AUX_DISABLE:
        this.ctr |= CTR_AUX_DISABLE;
        break;
      case CMD_AUX_ENABLE:
        this.ctr &= ~CTR_AUX_DISABLE;
        break;
      case CMD_KBD_DISABLE:
        this.ctr |= CTR_KBD_DISABLE;
        break;
      case CMD_KBD_ENABLE:
        this.ctr &= ~CTR_KBD_DISABLE;
        break;
      case CMD_SELF_TEST:
        this.reply(SELF_TEST_OK);
        break;
      case CMD_AUX_TEST:
      case CMD_KBD_TEST:
        this.reply(PORT_TEST_OK);
        break;
      case CMD_READ_OUTPUT_PORT:
        this.reply(this.outputPort);
        break;
      case CMD_PULSE_RESET:
        this.host.requestExit(0, 'reboot');
        break;
      default:
        // 0xF0-0xFF pulse output-port lines; bit 0 of the low nibble clear means "pulse reset".
        if (cmd >= 0xf0 && !(cmd & 0x01)) this.host.requestExit(0, 'reboot');
        break;
    }
  }

  private data(v: number): void {
    const cmd = this.pending;
    this.pending = 0;
    switch (cmd) {
      case CMD_WRITE_CTR:
        this.ctr = v;
        return;
      case CMD_WRITE_OUTPUT_PORT:
        this.outputPort = v;
        if (!(v & OUTPORT_RESET_N)) this.host.requestExit(0, 'reboot');
        return;
      case CMD_WRITE_KBD_OUTBUF:
        this.reply(v);
        return;
      case CMD_WRITE_AUX_OUTBUF:
        this.reply(v, true);
        return;
      case CMD_WRITE_AUX:
        return; // no mouse: the byte goes nowhere and nothing answers, as with an empty PS/2 port
    }
    // A byte for the keyboard itself. There is none to type, but it answers like one so probes settle.
    this.reply(KBD_ACK);
    if (v === 0xff) this.reply(KBD_RESET_OK);
  }

  private updateIrq(): void {
    const head = this.queue[0];
    const kbd = !!head && !head.aux && (this.ctr & CTR_KBD_INT) !== 0;
    const aux = !!head && head.aux && (this.ctr & CTR_AUX_INT) !== 0;
    if (kbd !== this.kbdIrq) this.host.setIrq(KBD_IRQ, (this.kbdIrq = kbd));
    if (aux !== this.auxIrq) this.host.setIrq(AUX_IRQ, (this.auxIrq = aux));
  }
}
