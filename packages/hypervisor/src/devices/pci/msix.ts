/**
 * MSI-X (PCI Local Bus 3.0 §6.8.2): the capability in config space (enable, function mask, where
 * the table and the pending-bit array are) and the table and PBA themselves, behind a BAR. A
 * vector fires as its entry's message (address, data), unless the function or the entry is
 * masked: then its pending bit is set, and unmasking sends it. What sending a message means
 * (an irqfd on a routed GSI, KVM_SIGNAL_MSI) is the host's business.
 */
import type { BarHandler, PciFunction } from './function.js';

export const CAP_ID_MSIX = 0x11;
export const MSIX_ENABLE = 0x8000;
export const MSIX_FUNCTION_MASK = 0x4000;
export const ENTRY_SIZE = 16;
export const VECTOR_MASKED = 1;
/** The most vectors a table may have (the Table Size field is 11 bits). */
export const MAX_VECTORS = 2048;

export interface MsiMessage {
  addressLo: number;
  addressHi: number;
  data: number;
}

export interface MsixLayout {
  vectors: number;
  bar: number;
  /** Offsets of the table and the PBA in the BAR (8-byte aligned). */
  tableOffset: number;
  pbaOffset: number;
}

export interface MsixStats {
  /** Messages sent. */
  sent: number;
  /** Fires that found the vector masked and left it pending. */
  pended: number;
  /** Table or PBA accesses that were not 32- or 64-bit aligned, or writes to the PBA. */
  badAccesses: number;
}

export class Msix implements BarHandler {
  private readonly table: Uint32Array;
  private readonly pending: Uint8Array;
  private readonly capOffset: number;
  readonly stats: MsixStats = { sent: 0, pended: 0, badAccesses: 0 };
  private reportedAccess = false;

  constructor(
    private readonly fn: PciFunction,
    readonly layout: MsixLayout,
    private readonly send: (vector: number, msg: MsiMessage) => void,
    private readonly log: (line: string) => void,
  ) {
    const { vectors, bar, tableOffset, pbaOffset } = layout;
    if (!Number.isInteger(vectors) || vectors < 1 || vectors > MAX_VECTORS) throw new RangeError(`MSI-X needs 1 to ${MAX_VECTORS} vectors, got ${vectors}`);
    this.table = new Uint32Array(vectors * 4);
    for (let v = 0; v < vectors; v++) this.table[v * 4 + 3] = VECTOR_MASKED;
    this.pending = new Uint8Array(Math.ceil(vectors / 64) * 8);
    const body = new Uint8Array(10);
    const view = new DataView(body.buffer);
    view.setUint16(0, vectors - 1, true);
    view.setUint32(2, (tableOffset | bar) >>> 0, true);
    view.setUint32(6, (pbaOffset | bar) >>> 0, true);
    const mask = new Uint8Array(10);
    mask[1] = (MSIX_ENABLE | MSIX_FUNCTION_MASK) >> 8;
    this.capOffset = fn.addCapability(CAP_ID_MSIX, body, mask);
    const controlAt = this.capOffset + 2;
    const previous = fn.onConfigWrite;
    let wasLive = false;
    fn.onConfigWrite = (offset, length) => {
      previous(offset, length);
      if (offset > controlAt + 1 || offset + length <= controlAt) return;
      const live = this.enabled && !this.functionMasked;
      if (live && !wasLive) this.sendPending();
      wasLive = live;
    };
  }

  get vectors(): number {
    return this.layout.vectors;
  }

  private get control(): number {
    return this.fn.config[this.capOffset + 2] | (this.fn.config[this.capOffset + 3] << 8);
  }

  get enabled(): boolean {
    return (this.control & MSIX_ENABLE) !== 0;
  }

  get functionMasked(): boolean {
    return (this.control & MSIX_FUNCTION_MASK) !== 0;
  }

  entry(vector: number): MsiMessage & { masked: boolean } {
    const t = this.table;
    const at = vector * 4;
    return { addressLo: t[at], addressHi: t[at + 1], data: t[at + 2], masked: (t[at + 3] & VECTOR_MASKED) !== 0 };
  }

