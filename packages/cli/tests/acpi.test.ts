/**
 * `kvm-cli run` with ACPI tables (the default) and `--no-acpi`: the option in --help and configs,
 * a -k kernel's default parameters (no `acpi=off`/`reboot=k` with ACPI; both kept without), and a
 * guest's ACPI poweroff/reboot as exit 0 with exitReason "poweroff"/"reboot" in --json.
 */
import test from 'ava';
import { builtinGuestPath } from '@kvm-ts/hypervisor';
import { cli } from './helpers/cli.js';
import { kvmTests } from './helpers/kvm.js';

const kvm = kvmTests('--no-acpi and ACPI exits');

test('--no-acpi is in --help; --print-config says acpi true by default, false with it, and a config file takes it', (t) => {
  t.regex(cli('run', '--help').stdout, /--no-acpi +no ACPI tables: the MP table alone describes the machine/);
  t.is((JSON.parse(cli('run', '--print-config').stdout) as { acpi: boolean }).acpi, true);
  t.is((JSON.parse(cli('run', '--no-acpi', '--print-config').stdout) as { acpi: boolean }).acpi, false);
  const bad = cli('run', '--no-acpi=yes');
  t.is(bad.code, 2);
  t.is(bad.stderr.trimEnd().split('\n').length, 1, bad.stderr);
});

const cmdlineOf = (stdout: string) => /cmdline: "([^"]*)"/.exec(stdout)?.[1] ?? '';

kvm('a -k kernel gets no acpi=off and no reboot=k by default; --no-acpi keeps both and the MP-table-only machine', (t) => {
  const on = cli('run', '-k', builtinGuestPath(), '--debug-exit', '-p', 'memtest=0');
  t.is(on.code, 0, on.stderr);
  t.notRegex(cmdlineOf(on.stdout), /acpi=off|reboot=k/);
  t.regex(cmdlineOf(on.stdout), /pci=off/, 'the mmio default keeps pci=off');
  t.regex(on.stdout, /e820: 0xe0000-0xe0fff acpi/);
  const off = cli('run', '-k', builtinGuestPath(), '--debug-exit', '--no-acpi', '-p', 'memtest=0');
  t.is(off.code, 0, off.stderr);
  t.regex(cmdlineOf(off.stdout), /acpi=off pci=off reboot=k/);
  t.notRegex(off.stdout, /acpi\n/);
  t.regex(off.stdout, /e820: 0x9fc00-0xfffff reserved/);
  const pci = cli('run', '-k', builtinGuestPath(), '--debug-exit', '--no-acpi', '--transport', 'pci', '-p', 'memtest=0');
  t.is(pci.code, 0, pci.stderr);
  t.regex(cmdlineOf(pci.stdout), /acpi=off reboot=k/);
  t.notRegex(cmdlineOf(pci.stdout), /pci=off/);
});

for (const how of ['poweroff', 'reboot'] as const) {
  kvm(`a guest's ACPI ${how} ends kvm-cli with exit 0 and --json exitReason "${how}"`, (t) => {
    const r = cli('run', '--json', '-p', `kvmts.acpi=${how}`);
    t.is(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as { exitReason: string; status: number; kind: string };
    t.is(summary.exitReason, how);
    t.is(summary.status, 0);
    t.is(summary.kind, 'guest-exit');
  });
}

kvm('--no-acpi: a guest looking for the tables finds none and the run fails with its status', (t) => {
  const r = cli('run', '--json', '--no-acpi', '-p', 'kvmts.acpi=poweroff');
  t.not(r.code, 0);
  t.is((JSON.parse(r.stdout) as { exitReason: string }).exitReason, 'debug-exit');
  t.regex(r.stderr, /acpi: no valid RSDP in the BIOS area: FAIL/);
});
