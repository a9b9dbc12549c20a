/**
 * #pragma pack (issue #22): the real 6.1 headers with kvm_msr_filter_range wrapped in
 * pack(push, 1) generate what gcc computes, and `abi diff` calls the change BINARY. The layout
 * rules themselves are checked against gcc on every arch by tests/fixtures/layout/pragma-pack.h.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diffSpecs, EXIT, exitBits } from '../src/diff/index.js';
import { generateSpec, HeaderError, preprocess } from '../src/generator/index.js';
import { cacheReady, includeRoot } from '../src/headers/index.js';
import { testNeeding } from './helpers/prerequisite.js';
import { formatMismatches, runProbe } from './probe/check.js';
import { toolchain } from './probe/compile.js';

const host = toolchain('x86_64');
const noGcc = 'missing' in host ? `${host.missing} not found` : undefined;
const noCache = cacheReady('6.1', 'x86_64') ? undefined : 'header cache missing for 6.1/x86_64: run kvm-cli abi sync';

/** The 6.1 x86_64 headers with struct kvm_msr_filter_range inside a pack(push, 1) region. */
function packedMsrFilterHeaders(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-pragma-pack-'));
  cpSync(includeRoot('6.1', 'x86_64'), dir, { recursive: true });
  const asm = join(dir, 'asm', 'kvm.h');
  const text = readFileSync(asm, 'utf8');
  const start = text.indexOf('struct kvm_msr_filter_range {');
  const end = text.indexOf('};', start) + 2;
  writeFileSync(asm, `${text.slice(0, start)}#pragma pack(push, 1)\n${text.slice(start, end)}\n#pragma pack(pop)${text.slice(end)}`);
  return dir;
}

testNeeding(noCache ?? noGcc, '6.1 with kvm_msr_filter_range in pack(push, 1): 392 -> 324 bytes, KVM_X86_SET_MSR_FILTER 0x4188aec6 -> 0x4144aec6, as gcc computes, and abi diff says BINARY', (t) => {
  const dir = packedMsrFilterHeaders();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const old = generateSpec({ includeDirs: [includeRoot('6.1', 'x86_64')], arch: 'x86_64', kernel: '6.1.0' });
  const neu = generateSpec({ includeDirs: [dir], arch: 'x86_64', kernel: '6.1.0' });
  t.is(old.structs.kvm_msr_filter.size, 392);
  t.is(old.ioctls.KVM_X86_SET_MSR_FILTER.number, 0x4188aec6);
  t.is(neu.structs.kvm_msr_filter_range.size, 20);
  t.is(neu.structs.kvm_msr_filter.size, 324);
  t.is(neu.ioctls.KVM_X86_SET_MSR_FILTER.number, 0x4144aec6);
  // Everything else in the mutated spec, against gcc over the same headers.
  if ('missing' in host) return;
  const report = runProbe(neu, dir, host);
  t.deepEqual(report.mismatches, [], formatMismatches(report.mismatches));
  const changes = diffSpecs(old, neu);
  const binary = changes.filter((c) => c.breaks.includes('BINARY')).map((c) => `${c.rule} ${c.item}`);
  t.true(binary.some((c) => / KVM_X86_SET_MSR_FILTER$/.test(c)), binary.join('\n'));
  t.true(binary.some((c) => / kvm_msr_filter$/.test(c)), binary.join('\n'));
  t.not(exitBits(changes) & EXIT.BINARY, 0, 'the BINARY exit bit');
});

/** #pragma pack forms gcc ignores with a warning: the header means something else than it says. */
const MALFORMED: Array<[string, RegExp]> = [
  ['#pragma pack(3)', /\/x\.h:1: #pragma pack\(3\): alignment must be a small power of two, not 3 \(gcc ignores it/],
  ['#pragma pack(32)', /alignment must be a small power of two, not 32/],
  ['#pragma pack 1', /expected '\(' … '\)'/],
  ['#pragma pack(push, 1, 2)', /malformed push/],
  ['#pragma pack(show)', /unknown action 'show'/],
  ['#define N 1\n#pragma pack(N)', /\/x\.h:2: #pragma pack\(N\): unknown action 'N'/],
  ['#pragma pack(pop)', /without a matching #pragma pack\(push\)/],
  ['#pragma pack(push, a, 1)\n#pragma pack(pop, b)', /\/x\.h:2: .*without a matching #pragma pack\(push, b\)/],
];

function preprocessText(text: string): void {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-pragma-'));
  try {
    writeFileSync(join(dir, 'x.h'), `${text}\n`);
    preprocess({ entry: ['x.h'], includeDirs: [dir], predefined: {} });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('malformed or unmatched #pragma pack is refused with one line naming file:line', (t) => {
  for (const [text, message] of MALFORMED) t.throws(() => preprocessText(text), { instanceOf: HeaderError, message }, text);
  t.notThrows(() => preprocessText('#pragma pack(push, a, 1)\n#pragma pack(push, 2)\n#pragma pack(pop, a)\n#pragma pack()\n#pragma pack(0x10)\n#pragma pack(push)\n#pragma pack(pop)'));
});

testNeeding(noGcc, 'gcc warns about exactly those #pragma pack forms (-Werror=pragmas refuses them)', (t) => {
  const gccAccepts = (src: string) => spawnSync('gcc', ['-std=gnu11', '-Werror=pragmas', '-fsyntax-only', '-x', 'c', '-'], { input: `${src}\n` }).status === 0;
  for (const [text] of MALFORMED) t.false(gccAccepts(text), text);
  t.true(gccAccepts('#pragma pack(push, a, 1)\n#pragma pack(push, 2)\n#pragma pack(pop, a)\n#pragma pack()\n#pragma pack(0x10)\n#pragma pack(push)\n#pragma pack(pop)'));
});