  isPending(vector: number): boolean {
    return (this.pending[vector >> 3] & (1 << (vector & 7))) !== 0;
  }

  /** Vector `vector` fires: sent now, or pending while masked. False when MSI-X is off or there is no such vector. */
  fire(vector: number): boolean {
    if (!this.enabled || !Number.isInteger(vector) || vector < 0 || vector >= this.vectors) return false;
    if (this.functionMasked || this.entry(vector).masked) {
      this.stats.pended++;
      this.pending[vector >> 3] |= 1 << (vector & 7);
      return true;
    }
    this.deliver(vector);
    return true;
  }

  private deliver(vector: number): void {
    this.pending[vector >> 3] &= ~(1 << (vector & 7));
    this.stats.sent++;
    const { addressLo, addressHi, data } = this.entry(vector);
    this.send(vector, { addressLo, addressHi, data });
  }

  private sendPending(): void {
    for (let v = 0; v < this.vectors; v++) if (this.isPending(v) && !this.entry(v).masked) this.deliver(v);
  }

  private get tableEnd(): number {
    return this.layout.tableOffset + this.vectors * ENTRY_SIZE;
  }

  private get pbaEnd(): number {
    return this.layout.pbaOffset + this.pending.length;
  }

  /** Whether [offset, offset+length) of the BAR is the table or the PBA. */
  claims(offset: number, length: number): boolean {
    const { tableOffset, pbaOffset } = this.layout;
    return (offset >= tableOffset && offset + length <= this.tableEnd) || (offset >= pbaOffset && offset + length <= this.pbaEnd);
  }

  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    if (!this.aligned(offset, data.length, 'read')) return;
    const view = new DataView(data.buffer, data.byteOffset, data.length);
    const { tableOffset, pbaOffset } = this.layout;
    for (let i = 0; i < data.length; i += 4) {
      const at = offset + i;
      if (at >= tableOffset && at < this.tableEnd) view.setUint32(i, this.table[(at - tableOffset) >> 2], true);
      else if (at >= pbaOffset && at < this.pbaEnd) view.setUint32(i, new DataView(this.pending.buffer).getUint32(at - pbaOffset, true), true);
    }
  }

  write(offset: number, data: Uint8Array): void {
    if (!this.aligned(offset, data.length, 'write')) return;
    const { tableOffset } = this.layout;
    if (!(offset >= tableOffset && offset + data.length <= this.tableEnd)) {
      this.badAccess(offset, data.length, 'write', 'the pending-bit array is read-only');
      return;
    }
    const view = new DataView(data.buffer, data.byteOffset, data.length);
    for (let i = 0; i < data.length; i += 4) {
      const word = (offset + i - tableOffset) >> 2;
      const v = view.getUint32(i, true);
      if ((word & 3) !== 3) {
        this.table[word] = v;
        continue;
      }
      // Vector control: only the mask bit is defined; unmasking sends what was pending.
      const vector = word >> 2;
      this.table[word] = v & VECTOR_MASKED;
      if (!(v & VECTOR_MASKED) && this.isPending(vector) && this.enabled && !this.functionMasked) this.deliver(vector);
    }
  }

  /** Table and PBA take aligned 32- and 64-bit accesses only (§6.8.2). */
  private aligned(offset: number, length: number, kind: string): boolean {
    if ((length === 4 || length === 8) && offset % length === 0 && this.claims(offset, length)) return true;
    this.badAccess(offset, length, kind, 'not an aligned 32- or 64-bit access to the table or the pending-bit array');
    return false;
  }

  private badAccess(offset: number, length: number, kind: string, why: string): void {
    this.stats.badAccesses++;
    if (this.reportedAccess) return;
    this.reportedAccess = true;
    this.log(`${this.fn.name}: MSI-X: ${length}-byte ${kind} at offset 0x${offset.toString(16)}: ${why} (ignored; further ones counted, not logged)`);
  }
}
