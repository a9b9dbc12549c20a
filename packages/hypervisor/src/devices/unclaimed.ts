/**
 * Accesses no device claims: logged once per address, at most UNCLAIMED_LOG_LINES lines per run
 * (a guest scanning the MMIO hole would otherwise print a line per page), then counted. The totals
 * end the run as one summary line and in --json (docs/limits.md).
 */
export const UNCLAIMED_LOG_LINES = 32;
/** Distinct addresses remembered (to log each once); past this, only the totals grow. */
export const UNCLAIMED_TRACKED = 4096;

export interface UnclaimedTotals {
  /** Every unclaimed access the bus answered (per-vCPU-thread port accesses are added by the run). */
  accesses: number;
  /** Distinct addresses seen, exact up to UNCLAIMED_TRACKED. */
  addresses: number;
  /** True when more distinct addresses were seen than are remembered: `addresses` is a lower bound. */
  addressesAtLeast: boolean;
  /** Lines logged (at most UNCLAIMED_LOG_LINES). */
  logged: number;
}

export class UnclaimedLog {
  private readonly seen = new Set<string>();
  private accesses = 0;
  private logged = 0;
  private untracked = false;

  constructor(private readonly log: (line: string) => void) {}

  /** One access at `where`; `counted` false for one a vCPU thread already counted. */
  record(where: string, kind: string, size: number, counted = true): void {
    if (counted) this.accesses++;
    if (this.seen.has(where)) return;
    if (this.seen.size >= UNCLAIMED_TRACKED) {
      this.untracked = true;
      return;
    }
    this.seen.add(where);
    if (this.logged >= UNCLAIMED_LOG_LINES) return;
    this.logged++;
    const last = this.logged === UNCLAIMED_LOG_LINES ? '; no more unclaimed accesses are logged, totals at exit' : '; further accesses not logged';
    this.log(`unhandled ${size}-byte ${kind} at ${where}${kind === 'read' ? ' (reads as all-ones)' : ' (ignored)'}${last}`);
  }

  totals(extraAccesses = 0): UnclaimedTotals {
    return { accesses: this.accesses + extraAccesses, addresses: this.seen.size, addressesAtLeast: this.untracked, logged: this.logged };
  }
}

/** The one line a run ends with when unclaimed accesses went unlogged. */
export function unclaimedSummaryLine(t: UnclaimedTotals): string {
  return `unclaimed accesses: ${t.accesses} at ${t.addresses}${t.addressesAtLeast ? '+' : ''} addresses (${t.logged} logged)`;
}
