import test from 'ava';
import { readdirSync } from 'node:fs';
import { IoBus } from '../src/devices/bus.js';
import { VmRun } from '../src/runner.js';
import { Vm } from '../src/vm.js';
import type { DeviceHost, PioDevice } from '../src/devices/device.js';
import { asm, loadTinyGuest } from './helpers/tiny-guest.js';
import { kvmTests } from './helpers/kvm.js';

const t = kvmTests('KVM tests');

const openFds = () => readdirSync('/proc/self/fd').length;

const EXIT_PORT = 0x501;

/** Ends the run with the value the guest writes. A triple fault would too, but in the testbed a nested triple fault freezes the emulated machine. */
class ExitPort implements PioDevice {
  readonly name = 'exit-port';
  readonly ports = [[EXIT_PORT, 1]] as const;
  constructor(private readonly host: () => DeviceHost) {}
  read(): number {
    return 0;
  }
  write(_port: number, _size: number, value: number): void {
    this.host().requestExit(value & 0xff, `exit-port ${value}`);
  }
}

t('200 VMs created and destroyed leak no file descriptors', async (t2) => {
  // One VM first, so lazily opened descriptors (the addon, the spec) are not counted as leaks.
  Vm.create({ memBytes: 2 << 20, cpus: 1 }).close();
  const before = openFds();
  for (let i = 0; i < 200; i++) {
    const vm = Vm.create({ memBytes: 2 << 20, cpus: i % 50 === 0 ? 2 : 1 });
    if (i % 50 === 0) {
      // A few also run, so worker threads and their kvm_run mappings are exercised too.
      vm.setBootRegisters(loadTinyGuest(vm.memory, [...asm.movEdx(EXIT_PORT), ...asm.movEax(5), ...asm.outDxAl, ...asm.hlt]));
      const bus = new IoBus();
      let run: VmRun | undefined;
      bus.registerPio(new ExitPort(() => run!.host));
      run = VmRun.start(vm, { bus });
      const summary = await run.done;
      t2.is(summary.kind, 'guest-exit');
      t2.is(summary.status, 5);
    }
    vm.close();
  }
  t2.is(openFds(), before);
});

t('a VM that cannot be created releases what it opened', (t2) => {
  const before = openFds();
  t2.throws(() => Vm.create({ memBytes: 2 << 20, cpus: 100_000 }), { message: /cpus must be between 1 and \d+/ });
  t2.throws(() => Vm.create({ memBytes: 4097, cpus: 1 }), { message: /multiple of 4 KiB/ });
  t2.is(openFds(), before);
});
