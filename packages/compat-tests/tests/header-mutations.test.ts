import test from 'ava';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { diffSpecs, exitBits } from '@kvm-ts/abi/diff';
import { generateSpec, HeaderError } from '@kvm-ts/abi/generator';
import { cacheReady, editProblems, withEditedHeaders } from '@kvm-ts/abi/headers';
import type { Spec } from '@kvm-ts/abi';
import { gccLayout, HEADER_MUTATIONS, type HeaderMutation, layoutVerdict, propertyParameters } from '../src/index.js';

/** The pinned x86_64 sets (the host gcc lays out x86_64 only). */
const SETS = ['5.10', '6.1', '6.12', '7.2'];
const gccMissing = spawnSync('gcc', ['--version']).status === 0 ? undefined : 'no gcc on PATH';
const cacheMissing = SETS.every((id) => cacheReady(id, 'x86_64')) ? undefined : 'the pinned x86_64 header caches are not synced (npm run fetch)';
const missing = gccMissing ?? cacheMissing;
const RUNS = 200;

/** Every (mutation, set) pair whose edits apply: the catalogue's anchors are real lines of those headers. */
const pairs = missing ? [] : HEADER_MUTATIONS.flatMap((m) => SETS.filter((id) => editProblems(id, 'x86_64', m.edits).length === 0).map((id) => ({ m, id })));
const baseSpecs = new Map<string, Spec>();
const baseSpec = (id: string): Spec => {
  let s = baseSpecs.get(id);
  if (!s) baseSpecs.set(id, (s = withEditedHeaders(id, 'x86_64', [], (dir) => generateSpec({ includeDirs: [dir], arch: 'x86_64', kernel: id }))));
  return s;
};

const headerDiff = (m: HeaderMutation) => m.edits.map((e) => `--- ${e.file}\n-${e.from.split('\n').join('\n-')}\n+${e.to.split('\n').join('\n+')}`).join('\n');

/** The expected exit bits: stated, or from gcc's layout of both sides. */
function expectedExit(m: HeaderMutation, id: string, editedDir: string): number {
  if (m.layout === undefined) return m.expected!;
  const { struct, members, sourceBits } = m.layout;
  const old = withEditedHeaders(id, 'x86_64', [], (dir) => gccLayout(dir, struct, members));
  return layoutVerdict(old, gccLayout(editedDir, struct, members), sourceBits);
}

const seen = new Set<string>();
let judged = 0;

const title = `header mutations: abi diff gives each the class its effect on compiled tools says (${HEADER_MUTATIONS.length} mutations)`;
if (!missing) {
  test.serial(title, (t) => {
    t.true(HEADER_MUTATIONS.every((m) => pairs.some((p) => p.m === m)), `every mutation applies to some pinned set: ${HEADER_MUTATIONS.filter((m) => !pairs.some((p) => p.m === m)).map((m) => m.id).join(', ')}`);
    fc.assert(
      fc.property(fc.nat({ max: pairs.length - 1 }), (i) => {
        const { m, id } = pairs[i];
        judged++;
        seen.add(m.id);
        if (m.refused) {
          const err = withEditedHeaders(id, 'x86_64', m.edits, (dir) => {
            try {
              generateSpec({ includeDirs: [dir], arch: 'x86_64', kernel: id });
              return undefined;
            } catch (e) {
              return e;
            }
          });
          if (!(err instanceof HeaderError) || !m.refused.test(err.message)) {
            throw new Error(`${id}/x86_64 ${m.id} (${m.what}): the generator must refuse it (${m.refused}), got ${err instanceof Error ? err.message : 'a spec'}\n${headerDiff(m)}`);
          }
          return;
        }
        const [got, want] = withEditedHeaders(id, 'x86_64', m.edits, (dir) => {
          const changes = diffSpecs(baseSpec(id), generateSpec({ includeDirs: [dir], arch: 'x86_64', kernel: id }));
          return [exitBits(changes), expectedExit(m, id, dir), changes] as const;
        });
        if (got !== want) throw new Error(`${id}/x86_64 ${m.id} (${m.what}): abi diff exit ${got}, expected ${want}\n${headerDiff(m)}`);
      }),
      propertyParameters(RUNS),
    );
    t.log(`header mutations: ${judged} judged (catalogue ${HEADER_MUTATIONS.length} mutations, ${pairs.length} mutation x set pairs, ${seen.size} distinct mutations drawn), 0 misjudged`);
  });
} else if (process.env.CI === 'true') {
  test(title, (t) => t.fail(missing));
} else {
  test.skip(`${title} — skipped: ${missing}`, () => {});
}
