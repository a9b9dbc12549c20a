/** kvm-cli caps: this host's KVM API version and every KVM_CAP_* of the newest spec. */
import { parse } from '../args.js';
import { CliError, UsageError } from '../errors.js';

const USAGE = 'kvm-cli caps [--json]';

export async function caps(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' } }, USAGE);
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}' (usage: ${USAGE})`);
  const hv = await import('@kvm-ts/hypervisor');
  const abi = hv.hostAbi();
  let sys;
  try {
    // KVM_TS_DEVICE: another device node (tests use it to see the missing-/dev/kvm message).
    sys = hv.KvmSystem.open(abi, process.env.KVM_TS_DEVICE || undefined);
  } catch (err) {
    throw new CliError(err instanceof Error ? err.message : String(err), 1);
  }
  try {
    const apiVersion = sys.ioctl('KVM_GET_API_VERSION');
    const rows = hv.capabilityReport(sys, abi);
    const missing = rows.filter((r) => r.required && !r.present).map((r) => r.name);
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ device: sys.path, apiVersion, spec: abi.version, capabilities: rows, missingRequired: missing }, null, 2)}\n`);
    } else {
      const lines = [`${sys.path}: KVM API version ${apiVersion} (spec ${abi.version}, ${rows.length} capabilities; R = required by kvm-ts, U = used when present)`];
      const width = Math.max(...rows.map((r) => r.name.length));
      for (const r of rows) {
        const mark = r.required ? 'R' : r.used ? 'U' : ' ';
        lines.push(`${mark} ${r.name.padEnd(width)} ${String(r.number).padStart(4)}  ${r.present ? `yes ${r.value}` : 'no'}`);
      }
      if (missing.length) lines.push(`missing required: ${missing.join(', ')}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    return missing.length ? 1 : 0;
  } finally {
    sys.close();
  }
}
