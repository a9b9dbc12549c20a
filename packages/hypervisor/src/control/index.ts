/**
 * `@kvm-ts/hypervisor/control`: the per-VM control socket (docs/control.md) — paths, the protocol
 * and its zod schemas, the server a VMM runs, and the client that `kvm-cli` verbs (or an
 * orchestrator) use. Importing it loads neither zod (until the first request or reply) nor KVM.
 */
export {
  controlDir,
  defaultName,
  ensurePrivateDir,
  jsonPath,
  logPath,
  nameProblem,
  socketPath,
  socketPathProblem,
  LOG_SUFFIX,
  SOCKET_SUFFIX,
} from './paths.js';
export {
  ControlError,
  controlJsonSchemas,
  controlSchemas,
  ERROR_CODES,
  firstIssue,
  loadZod,
  MAX_LINE_BYTES,
  methodNames,
  PROTOCOL_VERSION,
  type ControlSchemas,
  type DebugResult,
  type DeviceCounters,
  type ErrorCode,
  type InfoResult,
  type MethodName,
  type Params,
  type Reply,
  type Request,
  type RequestId,
  type Result,
  type StatResult,
  type VcpuStatus,
  type VmState,
} from './protocol.js';
export {
  ControlServer,
  NameInUseError,
  probe,
  type ConsoleSession,
  type ConsoleSink,
  type ControlTarget,
  type ListenOptions,
} from './server.js';
export { call, ConnectError, ControlClient, listVms, type ListedVm } from './client.js';
export { BACKLOG_BYTES, ConsoleHub, type ConsoleHubOptions } from './console-hub.js';
