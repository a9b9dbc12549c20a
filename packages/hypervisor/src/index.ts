/** @kvm-ts/hypervisor: a kvmtool-like VMM on /dev/kvm whose every ABI number comes from @kvm-ts/abi. */
export { abiVersion, hostAbi, hostSpecIds, type LoadedAbi } from './kvm/abi.js';
export { KvmError } from './kvm/errors.js';
export { DEFAULT_KVM_PATH, KvmSystem } from './kvm/system.js';
export {
  capabilityReport,
  CapabilityCheck,
  describeAbsence,
  kernelAsMask,
  OPTIONAL_CAPS,
  probeCapabilities,
  REQUIRED_CAPS,
  type CapabilityMask,
  type CapabilityRow,
  type Fallback,
  type HostCaps,
} from './kvm/capabilities.js';
export { Vm, VmConfigError, type VmConfig } from './vm.js';
export { VmRun, TIMEOUT_STATUS, type LocalDevice, type RunOptions, type RunSummary, type VcpuStats } from './runner.js';
export { IoBus, BusError } from './devices/bus.js';
export { Machine, VIRTIO_TRANSPORTS, type MachineOptions, type VirtioTransportKind } from './machine.js';
export { prestartVcpuThreads } from './vcpu/pool.js';
export { builtinGuestPath, GuestImageError } from './guest-image.js';
export { cachedTestKernel, testKernelCachePath } from './test-kernel.js';
export { ImageError } from './loader/index.js';
export { LoadDeadlineError } from './loader/errors.js';
export { ConsoleSink, type ByteStream } from './console/sink.js';
export { unclaimedSummaryLine, UNCLAIMED_LOG_LINES, type UnclaimedTotals } from './devices/unclaimed.js';
export { MAX_VCPUS } from './vcpu/limits.js';
export { GuestMemoryError, LOW_RAM_LIMIT } from './memory.js';
export type { BootState } from './arch/x86/regs.js';
export { dumpVcpu, type VcpuDump } from './arch/x86/debug-dump.js';
export { MachineControl, type MachineControlOptions } from './control/machine-target.js';
export { DiskError, DiskImage, type BlockBackend, type DiskOptions } from './devices/virtio/disk-image.js';
export { VirtioConfigError, type VirtioDeviceStats } from './devices/virtio/platform.js';
export type { VirtioPciDeviceStats } from './devices/virtio/pci-platform.js';
export type { ConsoleSink as VirtioConsoleOutput } from './devices/virtio/console.js';
export { defaultMac, formatMac, parseMac, NetError, VirtioNet, type NetBackend, type NetCounters } from './devices/virtio/net.js';
export { openNetBackend, openNetBackends } from './devices/virtio/net-backends/index.js';
export { checkNetworkSpec, parseHostfwd, tapNameProblem, NETWORK_SYNTAX, type Hostfwd, type NetworkSpec } from './devices/virtio/net-backends/spec.js';
export { findPasst, passtMissing, PASST_ENV } from './devices/virtio/net-backends/passt.js';
export type { NetDeviceOptions } from './machine.js';
