import test from 'ava';
import { execFileSync } from 'node:child_process';
import { findSpecShapeProblem } from '../src/spec/spec-schemas.js';
import { featuresSpec } from './helpers/fixtures.js';

// A fresh process (tsx, source condition), so that nothing else in this test file has loaded zod.
function zodLoadedAfter(code: string): boolean[] {
  const script = `import { createRequire } from 'node:module';
const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('/node_modules/zod/'));
const marks = [];
${code}
console.log(JSON.stringify(marks));`;
  const out = execFileSync(process.execPath, ['--import=tsx', '--conditions=kvm-ts-source', '--input-type=module', '-e', script], {
    cwd: new URL('..', import.meta.url),
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').at(-1)!) as boolean[];
}

test('@kvm-ts/abi/runtime, loadAbi() and codecs never load zod; a codec schema loads it on first use', (t) => {
  const marks = zodLoadedAfter(`
const { loadAbi } = await import('@kvm-ts/abi/runtime');
const abi = loadAbi();
const codec = abi.codec('kvm_run');
codec.decode(new DataView(new ArrayBuffer(codec.size)));
abi.field('kvm_run', 'exit_reason');
marks.push(loaded());
marks.push(codec.schema.safeParse(codec.zero()).success);
marks.push(loaded());`);
  t.deepEqual(marks, [false, true, true]);
});

test('KVM_TS_VALIDATE_SPECS=1 and @kvm-ts/abi itself load zod', (t) => {
  process.env.KVM_TS_VALIDATE_SPECS = '1';
  try {
    t.deepEqual(zodLoadedAfter(`const { loadAbi } = await import('@kvm-ts/abi/runtime'); loadAbi(); marks.push(loaded());`), [true]);
  } finally {
    delete process.env.KVM_TS_VALIDATE_SPECS;
  }
  t.deepEqual(zodLoadedAfter(`await import('@kvm-ts/abi'); marks.push(loaded());`), [true]);
});

test('the structural check of committed specs passes a valid spec and names the first damaged member', (t) => {
  const spec = featuresSpec() as unknown as Record<string, unknown>;
  t.is(findSpecShapeProblem(spec), undefined);
  const damaged = (patch: Record<string, unknown>) => findSpecShapeProblem({ ...spec, ...patch });
  t.is(findSpecShapeProblem([]), '(root): expected an object');
  t.is(damaged({ arch: 'mips' }), 'arch: expected one of x86_64, arm64, riscv64');
  t.is(damaged({ ioctls: [] }), 'ioctls: expected an object');
  t.is(damaged({ ioctls: { KVM_X: { number: -1, size: 0 } } }), 'ioctls.KVM_X: expected { number, size, ... }');
  t.is(damaged({ constants: { A: 1.5 } }), 'constants.A: expected an integer');
  t.is(damaged({ structs: { s: { size: 4, align: 4, kind: 'enum', layout: [] } } }), "structs.s.kind: expected 'struct' or 'union'");
  t.is(
    damaged({ structs: { s: { size: 4, align: 4, kind: 'struct', layout: [{ path: 'a', offset: '0', size: 4, type: '__u32' }] } } }),
    'structs.s.layout.0: expected { path, offset, size, type, ... }',
  );
});
