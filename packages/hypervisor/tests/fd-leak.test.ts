import test from 'ava';
import { readdirSync } from 'node:fs';
import { IoBus } from '../src/devices/bus.js';
import { VmRun } from '../src/runner.js';
import { Vm } from '../src/vm.js';
import { asm, loadTinyGuest } from './helpers/tiny-guest.js';
import { kvmTests } from './helpers/kvm.js';

const t = kvmTests('KVM tests');

const openFds = () => readdirSync('/proc/self/fd').length;

t('200 VMs created and destroyed leak no file descriptors', async (t2) => {
  // One VM first, so lazily opened descriptors (the addon, the spec) are not counted as leaks.
  Vm.create({ memBytes: 2 << 20, cpus: 1 }).close();
  const before = openFds();
  for (let i = 0; i < 200; i++) {
    const vm = Vm.create({ memBytes: 2 << 20, cpus: i % 50 === 0 ? 2 : 1 });
    if (i % 50 === 0) {
      // A few also run, so worker threads and their kvm_run mappings are exercised too.
      vm.setBootRegisters(loadTinyGuest(vm.memory, [0x90, ...asm.ud2]));
      const summary = await VmRun.start(vm, { bus: new IoBus() }).done;
      t2.is(summary.exitReason, 'KVM_EXIT_SHUTDOWN');
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
