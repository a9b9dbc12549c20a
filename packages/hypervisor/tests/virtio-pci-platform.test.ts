import test from 'ava';
import { IoBus } from '../src/devices/bus.js';
import { CFG, COMMAND_MEMORY } from '../src/devices/pci/function.js';
import { PCI_ECAM_BASE } from '../src/devices/pci/bus.js';
import { MSIX_ENABLE } from '../src/devices/pci/msix.js';
import { VirtioConfigError } from '../src/devices/virtio/platform.js';
import { VirtioPciPlatform, type VirtioPciVm } from '../src/devices/virtio/pci-platform.js';
import { hostAbi } from '../src/kvm/abi.js';
import { IOAPIC_PINS } from '../src/kvm/msi.js';
import { GuestMemory } from '../src/memory.js';
import { Echo } from './helpers/echo-device.js';

interface Call {
  name: string;
  bytes?: Uint8Array;
}

/** A VM that records its ioctls (eventfds are real: the shim makes them without /dev/kvm). */
function fakeVm(caps: Partial<VirtioPciVm['caps']>): VirtioPciVm & { calls: Call[] } {
  const calls: Call[] = [];
  return {
    abi: hostAbi(),
    caps: { ioeventfd: true, irqfd: true, irqRoutes: 4096, signalMsi: true, ...caps },
    calls,
    ioctl(name, arg) {
      calls.push({ name, bytes: arg instanceof Uint8Array ? arg.slice() : undefined });
      return 0;
    },
    setIrqLine() {},
  };
}

function decodeRouting(bytes: Uint8Array) {
  const abi = hostAbi();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const nr = abi.codec('kvm_irq_routing').decode(view).nr as number;
  const entry = abi.codec('kvm_irq_routing_entry');
  const at = abi.field('kvm_irq_routing', 'entries').offset;
  return Array.from({ length: nr }, (_, i) => entry.decode(view, at + i * entry.size) as unknown as { gsi: number; type: number; u: { irqchip: { irqchip: number; pin: number }; msi: { address_lo: number; data: number } } });
}

/** Brings the device at 00:01.0 up as a guest would: memory decoding, MSI-X with vector 0 set and unmasked. */
function guestEnables(bus: IoBus, platform: VirtioPciPlatform): void {
  const cfg = (off: number, bytes: Uint8Array) => bus.mmioWrite(BigInt(PCI_ECAM_BASE + (1 << 15) + off), bytes);
  cfg(CFG.Command, Uint8Array.of(COMMAND_MEMORY, 0));
  const t = platform.transports[0];
  const table = t.pci.barBase(1);
  const w32 = (addr: number, v: number) => {
    const d = new Uint8Array(4);
    new DataView(d.buffer).setUint32(0, v >>> 0, true);
    bus.mmioWrite(BigInt(addr), d);
  };
  w32(table, 0xfee0_1000);
  w32(table + 8, 0x51);
  w32(table + 12, 0);
  cfg(msixControl(platform), Uint8Array.of(0, MSIX_ENABLE >> 8));
}

function msixControl(platform: VirtioPciPlatform): number {
  const cfg = platform.transports[0].pci.config;
  for (let at = cfg[CFG.CapabilityList]; at; at = cfg[at + 1]) if (cfg[at] === 0x11) return at + 2;
  throw new Error('no MSI-X capability');
}

