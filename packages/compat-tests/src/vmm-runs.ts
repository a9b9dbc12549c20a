/**
 * The real VMM as the compatibility test (docs/compatibility.md): one built-in-guest run for a
 * combination of tool spec, kernel the host pretends to be, capabilities removed, vCPUs and virtio
 * devices — through the library, in this process — and what it did: the guest's per-check results,
 * or the up-front refusal, and the paths the VMM took, each backed by what it counted.
 */
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as hv from '@kvm-ts/hypervisor';

export const DEVICES = ['blk', 'rng', 'console'] as const;
export type Device = (typeof DEVICES)[number];

export interface Combination {
  /** The spec the VMM runs on (`--abi`). */
  abi: string;
  /** The kernel version KVM_CHECK_EXTENSION answers as (`--kernel-caps-as`), if any. */
  kernelAs?: string;
  /** Capabilities removed (`--without-cap`); a required one means the VM must be refused. */
  without: string[];
  cpus: number;
  devices: Device[];
  /** Pause and resume the VM while it runs (kicks every vCPU out of KVM_RUN and back). */
  pauseResume: boolean;
}

export interface Paths {
  kick: 'immediate-exit' | 're-kick';
  kicks: number;
  /** Per virtio device: how notifications and interrupts came, and how many did. */
  devices: Array<{ name: string; notify: string; notifications: number; interrupt: string; interrupts: number }>;
  tscDeadlineAdvertised: boolean;
  maxVcpus: number;
  /** Where the vCPU limit came from: KVM_CAP_MAX_VCPUS, KVM_CAP_NR_VCPUS, or api.rst's default of 4. */
  maxVcpusFrom: 'KVM_CAP_MAX_VCPUS' | 'KVM_CAP_NR_VCPUS' | 'default';
  vmTag: string;
}

export type RunResult =
  | { outcome: 'ran'; status: number; message: string; results: string[]; paths: Paths; fallbacks: string[] }
  /** Refused before any guest output: a required capability missing, or more vCPUs than the (pretend) kernel allows. */
  | { outcome: 'refused'; why: 'required-capability' | 'vcpu-limit'; message: string };

/** Lines the built-in guest prints per check (and its verdict); nothing that depends on the host or the vCPU count. */
const RESULT_LINE = /^(test |virtio-(blk|rng|console): |hvc0: |self-test: )/;

export function resultLines(console: string): string[] {
  return console.split(/\r?\n/).filter((l) => RESULT_LINE.test(l));
}

/** The short name a combination is reported by: `7.2 as 5.10 -IRQFD,-IOEVENTFD c2 blk+rng +pause`. */
export function describe(c: Combination): string {
  const without = c.without.length ? ` -${c.without.map((x) => x.replace(/^KVM_CAP_/, '')).join(',-')}` : '';
  return `${c.abi}${c.kernelAs ? ` as ${c.kernelAs}` : ''}${without} c${c.cpus} ${c.devices.join('+') || 'no-virtio'}${c.pauseResume ? ' +pause' : ''}`;
}

function scratchDisk(dir: string): string {
  // Always the same name: the guest prints the disk's serial, which comes from it.
  const path = join(dir, 'scratch.img');
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, 16 << 20);
  } finally {
    closeSync(fd);
  }
  return path;
}

let kernel: Uint8Array | undefined;

