/**
 * `kvm-cli run --transport mmio|pci`: the default stays mmio (and unset in --print-config); with pci
 * a -k kernel's command line has no `pci=off` and no `virtio_mmio.device=`, the e820 map reserves
 * the MMIO hole and ECAM, and -v names each device's PCI address and MSI-X path.
 */
import test from 'ava';
import { builtinGuestPath } from '@kvm-ts/hypervisor';
import { cli } from './helpers/cli.js';
import { kvmTests } from './helpers/kvm.js';

const kvm = kvmTests('--transport runs');

test('--transport takes mmio or pci; anything else is a one-line usage error', (t) => {
  const r = cli('run', '--transport', 'isa');
  t.is(r.code, 2);
  t.is(r.stdout, '');
  t.is(r.stderr.trimEnd(), "kvm-cli: --transport: 'mmio' or 'pci', got 'isa'");
});

test('--print-config: no transport key by default; --transport pci round-trips', (t) => {
  const plain = JSON.parse(cli('run', '--print-config').stdout) as Record<string, unknown>;
  t.false('transport' in plain);
  const pci = JSON.parse(cli('run', '--transport', 'pci', '--print-config').stdout) as Record<string, unknown>;
  t.is(pci.transport, 'pci');
  t.regex(cli('run', '--help').stdout, /--transport mmio\|pci .*default: mmio/);
});

kvm('a -k kernel with --transport pci: no pci=off, no virtio_mmio.device=, the hole and ECAM reserved, devices on 00:01.0 and on', (t) => {
  const r = cli('run', '-k', builtinGuestPath(), '--debug-exit', '--rng', '--transport', 'pci', '-v', '-p', 'memtest=0');
  t.is(r.code, 0, r.stderr);
  const cmdline = /cmdline: "([^"]*)"/.exec(r.stdout)?.[1] ?? '';
  t.notRegex(cmdline, /acpi=off|pci=off|virtio_mmio\.device=/);
  t.regex(r.stdout, /e820: 0xc0000000-0xcfffffff reserved/);
  t.regex(r.stdout, /e820: 0xe0000000-0xe00fffff reserved/);
  t.regex(r.stderr, /virtio-rng at 00:01\.0 \(BAR 0 at 0xc0000000\): notifications by ioeventfd, interrupts by MSI-X over (irqfd|signal-msi)/);
});

kvm('the default stays mmio: pci=off and virtio_mmio.device= on a -k kernel\'s command line', (t) => {
  const r = cli('run', '-k', builtinGuestPath(), '--debug-exit', '--rng', '-p', 'memtest=0');
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /cmdline: "[^"]*pci=off[^"]*virtio_mmio\.device=4K@0xd0000000:16/);
});
