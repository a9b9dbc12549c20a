/**
 * On /dev/kvm: the built-in guest finds the RSDP by scanning the BIOS area, walks XSDT → FADT
 * (→ DSDT's \_S5_), checks the checksums, and writes PM1a_CNT or RESET_REG (kvmts.acpi=…); the
 * run ends as an ACPI OS's poweroff or reboot would end it.
 */
import { readFileSync } from 'node:fs';
import { builtinGuestPath } from '../src/guest-image.js';
import { Machine, type VirtioTransportKind } from '../src/machine.js';
import { kvmTests, scaled } from './helpers/kvm.js';

const t = kvmTests('KVM tests');

function machine(cmdline: string, out: string[], opts: { acpi: boolean; cpus?: number; transport?: VirtioTransportKind; rng?: boolean }) {
  return Machine.create({
    kernel: readFileSync(builtinGuestPath()),
    cmdline,
    memBytes: 64 << 20,
    cpus: opts.cpus ?? 1,
    hostDecompress: true,
    debugExit: true,
    console: (b) => out.push(Buffer.from(b).toString('latin1')),
    log: () => {},
    timeoutMs: scaled(60_000),
    acpi: opts.acpi,
    transport: opts.transport,
    rng: opts.rng,
  });
}

for (const [action, exitReason, transport] of [
  ['poweroff', 'poweroff', 'mmio'],
  ['reboot', 'reboot', 'mmio'],
  ['poweroff', 'poweroff', 'pci'],
] as const) {
  t(`kvmts.acpi=${action} (${transport}): the guest finds the tables on its own and the run ends with exitReason ${exitReason}, status 0`, async (tt) => {
    const out: string[] = [];
    const summary = await machine(`console=ttyS0 memtest=0 kvmts.acpi=${action}`, out, { acpi: true, cpus: 2, transport, rng: true }).runToEnd();
    const text = out.join('');
    tt.is(summary.exitReason, exitReason, text);
    tt.is(summary.status, 0);
    tt.is(summary.kind, 'guest-exit');
    tt.regex(text, /e820: 0xe0000-0xe0fff acpi/);
    tt.regex(text, /acpi: RSDP at 0xe0000, XSDT at 0x[0-9a-f]+, FADT at 0x[0-9a-f]+/);
    tt.regex(text, action === 'poweroff' ? /SLP_TYP 5 of \\_S5_ with SLP_EN to PM1a_CNT 0x0604/ : /0x0e to RESET_REG 0x0608/);
    tt.notRegex(text, /FAIL/);
  });
}

t('without ACPI (--no-acpi) the guest finds no RSDP, says so and fails', async (tt) => {
  const out: string[] = [];
  const summary = await machine('console=ttyS0 memtest=0 kvmts.acpi=poweroff', out, { acpi: false }).runToEnd();
  const text = out.join('');
  tt.is(summary.exitReason, 'debug-exit', text);
  tt.not(summary.status, 0);
  tt.regex(text, /acpi: no valid RSDP in the BIOS area: FAIL/);
});
