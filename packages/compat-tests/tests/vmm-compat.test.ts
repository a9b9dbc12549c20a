/**
 * The VMM against every kernel the spec knows (docs/compatibility.md), as a property on a real
 * /dev/kvm: for fast-check-chosen (tool spec × kernel-as version × optional capabilities removed ×
 * vCPU count × virtio devices × pause/resume), the built-in guest ends `self-test: PASS` with the
 * same per-check results as the unmasked run — or the VM is refused up front because a required
 * capability is missing — never a crash, a hang, a different guest result or a stack trace. Every
 * optional capability's fallback must be exercised by at least one run.
 *
 * Replay a failure with the seed and path it prints: FC_SEED=<seed> FC_PATH=<path> npx ava tests/vmm-compat.test.ts
 */
import test from 'ava';
import fc from 'fast-check';
import { hostSpecIds, OPTIONAL_CAPS, REQUIRED_CAPS } from '@kvm-ts/hypervisor';
import { inTestbed, kvmTests, scaled } from '@kvm-ts/testbed/needs';
import { propertyParameters } from '../src/history.js';
import { DEVICES, describe, FALLBACK_EVIDENCE, runCombination, type Combination, type Device, type RunResult } from '../src/vmm-runs.js';

const kvm = kvmTests('VMM compatibility properties');

/**
 * Random combinations per CI run, besides one example per optional capability (below). The testbed
 * runs each ~10× slower, so there it draws 15: the examples still exercise every fallback
 * (docs/testbed.md, "Tests left to hosts with /dev/kvm").
 */
const RUNS = inTestbed() ? 15 : 150;
const SPECS = hostSpecIds();
const LATEST = SPECS.filter((s) => !s.includes('+')).at(-1)!;
const OPTIONAL = Object.keys(OPTIONAL_CAPS);
const REQUIRED = Object.keys(REQUIRED_CAPS);

const combination = fc.record({
  abi: fc.constantFrom(...SPECS),
  kernelAs: fc.option(fc.constantFrom(...SPECS), { nil: undefined }),
  optional: fc.subarray(OPTIONAL),
  // Now and then a required one too: that VM must be refused before it runs.
  required: fc.oneof({ arbitrary: fc.constant(undefined), weight: 11 }, { arbitrary: fc.constantFrom(...REQUIRED), weight: 1 }),
  cpus: fc.integer({ min: 1, max: 4 }),
  devices: fc.subarray([...DEVICES]),
  pauseResume: fc.boolean(),
});
type Drawn = typeof combination extends fc.Arbitrary<infer T> ? T : never;

function toCombination(d: Drawn): Combination {
  return { abi: d.abi, kernelAs: d.kernelAs, without: [...d.optional, ...(d.required ? [d.required] : [])], cpus: d.cpus, devices: d.devices as Device[], pauseResume: d.pauseResume };
}

/** One example per optional capability, so each fallback is exercised whatever the seed draws. */
const EXAMPLES: Drawn[] = OPTIONAL.map((cap) => ({
  abi: cap === 'KVM_CAP_KVMTS_VM_TAG' ? '7.2+local' : LATEST,
  kernelAs: undefined,
  optional: cap === 'KVM_CAP_NR_VCPUS' ? ['KVM_CAP_MAX_VCPUS', cap] : [cap],
  required: undefined,
  cpus: 2,
  devices: [...DEVICES],
  pauseResume: true,
}));

const baselines = new Map<string, string[]>();
/** The guest's results unmasked, on the newest spec, for this vCPU count and device set. */
async function baseline(cpus: number, devices: Device[]): Promise<string[]> {
  const key = `${cpus} ${devices.join('+')}`;
  const known = baselines.get(key);
  if (known) return known;
  const r = await runCombination({ abi: LATEST, without: [], cpus, devices, pauseResume: false });
  if (r.outcome !== 'ran' || r.status !== 0 || !r.results.includes('self-test: PASS')) {
    throw new Error(`the unmasked baseline (${key}) did not pass: ${JSON.stringify(r)}`);
  }
  baselines.set(key, r.results);
  return r.results;
}

