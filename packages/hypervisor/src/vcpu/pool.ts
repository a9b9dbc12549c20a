/**
 * Starting vCPU threads. Kept apart from vcpu.ts (and free of the spec, the devices and the
 * loader) so that `kvm-cli run` can start its threads before it even imports the rest of the
 * hypervisor (`@kvm-ts/hypervisor/prestart`): a thread's own Node start-up then overlaps the main
 * thread's module loading, spec load, VM set-up and kernel load.
 */
import { Worker } from 'node:worker_threads';

export { MAX_VCPUS } from './limits.js';

const fromSource = import.meta.url.endsWith('.ts');

/** The file URL of this package's module `name` (e.g. 'devices/legacy/debug-exit'), from src/ (tsx) or dist/. */
export function moduleUrl(name: string): string {
  return new URL(`../${name}${fromSource ? '.ts' : '.js'}`, import.meta.url).href;
}

const workerUrl = new URL(moduleUrl('vcpu/worker'));

/**
 * Modules of this package's per-vCPU-thread devices: a prestarted thread imports them while it
 * waits for its VcpuWorkerInit, so loading the devices the init names costs nothing later (a
 * thread imports whatever the init names either way; this list only warms its module cache).
 */
const PRELOAD = ['devices/legacy/debug-exit', 'devices/legacy/debug-port', 'devices/null-port'].map(moduleUrl);

/** What a vCPU thread finds in workerData (its VcpuWorkerInit arrives as a message). */
export interface VcpuWorkerData {
  preload: string[];
}

/** Run from TypeScript sources (tests), a worker needs tsx's loader registered before it imports the entry. */
export function spawnWorker(): Worker {
  const options = { stdout: false, stderr: false, workerData: { preload: PRELOAD } satisfies VcpuWorkerData };
  if (!fromSource) return new Worker(workerUrl, options);
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(workerUrl.href)}); })`;
  return new Worker(boot, { ...options, eval: true });
}

/** Threads started ahead of need, waiting for their VcpuWorkerInit message. */
const prestarted: Worker[] = [];

/** Prestarting happens before the vCPU count is validated against KVM: never start more than this ahead. */
const MAX_PRESTARTED = 16;

/**
 * Starts up to `count` vCPU threads now, so their start-up (a Node isolate each) overlaps the main
 * thread's VM set-up; VcpuThread takes them instead of starting its own. Unused ones do not keep
 * the process alive.
 */
export function prestartVcpuThreads(count: number): void {
  while (prestarted.length < Math.min(count, MAX_PRESTARTED)) {
    const w = spawnWorker();
    w.unref();
    // One that dies while idle leaves the pool; a VcpuThread then starts a fresh one and reports its failure.
    const drop = () => {
      const i = prestarted.indexOf(w);
      if (i >= 0) prestarted.splice(i, 1);
    };
    w.once('error', drop);
    w.once('exit', drop);
    prestarted.push(w);
  }
}

/** A prestarted thread, now keeping the process alive, or undefined if none is left. */
export function takePrestarted(): Worker | undefined {
  const w = prestarted.shift();
  w?.ref();
  return w;
}
