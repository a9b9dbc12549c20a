import { existsSync, readFileSync } from 'node:fs';

/**
 * What this host's /dev/kvm can do: 'none' (absent), 'pvm' (the paravirtual kvm_pvm: the built-in
 * CPL3 guest runs, a stock Linux dies in early boot), 'full' (hardware virtualization: Linux boots).
 * KVM_TS_HOST_KVM overrides it, to rehearse a weaker host on a stronger one.
 */
export type HostKvm = 'none' | 'pvm' | 'full';

export function hostKvm(env: NodeJS.ProcessEnv = process.env): HostKvm {
  const forced = env.KVM_TS_HOST_KVM;
  if (forced === 'none' || forced === 'pvm' || forced === 'full') return forced;
  if (!existsSync('/dev/kvm')) return 'none';
  // kvm_pvm may be built in (no /proc/modules line), and its host CPU flags show no vmx/svm.
  if (existsSync('/sys/module/kvm_pvm')) return 'pvm';
  try {
    return /^flags\s*:.*\b(vmx|svm)\b/m.test(readFileSync('/proc/cpuinfo', 'utf8')) ? 'full' : 'pvm';
  } catch {
    return 'pvm';
  }
}

/** What a test can need of /dev/kvm: any KVM at all, or one that boots a stock Linux. */
export type KvmNeed = 'kvm' | 'linux';

/** Why this host cannot run a test that needs `need`, or undefined when it can. */
export function kvmLacking(need: KvmNeed, host: HostKvm = hostKvm()): string | undefined {
  if (host === 'none') return '/dev/kvm is absent on this host';
  if (need === 'linux' && host === 'pvm') return "this host's /dev/kvm is the paravirtual kvm_pvm, which cannot boot a stock Linux";
  return undefined;
}
