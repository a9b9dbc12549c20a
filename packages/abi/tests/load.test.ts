import test from 'ava';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  abiFromSpec,
  compareSpecIds,
  createSpecLoader,
  listSpecs,
  loadAbi,
  loadSpecFile,
  SPEC_DIR,
  specJsonSchemaText,
  type Arch,
  type Spec,
} from '../src/index.js';
import { FEATURES_PATH, featuresAbi, featuresSpec } from './helpers/fixtures.js';

const tempDirs: string[] = [];
test.after.always(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-load-'));
  tempDirs.push(dir);
  return dir;
}

/** A spec directory holding the features fixture under each id/arch, with a matching kernel. */
function specTree(entries: Array<[string, Arch]>): string {
  const dir = tempDir();
  for (const [id, arch] of entries) {
    mkdirSync(join(dir, id), { recursive: true });
    const spec: Spec = { ...featuresSpec(arch), kernel: `${id.split('+')[0]}.3${id.includes('+') ? '+local' : ''}` };
    writeFileSync(join(dir, id, `${arch}.json`), JSON.stringify(spec));
  }
  return dir;
}

function writeSpec(content: unknown): string {
  const path = join(tempDir(), 'x86_64.json');
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

test('spec ids compare numerically, a +suffix right after its base', (t) => {
  const ids = ['7.2+local', '6.12', '5.10', '7.2', '6.1', '10.0', '6.9'];
  t.deepEqual(ids.sort(compareSpecIds), ['5.10', '6.1', '6.9', '6.12', '7.2', '7.2+local', '10.0']);
  t.is(compareSpecIds('6.12', '6.12'), 0);
});

test('listSpecs finds <id>/<arch>.json, sorted by id then arch, ignoring anything else', (t) => {
  const dir = specTree([['6.12', 'riscv64'], ['6.12', 'x86_64'], ['5.10', 'x86_64'], ['7.2+local', 'x86_64']]);
  writeFileSync(join(dir, 'schema.json'), '{}');
  mkdirSync(join(dir, 'notes'));
  writeFileSync(join(dir, '6.12', 'README.json'), '{}');
  t.deepEqual(
    createSpecLoader(dir).listSpecs().map((s) => [s.id, s.arch, s.path]),
    [
      ['5.10', 'x86_64', join(dir, '5.10', 'x86_64.json')],
      ['6.12', 'x86_64', join(dir, '6.12', 'x86_64.json')],
      ['6.12', 'riscv64', join(dir, '6.12', 'riscv64.json')],
      ['7.2+local', 'x86_64', join(dir, '7.2+local', 'x86_64.json')],
    ],
  );
  t.deepEqual(listSpecs(join(dir, 'missing')), []);
});

test("'latest' is the newest committed id having the arch, never a +local one", (t) => {
  const loader = createSpecLoader(
    specTree([['5.10', 'x86_64'], ['6.1', 'x86_64'], ['6.12', 'x86_64'], ['6.12', 'arm64'], ['7.2', 'x86_64'], ['7.2+local', 'x86_64'], ['6.9', 'x86_64']]),
  );
  t.is(loader.latestSpecId('x86_64'), '7.2');
  t.is(loader.latestSpecId('arm64'), '6.12');
  t.is(loader.loadAbi().version, '7.2');
  t.is(loader.loadAbi('latest', 'arm64').version, '6.12');
  t.is(loader.loadAbi('7.2+local').spec.kernel, '7.2.3+local');
  t.throws(() => loader.latestSpecId('riscv64'), { message: /^no committed riscv64 spec exists in .*, so 'latest' has nothing to pick$/ });
});

test('loaded ABIs are cached per (id, arch), and share their codecs', (t) => {
  const loader = createSpecLoader(specTree([['6.12', 'x86_64'], ['6.12', 'arm64']]));
  const abi = loader.loadAbi('6.12');
  t.is(loader.loadAbi('latest', 'x86_64'), abi);
  t.is(loader.loadAbi('6.12', 'x86_64').codec('fx_run'), abi.codec('fx_run'));
  t.not(loader.loadAbi('6.12', 'arm64'), abi);
  t.is(loader.loadAbi('6.12', 'arm64').arch, 'arm64');
});

test('unknown versions and arches are one-line errors naming what exists', (t) => {
  const loader = createSpecLoader(specTree([['6.1', 'x86_64'], ['6.12', 'x86_64'], ['6.12', 'arm64']]));
  t.throws(() => loader.loadAbi('6.3'), { message: "unknown KVM ABI version '6.3' for x86_64 (available: 6.1, 6.12, or 'latest')" });
  t.throws(() => loader.loadAbi('6.1', 'arm64'), { message: 'KVM ABI spec 6.1 has no arm64 variant (available for 6.1: x86_64)' });
  t.throws(() => loader.loadAbi('6.12', 'mips' as Arch), { message: "unknown arch 'mips' (available: x86_64, arm64, riscv64)" });
});

test('a spec whose arch or kernel contradicts its place is rejected', (t) => {
  const dir = specTree([['6.12', 'x86_64'], ['6.1', 'x86_64']]);
  writeFileSync(join(dir, '6.12', 'arm64.json'), JSON.stringify({ ...featuresSpec('x86_64'), kernel: '6.12.3' }));
  writeFileSync(join(dir, '6.1', 'x86_64.json'), JSON.stringify({ ...featuresSpec(), kernel: '6.12.3' }));
  const loader = createSpecLoader(dir);
  t.throws(() => loader.loadAbi('6.12', 'arm64'), { message: /arm64\.json: malformed spec: arch is 'x86_64' but the file is for arm64$/ });
  t.throws(() => loader.loadAbi('6.1'), { message: /x86_64\.json: malformed spec: kernel '6\.12\.3' does not belong to series 6\.1$/ });
});

test('ioctls, constants, structs and leaves are looked up by name; misses name the item and the nearest names', (t) => {
  const abi = featuresAbi();
  t.is(abi.ioctl('KVM_GET_API_VERSION'), 0xae00);
  t.is(abi.ioctl('KVM_GET_REGS'), 0x8090ae81);
  t.deepEqual(abi.ioctlSpec('KVM_GET_REGS'), { number: 0x8090ae81, dir: 'read', size: 144, type: 'struct kvm_regs', fd: 'vcpu' });
  t.is(abi.ioctlSpec('KVM_NOPE'), undefined);
  t.true(abi.hasIoctl('KVM_SET_TSC_KHZ'));
  t.false(abi.hasIoctl('toString'), 'no prototype leaks');
  t.throws(() => abi.ioctl('KVM_GET_REG'), {
    message: "unknown ioctl 'KVM_GET_REG' in KVM ABI 6.12/x86_64 (available: KVM_GET_API_VERSION, KVM_GET_REGS, KVM_SET_TSC_KHZ)",
  });
  t.throws(() => abi.constant('KVM_EXIT_OI'), { message: /^unknown constant 'KVM_EXIT_OI' in KVM ABI 6\.12\/x86_64 \(available: .*KVM_EXIT_IO/ });
  t.throws(() => abi.codec('kvm_regz'), { message: /^unknown struct 'kvm_regz' in KVM ABI 6\.12\/x86_64 \(available: .*fx_run/ });
  t.throws(() => abi.field('fx_run', 'io.prot'), { message: /^struct fx_run in KVM ABI 6\.12\/x86_64 has no leaf 'io\.prot' \(available: .*io\.port/ });
  t.deepEqual(abi.field('fx_run', 'io.port'), { path: 'io.port', offset: 10, size: 2, type: '__u16' });
  t.true(abi.hasStruct('fx_word.parts'));
  t.false(abi.hasStruct('constructor'));
});

test('long name lists are cut to the closest names', (t) => {
  const spec = featuresSpec();
  const ioctls = { ...spec.ioctls };
  for (let i = 0; i < 40; i++) ioctls[`KVM_X_${i}`] = spec.ioctls.KVM_GET_REGS;
  const abi = abiFromSpec({ ...spec, ioctls }, '6.12');
  t.throws(() => abi.ioctl('KVM_GET_REG'), { message: /\(closest of 43: KVM_GET_REGS, / });
});

test('constants: numbers directly, big ones only as bigint', (t) => {
  const abi = featuresAbi();
  t.is(abi.constant('KVM_API_VERSION'), 12);
  t.is(abi.constant('FX_NEGATIVE'), -1);
  t.is(abi.bigConstant('FX_NEGATIVE'), -1n);
  t.is(abi.bigConstant('FX_U64_MAX'), 2n ** 64n - 1n);
  t.is(abi.bigConstant('FX_POW2_63'), 2n ** 63n);
  t.throws(() => abi.constant('FX_U64_MAX'), {
    message: 'constant FX_U64_MAX = 18446744073709551615 in KVM ABI 6.12/x86_64 is not a safe integer; use bigConstant()',
  });
  t.true(abi.hasConstant('KVM_EXIT_IO'));
  t.false(abi.hasConstant('KVM_EXIT_NOPE'));
});

test('malformed spec files are rejected in one line naming the file and the problem', (t) => {
  const good = featuresSpec();
  const leaf = good.structs.fx_entry.layout[0];
  const cases: Array<[unknown, RegExp]> = [
    ['{"kernel": ', /x86_64\.json: not valid JSON: /],
    [{ ...good, ioctls: undefined }, /x86_64\.json: malformed spec at ioctls: Invalid input: expected record, received undefined$/],
    [{ ...good, arch: 'sparc' }, /x86_64\.json: malformed spec at arch: Invalid option: expected one of "x86_64"\|"arm64"\|"riscv64"$/],
    [{ ...good, kernel: 'six' }, /malformed spec at kernel: expected a kernel version like 6\.12\.107 or 7\.2\+local$/],
    [
      { ...good, ioctls: { KVM_X: { ...good.ioctls.KVM_GET_REGS, number: -1 } } },
      /malformed spec at ioctls\.KVM_X\.number: Too small: expected number to be >=0$/,
    ],
    [{ ...good, constants: { X: 1.5 } }, /malformed spec at constants\.X: Invalid input$/],
    [{ ...good, constants: { X: '0x10' } }, /malformed spec at constants\.X: expected a decimal integer string$/],
    [
      { ...good, structs: { s: { size: 4, align: 4, kind: 'struct', layout: [{ ...leaf, bitoffset: 3 }] } } },
      /malformed spec at structs\.s\.layout\.0: Unrecognized key: "bitoffset"$/,
    ],
    [
      { ...good, structs: { s: { size: 4, align: 4, kind: 'struct', layout: [{ ...leaf, offset: '0' }] } } },
      /malformed spec at structs\.s\.layout\.0\.offset: Invalid input: expected number, received string$/,
    ],
    [
      { ...good, structs: { s: { size: 4, align: 4, kind: 'struct', layout: [{ ...leaf, type: 'struct gone' }] } } },
      /x86_64\.json: malformed spec: structs\.s: leaf 'function' has type 'struct gone' but structs has no 'gone'$/,
    ],
    [
      { ...good, structs: { s: { size: 4, align: 4, kind: 'struct', layout: [{ ...leaf, bitWidth: 3 }] } } },
      /malformed spec: structs\.s: leaf 'function' needs both bitOffset and bitWidth$/,
    ],
    [{ ...good, typedefs: [] }, /malformed spec at typedefs: Invalid input: expected record, received array$/],
    [{ ...good, kernel: 5, arch: 'x' }, /malformed spec at kernel: .* \(and 1 more issue\)$/],
  ];
  for (const [content, message] of cases) {
    const error = t.throws(() => loadSpecFile(writeSpec(content)), { message }, String(message));
    t.false(error?.message.includes('\n'), `one line: ${error?.message}`);
  }
  t.throws(() => loadSpecFile(join(tempDir(), 'nope.json')), { message: /nope\.json: cannot read spec file: ENOENT/ });
});

test('extra top-level keys are allowed (generator metadata), extra keys below are not', (t) => {
  t.notThrows(() => loadSpecFile(writeSpec({ ...featuresSpec(), generator: { version: 1 } })));
  t.throws(() => loadSpecFile(writeSpec({ ...featuresSpec(), structs: { s: { size: 0, align: 1, kind: 'struct', layout: [], packed: true } } })));
});

test('registerSpec makes an in-memory spec loadable, but never shadows a committed one nor becomes latest', (t) => {
  const loader = createSpecLoader(specTree([['7.2', 'x86_64']]));
  const local = loader.registerSpec('7.2+local', { ...featuresSpec(), kernel: '7.2.0+local' });
  t.is(loader.loadAbi('7.2+local'), local);
  t.is(local.version, '7.2+local');
  t.is(loader.latestSpecId(), '7.2');
  t.throws(() => loader.registerSpec('7.2', featuresSpec()), { message: /^spec 7\.2\/x86_64 is committed in .*; register the local one under another id \(e\.g\. 7\.2\+local\)$/ });
  t.throws(() => loader.registerSpec('seven', featuresSpec()), { message: "invalid spec id 'seven' (expected e.g. 6.12 or 7.2+local)" });
  t.throws(() => loader.registerSpec('8.0', { ...featuresSpec(), ioctls: 1 } as never), { message: /^spec 8\.0\/x86_64: malformed spec at ioctls/ });
});

test('the committed spec/schema.json is the JSON Schema of the zod spec schema', (t) => {
  const committed = readFileSync(fileURLToPath(new URL('../spec/schema.json', import.meta.url)), 'utf8');
  t.is(committed, specJsonSchemaText(), 'stale: run npx tsx packages/abi/scripts/emit-schema.ts');
  const schema = JSON.parse(committed) as { required: string[]; $id: string };
  t.deepEqual(schema.required, ['kernel', 'arch', 'ioctls', 'structs', 'constants', 'typedefs']);
});

test('the fixture spec file itself is valid', (t) => {
  t.is(loadSpecFile(FEATURES_PATH).kernel, '6.12.1');
});

const committed = listSpecs();
test('every committed spec file loads through loadAbi, and latest is the newest x86_64 one', (t) => {
  t.true(committed.length > 0, `no committed specs found under ${SPEC_DIR}`);
  for (const { id, arch } of committed) {
    const abi = loadAbi(id, arch);
    t.is(abi.version, id);
    t.is(abi.arch, arch);
  }
  const x86 = committed.filter((s) => s.arch === 'x86_64' && !s.id.includes('+')).map((s) => s.id);
  t.is(loadAbi().version, x86[x86.length - 1]);
  t.true(SPEC_DIR.endsWith(join('abi', 'spec') + '/') || SPEC_DIR.endsWith(join('abi', 'spec')));
});

test('the committed 6.12/x86_64 spec decodes well-known kvm_run and kvm_regs layouts', (t) => {
  const abi = loadAbi('6.12', 'x86_64');
  t.is(abi.ioctl('KVM_RUN'), 0xae80);
  t.is(abi.ioctl('KVM_GET_REGS'), 0x8090ae81);
  t.is(abi.constant('KVM_EXIT_IO'), 2);
  const run = abi.codec('kvm_run');
  const bytes = new Uint8Array(run.size);
  const view = new DataView(bytes.buffer);
  view.setUint32(8, 2, true); // exit_reason
  view.setUint8(32, 1); // io.direction = KVM_EXIT_IO_OUT
  view.setUint8(33, 1); // io.size
  view.setUint16(34, 0x3f8, true); // io.port
  view.setUint32(36, 1, true); // io.count
  view.setBigUint64(40, 0x1000n, true); // io.data_offset
  const decoded = run.decode(view) as { exit_reason: number; io: Record<string, unknown> };
  t.is(decoded.exit_reason, 2);
  t.deepEqual(decoded.io, { direction: 1, size: 1, port: 0x3f8, count: 1, data_offset: 0x1000n });
  t.is(run.accessor<number>('io.port').get(view), 0x3f8);
  const regs = abi.codec('kvm_regs');
  t.is(regs.size, 144);
  t.is(abi.field('kvm_regs', 'rip').offset, 128);
});
