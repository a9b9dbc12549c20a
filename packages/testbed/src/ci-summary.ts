/**
 * The line .ci/run prints before its last: how many tests ran on this host's /dev/kvm, how many in
 * the testbed, and how many were skipped and why, from the ledger needs.ts writes and ava's output.
 */
import { readFileSync } from 'node:fs';
import type { HostKvm } from './host-kvm.js';
import type { Disposition } from './needs.js';

export interface LedgerLine {
  file: string;
  title: string;
  where: Disposition;
  why?: string;
}

export function readLedger(text: string): LedgerLine[] {
  return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as LedgerLine);
}

const SKIP = /^\s*- \[skip\] (.*)$/;

/** ava's skip marks, by reason: "— skipped: REASON" in a title, "deferred to the testbed", else unstated. */
export function skipReasons(avaOutput: string): Map<string, number> {
  const reasons = new Map<string, number>();
  for (const line of avaOutput.split('\n')) {
    const m = SKIP.exec(line.replace(/^\S+:test: /, ''));
    if (!m) continue;
    const reason = m[1].endsWith('— deferred to the testbed') ? 'deferred to the testbed' : (/— skipped: (.*)$/.exec(m[1])?.[1] ?? 'a skip in the test itself');
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  }
  return reasons;
}

const count = (text: string, re: RegExp) => text.split('\n').filter((l) => re.test(l)).length;

export function ciSummary(host: HostKvm, ledger: LedgerLine[], hostOutput: string, testbedOutput: string | undefined): string {
  const onHost = ledger.filter((l) => l.where === 'host').length;
  const deferred = ledger.filter((l) => l.where === 'deferred').length;
  const skips = skipReasons(hostOutput);
  skips.delete('deferred to the testbed');
  for (const [reason, n] of skipReasons(testbedOutput ?? '')) skips.set(`in the testbed: ${reason}`, (skips.get(`in the testbed: ${reason}`) ?? 0) + n);
  const skipped = [...skips.values()].reduce((a, b) => a + b, 0);
  const hostName = host === 'none' ? 'none' : host === 'pvm' ? 'kvm_pvm' : 'hardware';
  const testbed = testbedOutput === undefined
    ? `${deferred} in the testbed`
    : `${deferred} in the testbed (${count(testbedOutput, /✔ /)} passed, ${count(testbedOutput, /✘ /)} failed there)`;
  const why = [...skips].map(([r, n]) => `${n}: ${r}`).join('; ');
  return `${onHost} KVM tests on this host's /dev/kvm (${hostName}), ${testbed}, ${skipped} skipped${why ? ` (${why})` : ''}`;
}

export function ciSummaryFromFiles(host: HostKvm, ledgerPath: string, hostLog: string, testbedLog: string | undefined): string {
  const read = (p: string) => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return '';
    }
  };
  return ciSummary(host, readLedger(read(ledgerPath)), read(hostLog), testbedLog === undefined ? undefined : read(testbedLog));
}
