import test from 'ava';
import { moduleDepends, moduleLoadOrder } from '../src/kernel.js';

const modinfo = (...kv: string[]) => Buffer.from(`\x7fELF junk\0${kv.join('\0')}\0more`, 'latin1');

test("a module's depends= is read from its .modinfo strings, dashes as underscores", (t) => {
  t.deepEqual(moduleDepends(modinfo('license=GPL', 'depends=kvm,ccp', 'name=kvm_amd')), ['kvm', 'ccp']);
  t.deepEqual(moduleDepends(modinfo('depends=', 'name=virtio')), []);
  t.deepEqual(moduleDepends(modinfo('depends=virtio-ring')), ['virtio_ring']);
  t.deepEqual(moduleDepends(modinfo('name=dummy')), []);
});

test('the load order puts every dependency first, each module once', (t) => {
  const deps: Record<string, string[]> = { kvm_amd: ['kvm', 'ccp'], kvm: ['irqbypass'], ccp: [], irqbypass: [], tun: [], vhost_net: ['tun', 'vhost'], vhost: [] };
  const byName = new Map(Object.keys(deps).map((n) => [n, `${n}.ko`]));
  const order = moduleLoadOrder(['kvm_amd', 'vhost_net', 'kvm'], byName, (f) => deps[f.replace(/\.ko$/, '')]);
  t.deepEqual(order, ['irqbypass.ko', 'kvm.ko', 'ccp.ko', 'kvm_amd.ko', 'tun.ko', 'vhost.ko', 'vhost_net.ko']);
});

test('a missing module and a dependency cycle are one-line errors naming them', (t) => {
  const byName = new Map([['a', 'a.ko'], ['b', 'b.ko']]);
  t.throws(() => moduleLoadOrder(['a'], byName, () => ['zz']), { message: 'kernel module zz (needed by a) is not in the kernel package (built in, or renamed?)' });
  t.throws(() => moduleLoadOrder(['a'], byName, (f) => (f === 'a.ko' ? ['b'] : ['a'])), { message: 'kernel module a depends on itself' });
});
