import test from 'ava';
import { fileURLToPath } from 'node:url';
import type { ExprContext } from '../src/generator/expr.js';
import { IOCTL_FD, ioctlFd } from '../src/generator/fd-table.js';
import { IoctlDecoder, typeText } from '../src/generator/ioctl.js';
import { tokenize } from '../src/generator/lexer.js';
import { preprocess } from '../src/generator/preprocess.js';
import { HeaderError, type Token } from '../src/generator/tokens.js';

const ROOT = fileURLToPath(new URL('./fixtures/generator/ioctl/', import.meta.url));
const SIZES: Record<string, bigint> = { 'struct kvm_regs': 144n, 'struct kvm_msrs': 8n, __u64: 8n, 'unsigned long': 8n };
const sized: string[] = [];
const ctx: ExprContext = {
  sizeof: (toks: Token[]) => {
    const name = toks.map((t) => t.text).join(' ');
    sized.push(name);
    if (!(name in SIZES)) throw new Error(`no size for ${name}`);
    return SIZES[name];
  },
  isTypeName: (toks) => toks[0]?.text === '__u64',
};

function decoder() {
  const { macros } = preprocess({ entry: ['requests.h'], includeDirs: [ROOT], predefined: {} });
  return new IoctlDecoder(macros, ctx);
}
function ioctl(name: string) {
  const d = decoder().decode(name);
  if (!d || !('ioctl' in d)) throw new Error(`${name} did not decode as a KVM ioctl`);
  return d.ioctl;
}

test('_IO: no direction, no size, no type', (t) => {
  t.deepEqual(ioctl('KVM_RUN'), { number: 0xae80, dir: 'none', size: 0, type: null });
});

test('_IOR/_IOW/_IOWR: direction bits, size from the sizeof hook, type as written', (t) => {
  t.deepEqual(ioctl('KVM_GET_REGS'), { number: 0x8090ae81, dir: 'read', size: 144, type: 'struct kvm_regs' });
  t.deepEqual(ioctl('KVM_SET_REGS'), { number: 0x4090ae82, dir: 'write', size: 144, type: 'struct kvm_regs' }, 'whitespace normalised');
  t.deepEqual(ioctl('KVM_GET_MSRS'), { number: 0xc008ae88, dir: 'readwrite', size: 8, type: 'struct kvm_msrs' });
  t.deepEqual(ioctl('KVM_SET_ADDR'), { number: 0x4008ae47, dir: 'write', size: 8, type: '__u64' });
  t.deepEqual(ioctl('KVM_ENCRYPT_OP'), { number: 0xc008aeba, dir: 'readwrite', size: 8, type: 'unsigned long' });
});

test('request numbers are unsigned 32-bit even with the top bit set', (t) => {
  const n = ioctl('KVM_GET_MSRS').number;
  t.true(n > 0x7fffffff && n <= 0xffffffff);
});

test('ioctls defined through helper macros and aliases', (t) => {
  t.deepEqual(ioctl('KVM_VIA_HELPER'), { number: 0x4008aec2, dir: 'write', size: 8, type: 'struct kvm_msrs' });
  t.deepEqual(ioctl('KVM_ALIAS'), ioctl('KVM_GET_REGS'));
});

test('a direct _IOC takes its type from the sizeof operand', (t) => {
  t.deepEqual(ioctl('KVM_DIRECT'), { number: 0x8090ae90, dir: 'read', size: 144, type: 'struct kvm_regs' });
});

test('other magics and plain constants are not KVM ioctls', (t) => {
  const d = decoder();
  t.deepEqual(d.decode('KVM_FOREIGN'), { foreign: true });
  t.is(d.decode('KVM_NR_THINGS'), undefined);
  t.is(d.decode('KVM_FLAG'), undefined);
  t.is(d.decode('KVM_VCPU_IOC'), undefined, 'function-like macros are not requests');
  t.is(d.decode('NO_SUCH_MACRO'), undefined);
});

test('an unavailable argument type is reported before any sizeof', (t) => {
  sized.length = 0;
  const d = decoder().decode('KVM_GET_REGS', (type) => type !== 'struct kvm_regs');
  t.deepEqual(d, { unavailable: 'struct kvm_regs' });
  t.deepEqual(sized, []);
});

test('a size the hook cannot give is a HeaderError naming the ioctl and its #define line', (t) => {
  const { macros } = preprocess({ entry: ['requests.h'], includeDirs: [ROOT], predefined: {} });
  const dec = new IoctlDecoder(macros, { sizeof: () => { throw new HeaderError({ file: 'x.h', line: 1 }, 'sizeof', 'incomplete type'); } });
  const err = t.throws(() => dec.decode('KVM_GET_REGS'), { instanceOf: HeaderError });
  t.regex(err?.message ?? '', /requests\.h:8: ioctl KVM_GET_REGS: .*incomplete type/);
});

test('typeText normalises whitespace', (t) => {
  t.is(typeText(tokenize('struct   kvm_regs', 'x')), 'struct kvm_regs');
  t.is(typeText(tokenize('unsigned  long', 'x')), 'unsigned long');
  t.is(typeText(tokenize('__u8 [ 16 ]', 'x')), '__u8[16]');
  t.is(typeText(tokenize('char*', 'x')), 'char *');
});

test('fd table: classes per api.rst, unknown names are undefined', (t) => {
  t.is(ioctlFd('KVM_GET_API_VERSION'), 'system');
  t.is(ioctlFd('KVM_CREATE_VM'), 'system');
  t.is(ioctlFd('KVM_CREATE_VCPU'), 'vm');
  t.is(ioctlFd('KVM_SET_USER_MEMORY_REGION'), 'vm');
  t.is(ioctlFd('KVM_RUN'), 'vcpu');
  t.is(ioctlFd('KVM_GET_REGS'), 'vcpu');
  t.is(ioctlFd('KVM_SET_DEVICE_ATTR'), 'device');
  t.is(ioctlFd('KVM_NOT_A_REAL_IOCTL'), undefined);
  t.is(ioctlFd('toString'), undefined, 'no prototype leakage');
  for (const fd of Object.values(IOCTL_FD)) t.true(['system', 'vm', 'vcpu', 'device'].includes(fd));
});
