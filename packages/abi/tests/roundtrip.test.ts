/**
 * Round-trip properties for every struct of every committed spec (and of the fixture spec):
 *  - bytes → decode → (zod accepts) → encode reproduces every bit a member covers, unions included;
 *  - for structs without overlapping members: any zod-valid value → encode → decode is that value.
 */
import { fc, testProp } from '@fast-check/ava';
import test from 'ava';
import { CodecRegistry, listSpecs, loadSpecFile, type Spec } from '../src/index.js';
import { equalUnderMask, hasFlexibleArray, memberMask, overlapFree, valueArbitrary } from './helpers/arbitrary.js';
import { featuresSpec } from './helpers/fixtures.js';

const RUNS = 20;
const MAX_FLEX = 3;

function registerProperties(label: string, spec: Spec): void {
  const registry = new CodecRegistry(spec, label);
  for (const name of Object.keys(spec.structs).sort()) {
    const codec = registry.codec(name);
    const flexible = hasFlexibleArray(registry.shape(name));
    const flexCounts = fc.integer({ min: 0, max: flexible ? MAX_FLEX : 0 });
    const stride = Math.max(0, ...registry.shape(name).fields.map((f) => ('flexible' in f && f.flexible ? f.stride : 0)));

    const withBytes = flexCounts.chain((flex) => {
      const length = codec.size + flex * stride;
      return fc.tuple(fc.constant(flex), fc.uint8Array({ minLength: length, maxLength: length }));
    });
    testProp(
      `${label} ${name}: bytes → decode → encode keeps every member bit, and zod accepts the decoded value`,
      [withBytes],
      (t, [flex, bytes]) => {
        const decoded = codec.decode(new DataView(bytes.buffer), 0, { flexCount: flex });
        const verdict = codec.schema.safeParse(decoded);
        t.true(verdict.success, verdict.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
        const again = new Uint8Array(bytes.length);
        codec.encode(decoded, new DataView(again.buffer));
        t.true(equalUnderMask(bytes, again, memberMask(registry, name, flex, bytes.length)));
        t.deepEqual(codec.decode(new DataView(again.buffer), 0, { flexCount: flex }), decoded);
      },
      { numRuns: RUNS },
    );

    if (!overlapFree(registry, name)) continue;
    const values = flexCounts.chain((flex) => fc.tuple(fc.constant(flex), valueArbitrary(registry, name, flex)));
    testProp(
      `${label} ${name}: any zod-valid value → encode → decode is itself`,
      [values],
      (t, [flex, value]) => {
        t.true(codec.schema.safeParse(value).success, 'the generator makes valid values');
        const bytes = codec.toBytes(value as never);
        t.deepEqual(codec.decode(new DataView(bytes.buffer), 0, { flexCount: flex }), value);
      },
      { numRuns: RUNS },
    );
  }
}

registerProperties('fixture', featuresSpec());
registerProperties('fixture/arm64', featuresSpec('arm64'));

const committed = listSpecs();
if (committed.length === 0) test('committed specs exist to round-trip', (t) => t.fail('no spec files under packages/abi/spec: run generate-all'));
for (const { id, arch, path } of committed) registerProperties(`${id}/${arch}`, loadSpecFile(path));