const exercised = new Map<string, string>();
const tally = { runs: 0, refused: new Map<string, number>(), byClass: new Map<string, number>() };

/** Why `r` is the wrong outcome for `c`, or undefined when it is right. */
async function verdict(c: Combination, r: RunResult): Promise<string | undefined> {
  const required = c.without.filter((x) => REQUIRED.includes(x));
  if (required.length > 0) {
    if (r.outcome !== 'refused' || r.why !== 'required-capability') return `expected a refusal naming ${required.join(', ')}, got ${JSON.stringify(r)}`;
    const unnamed = required.filter((x) => !r.message.includes(`${x} is masked (--without-cap)`));
    return unnamed.length ? `the refusal does not name ${unnamed.join(', ')}: ${r.message}` : undefined;
  }
  if (r.outcome === 'refused') {
    // Fewer vCPUs than asked is right only where KVM_CAP_MAX_VCPUS is gone and the fallback limit is lower.
    const limit = Number(/between 1 and (\d+)/.exec(r.message)?.[1]);
    if (r.why === 'vcpu-limit' && c.without.includes('KVM_CAP_MAX_VCPUS') && limit < c.cpus) return undefined;
    return `refused without a reason: ${r.message}`;
  }
  if (r.status !== 0) return `guest status ${r.status}: ${r.message}`;
  const want = await baseline(c.cpus, c.devices);
  if (JSON.stringify(r.results) !== JSON.stringify(want)) {
    const diff = r.results.filter((l) => !want.includes(l)).concat(want.filter((l) => !r.results.includes(l)).map((l) => `missing: ${l}`));
    return `guest results differ from the unmasked run: ${diff.join(' | ')}`;
  }
  return undefined;
}

kvm('the VMM on every spec × kernel × capability set × vCPUs × devices: the same guest results, or refused up front', async (t) => {
  t.timeout(scaled(20 * 60_000), 'the property did not finish');
  const started = performance.now();
  const params = propertyParameters(RUNS);
  await fc.assert(
    fc.asyncProperty(combination, async (drawn) => {
      const c = toCombination(drawn);
      const r = await runCombination(c);
      tally.runs++;
      if (r.outcome === 'refused') tally.refused.set(r.why, (tally.refused.get(r.why) ?? 0) + 1);
      else {
        for (const [cap, holds] of Object.entries(FALLBACK_EVIDENCE)) if (holds(r) && !exercised.has(cap)) exercised.set(cap, describe(c));
        const cls = `kick: ${r.paths.kick} · virtio: ${[...new Set(r.paths.devices.map((d) => `${d.notify}/${d.interrupt}`))].join(',') || 'none'}`;
        tally.byClass.set(cls, (tally.byClass.get(cls) ?? 0) + 1);
      }
      const wrong = await verdict(c, r);
      if (wrong) throw new Error(`${describe(c)}: ${wrong}`);
    }),
    { ...params, examples: params.path ? [] : EXAMPLES.map((e) => [e] as [Drawn]) },
  );
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  const refused = [...tally.refused].map(([why, n]) => `${n} for ${why}`).join(', ') || 'none';
  t.log(`${tally.runs} combinations in ${secs} s (refused up front: ${refused}; ${baselines.size} unmasked baselines)`);
  for (const [cls, n] of [...tally.byClass].sort()) t.log(`  ${n} runs: ${cls}`);
  t.true(tally.runs >= RUNS);
});

kvm('every optional capability has its fallback exercised by some run', (t) => {
  t.deepEqual(Object.keys(FALLBACK_EVIDENCE).sort(), [...OPTIONAL].sort(), 'FALLBACK_EVIDENCE must name exactly the optional capabilities (kvm/capabilities.ts)');
  for (const cap of OPTIONAL) {
    const by = exercised.get(cap);
    if (by) t.log(`${cap}: exercised by ${by}`);
    else t.fail(`no run exercised the fallback of ${cap} (${OPTIONAL_CAPS[cap].fallback})`);
  }
});
