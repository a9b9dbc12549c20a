import test from 'ava';
import { readFileSync } from 'node:fs';
import { diffSpecs, exitBits, loadSpecRef } from '../src/diff/index.js';
import { generateLocal } from '../scripts/generate-local.js';

/** The co-edit example end to end: patch -> "+local" spec -> abi diff proves it compatible. */
test('the committed 7.2+local spec is what the patches produce on the newest pinned headers', (t) => {
  const local = generateLocal('x86_64');
  t.is(local.id, '7.2+local');
  t.is(readFileSync(local.path, 'utf8'), local.content, 'regenerate with: npx tsx packages/abi/scripts/generate-local.ts');
});

test('7.2 -> 7.2+local: a new capability and a member carved out of reserved bytes, nothing breaking', (t) => {
  const changes = diffSpecs(loadSpecRef('7.2/x86_64').spec, loadSpecRef('7.2+local/x86_64').spec);
  t.deepEqual(changes.map((c) => `${c.rule} ${c.item}`), [
    'constant-added KVM_CAP_KVMTS_VM_TAG',
    'member-from-padding kvm_enable_cap.kvmts_tag',
    'reserved-resized kvm_enable_cap.pad',
  ]);
  t.is(exitBits(changes), 0);
});

test('a patch that does not apply fails naming the patch', (t) => {
  t.throws(() => generateLocal('x86_64', [new URL('./diff-fixture.ts', import.meta.url).pathname]), { message: /diff-fixture\.ts does not apply to the 7\.2 headers/ });
});