test('with irqfd and routing: one GSI route per vector after the irqchip defaults, an irqfd each, the route following the table', (t) => {
  const vm = fakeVm({});
  const bus = new IoBus();
  const platform = new VirtioPciPlatform(vm, GuestMemory.allocate(4 << 20), bus, () => {});
  platform.add(new Echo());
  const routings = vm.calls.filter((c) => c.name === 'KVM_SET_GSI_ROUTING');
  t.is(routings.length, 1);
  const entries = decodeRouting(routings[0].bytes!);
  const abi = hostAbi();
  const irqchip = entries.filter((e) => e.type === abi.constant('KVM_IRQ_ROUTING_IRQCHIP'));
  t.is(irqchip.length, 16 * 2 + 8, 'the kernel\'s default: PIC and IOAPIC for 0-15, IOAPIC for 16-23');
  t.truthy(irqchip.find((e) => e.gsi === 4 && e.u.irqchip.irqchip === abi.constant('KVM_IRQCHIP_PIC_MASTER') && e.u.irqchip.pin === 4));
  t.truthy(irqchip.find((e) => e.gsi === 10 && e.u.irqchip.irqchip === abi.constant('KVM_IRQCHIP_PIC_SLAVE') && e.u.irqchip.pin === 2));
  t.truthy(irqchip.find((e) => e.gsi === 20 && e.u.irqchip.irqchip === abi.constant('KVM_IRQCHIP_IOAPIC') && e.u.irqchip.pin === 20));
  const msi = entries.filter((e) => e.type === abi.constant('KVM_IRQ_ROUTING_MSI'));
  t.deepEqual(msi.map((e) => e.gsi), [IOAPIC_PINS, IOAPIC_PINS + 1, IOAPIC_PINS + 2], 'three vectors');
  t.is(vm.calls.filter((c) => c.name === 'KVM_IRQFD').length, 3);
  t.is(vm.calls.filter((c) => c.name === 'KVM_IOEVENTFD').length, 0, 'no doorbell while BAR 0 does not decode');

  guestEnables(bus, platform);
  t.is(vm.calls.filter((c) => c.name === 'KVM_IOEVENTFD').length, 2, 'a doorbell per queue once memory decoding is on');
  platform.transports[0].msix.fire(0);
  const last = vm.calls.filter((c) => c.name === 'KVM_SET_GSI_ROUTING').at(-1)!;
  const route = decodeRouting(last.bytes!).find((e) => e.gsi === IOAPIC_PINS)!;
  t.is(route.u.msi.address_lo, 0xfee0_1000);
  t.is(route.u.msi.data, 0x51);
  platform.transports[0].msix.fire(0);
  t.is(vm.calls.filter((c) => c.name === 'KVM_SET_GSI_ROUTING').length, 2, 'an unchanged message needs no new routing');
  t.is(vm.calls.filter((c) => c.name === 'KVM_SIGNAL_MSI').length, 0);
  t.like(platform.stats()[0], { pci: '00:01.0', paths: { notify: 'ioeventfd', interrupt: 'irqfd' }, interruptsBy: { irqfd: 2, 'signal-msi': 0 } });
  void platform.close(true);
});

for (const without of ['irqfd', 'irqRoutes'] as const) {
  test(`without ${without === 'irqfd' ? 'KVM_CAP_IRQFD' : 'KVM_CAP_IRQ_ROUTING'}: KVM_SIGNAL_MSI with the table's message, no routing`, (t) => {
    const vm = fakeVm({ [without]: without === 'irqfd' ? false : 0 });
    const bus = new IoBus();
    const platform = new VirtioPciPlatform(vm, GuestMemory.allocate(4 << 20), bus, () => {});
    platform.add(new Echo());
    guestEnables(bus, platform);
    platform.transports[0].msix.fire(0);
    const signals = vm.calls.filter((c) => c.name === 'KVM_SIGNAL_MSI');
    t.is(signals.length, 1);
    const msg = hostAbi().codec('kvm_msi').decode(new DataView(signals[0].bytes!.buffer));
    t.like(msg, { address_lo: 0xfee0_1000, address_hi: 0, data: 0x51, flags: 0 });
    t.is(vm.calls.filter((c) => c.name === 'KVM_SET_GSI_ROUTING' || c.name === 'KVM_IRQFD').length, 0);
    t.like(platform.stats()[0], { paths: { interrupt: 'signal-msi' }, interruptsBy: { 'signal-msi': 1 } });
    void platform.close(true);
  });
}

test('without ioeventfd the doorbells are MMIO exits; without any MSI path a virtio-pci device is refused in one line', (t) => {
  const vm = fakeVm({ ioeventfd: false });
  const bus = new IoBus();
  const platform = new VirtioPciPlatform(vm, GuestMemory.allocate(4 << 20), bus, () => {});
  platform.add(new Echo());
  guestEnables(bus, platform);
  t.is(vm.calls.filter((c) => c.name === 'KVM_IOEVENTFD').length, 0);
  t.is(platform.stats()[0].paths.notify, 'mmio');
  void platform.close(true);
  const none = new VirtioPciPlatform(fakeVm({ signalMsi: false, irqfd: false }), GuestMemory.allocate(4 << 20), new IoBus(), () => {});
  t.throws(() => none.add(new Echo()), { instanceOf: VirtioConfigError, message: /KVM_CAP_SIGNAL_MSI/ });
});

test('a kernel that refuses a message costs one log line; the VM runs on', (t) => {
  const vm = fakeVm({ irqfd: false });
  const ioctl = vm.ioctl;
  vm.ioctl = (name, arg) => {
    if (name === 'KVM_SIGNAL_MSI') throw new Error('KVM_SIGNAL_MSI: Invalid argument');
    return ioctl(name, arg);
  };
  const logs: string[] = [];
  const bus = new IoBus();
  const platform = new VirtioPciPlatform(vm, GuestMemory.allocate(4 << 20), bus, (l) => logs.push(l));
  platform.add(new Echo());
  guestEnables(bus, platform);
  for (let i = 0; i < 50; i++) t.notThrows(() => platform.transports[0].msix.fire(0));
  t.is(logs.length, 1);
  t.regex(logs[0], /MSI-X vector 0 .* not sent/);
  void platform.close(true);
});
