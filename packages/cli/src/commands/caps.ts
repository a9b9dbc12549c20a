/**
 * kvm-cli caps: this host's KVM API version and every KVM_CAP_* of the spec, and — for a spec
 * (--abi) and a kernel the host pretends to be (--as, --without-cap) — what a VM would use and
 * what it would fall back on, without starting one.
 */
import { parse } from '../args.js';
import { usageLine, type CommandSpec } from '../usage.js';
import { parseKnobs } from '../compat-knobs.js';
import { CliError, UsageError } from '../errors.js';

export const CAPS: CommandSpec = {
  name: 'caps',
  summary: "this host's KVM API version and capabilities, and what a VM would use and fall back on",
  options: [
    { flag: 'abi', kind: 'string', arg: 'VERSION', help: 'the pinned spec to read the capabilities with (docs/compatibility.md)' },
    { flag: 'as', kind: 'string', arg: 'VERSION', help: 'answer KVM_CHECK_EXTENSION as that kernel version could at most' },
    { flag: 'without-cap', kind: 'strings', arg: 'CAP[,CAP…]', help: 'capabilities that read as absent' },
    { flag: 'json', kind: 'boolean', help: 'the report as JSON' },
  ],
};
const USAGE = usageLine(CAPS);

export async function caps(argv: string[]): Promise<number> {
  const args = parse(argv, CAPS);
  if (!args) return 0;
  const { values, positionals } = args;
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}' (usage: ${USAGE})`);
  const hv = await import('@kvm-ts/hypervisor');
  const { abi, mask } = parseKnobs(hv, { abi: values.abi as string | undefined, kernelAs: values.as as string | undefined, without: values['without-cap'] as string[] | undefined }, { kernelAs: '--as' });
  let sys;
  try {
    // KVM_TS_DEVICE: another device node (tests use it to see the missing-/dev/kvm message).
    sys = hv.KvmSystem.open(abi, process.env.KVM_TS_DEVICE || undefined, mask);
  } catch (err) {
    throw new CliError(err instanceof Error ? err.message : String(err), 1);
  }
  try {
    const apiVersion = sys.ioctl('KVM_GET_API_VERSION');
    const rows = hv.capabilityReport(sys);
    const missing = rows.filter((r) => r.required && !r.present).map((r) => r.name);
    // What a VM would do: the same probe Vm.create runs, so this can never disagree with a run.
    let fallbacks: import('@kvm-ts/hypervisor').Fallback[] = [];
    let refused: string | undefined;
    try {
      fallbacks = hv.probeCapabilities(sys).fallbacks;
    } catch (err) {
      refused = (err as Error).message;
    }
    const maxVcpusKnown = sys.caps.value('KVM_CAP_MAX_VCPUS') > 0;
    const uses = Object.keys(hv.OPTIONAL_CAPS).filter((c) => sys.caps.value(c) > 0 && !(c === 'KVM_CAP_NR_VCPUS' && maxVcpusKnown));
    const kernelAs = mask.kernelAs?.version ?? null;
    if (values.json) {
      const doc = { device: sys.path, apiVersion, spec: abi.version, kernelAs, withoutCaps: mask.without ?? [], capabilities: rows, missingRequired: missing, uses, fallbacks, refused: refused ?? null };
      process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
    } else {
      const as = kernelAs ? `, answering as a ${kernelAs} kernel` : '';
      const masked = mask.without?.length ? `, without ${mask.without.join(', ')}` : '';
      const lines = [`${sys.path}: KVM API version ${apiVersion} (spec ${abi.version}${as}${masked}; ${rows.length} capabilities; R = required by kvm-ts, U = used when present)`];
      const width = Math.max(...rows.map((r) => r.name.length));
      for (const r of rows) {
        const mark = r.required ? 'R' : r.used ? 'U' : ' ';
        const state = r.present ? `yes ${r.value}` : r.masked ? `no (masked: ${r.masked === 'kernel-as' ? `--as ${kernelAs}` : '--without-cap'})` : 'no';
        lines.push(`${mark} ${r.name.padEnd(width)} ${String(r.number).padStart(4)}  ${state}`);
      }
      if (refused) lines.push(`a VM would be refused: ${refused}`);
      else {
        lines.push(`a VM would use: ${uses.join(', ') || 'no optional capability'}`);
        for (const f of fallbacks) lines.push(`a VM would fall back: ${f.capability} absent: ${f.fallback}`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    return missing.length ? 1 : 0;
  } finally {
    sys.close();
  }
}