/** Boots the built-in guest for `c` and runs it to its end (at most `timeoutMs`). Never throws for a refusal. */
export async function runCombination(c: Combination, timeoutMs = 60_000): Promise<RunResult> {
  kernel ??= readFileSync(hv.builtinGuestPath());
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-compat-'));
  const mask: hv.CapabilityMask = { without: c.without, ...(c.kernelAs ? { kernelAs: hv.kernelAsMask(hv.abiVersion(c.kernelAs)) } : {}) };
  let out = '';
  const logs: string[] = [];
  let machine: hv.Machine;
  try {
    hv.prestartVcpuThreads(c.cpus);
    try {
      machine = hv.Machine.create({
        kernel,
        cmdline: `console=ttyS0 memtest=1${c.devices.includes('blk') ? ' kvmts.scratch' : ''}`,
        memBytes: 64 << 20,
        cpus: c.cpus,
        hostDecompress: true,
        debugExit: true,
        timeoutMs,
        console: (b) => (out += Buffer.from(b).toString('latin1')),
        log: (l) => logs.push(l),
        abi: c.abi,
        mask,
        disks: c.devices.includes('blk') ? [hv.DiskImage.open({ path: scratchDisk(dir) })] : [],
        rng: c.devices.includes('rng'),
        virtioConsole: c.devices.includes('console'),
      });
    } catch (err) {
      if (err instanceof hv.KvmError && /^required capability missing: /.test(err.message)) return { outcome: 'refused', why: 'required-capability', message: err.message };
      if (err instanceof hv.VmConfigError && /^cpus must be between 1 and \d+/.test(err.message)) return { outcome: 'refused', why: 'vcpu-limit', message: err.message };
      throw err;
    }
    const vm = machine.vm;
    const run = machine.start();
    let summary: hv.RunSummary;
    try {
      if (c.pauseResume) {
        await run.pause();
        await run.resume();
      }
      summary = await run.done;
    } finally {
      await machine.shutdown();
    }
    const paths: Paths = {
      kick: summary.kick.path,
      kicks: summary.kick.kicks,
      devices: machine.virtioStats().map((d) => ({
        name: d.name,
        notify: d.paths.notify,
        notifications: d.notifications[d.paths.notify],
        interrupt: d.paths.interrupt,
        interrupts: d.interruptsBy[d.paths.interrupt],
      })),
      tscDeadlineAdvertised: vm.tscDeadlineAdvertised,
      maxVcpus: vm.caps.maxVcpus,
      maxVcpusFrom: vm.caps.values.KVM_CAP_MAX_VCPUS > 0 ? 'KVM_CAP_MAX_VCPUS' : vm.caps.values.KVM_CAP_NR_VCPUS > 0 ? 'KVM_CAP_NR_VCPUS' : 'default',
      vmTag: vm.vmTag.path === 'kernel' ? 'kernel' : vm.vmTag.reason,
    };
    const message = [summary.message, ...logs].join('; ');
    return { outcome: 'ran', status: summary.status, message, results: resultLines(out), paths, fallbacks: vm.caps.fallbacks.map((f) => f.capability) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * For each optional capability: what a run must show to count as having exercised its fallback —
 * not the VMM saying it fell back, but the other path actually used. A capability without an entry
 * here fails the coverage test (tests/vmm-compat.test.ts): every new optional capability brings its
 * evidence.
 */
export const FALLBACK_EVIDENCE: Readonly<Record<string, (r: Extract<RunResult, { outcome: 'ran' }>) => boolean>> = {
  KVM_CAP_IMMEDIATE_EXIT: (r) => r.paths.kick === 're-kick' && r.paths.kicks > 0,
  KVM_CAP_TSC_DEADLINE_TIMER: (r) => r.fallbacks.includes('KVM_CAP_TSC_DEADLINE_TIMER') && !r.paths.tscDeadlineAdvertised,
  KVM_CAP_MAX_VCPUS: (r) => r.paths.maxVcpusFrom === 'KVM_CAP_NR_VCPUS',
  KVM_CAP_NR_VCPUS: (r) => r.paths.maxVcpusFrom === 'default' && r.paths.maxVcpus === 4,
  KVM_CAP_IOEVENTFD: (r) => r.paths.devices.length > 0 && r.paths.devices.every((d) => d.notify === 'mmio' && d.notifications > 0),
  KVM_CAP_IRQFD: (r) => r.paths.devices.length > 0 && r.paths.devices.every((d) => d.interrupt === 'irq-line' && d.interrupts > 0),
  KVM_CAP_KVMTS_VM_TAG: (r) => r.fallbacks.includes('KVM_CAP_KVMTS_VM_TAG') && r.paths.vmTag !== 'kernel',
};
