/**
 * The control socket's protocol (docs/control.md): newline-delimited JSON, one request per line,
 * `{ "v": 1, "id", "method", "params" }` → `{ "v": 1, "id", "result" }` or
 * `{ "v": 1, "id", "error": { "code", "message" } }`.
 *
 * The zod schemas are built on first use (`controlSchemas()`): a VMM that never receives a request
 * never loads zod. Types are derived from the same schemas, so they cannot drift apart.
 */
import { createRequire } from 'node:module';
import type * as Zod from 'zod';
import { jsonPath } from './paths.js';

export const PROTOCOL_VERSION = 1;
/** The longest request line the server reads (bytes, without the newline); longer ones end the connection. */
export const MAX_LINE_BYTES = 64 * 1024;

/** Every error code a reply can carry. */
export const ERROR_CODES = [
  /** The line is not JSON. */
  'parse-error',
  /** JSON, but not a request envelope (`v`, `id`, `method`, `params`). */
  'invalid-request',
  'unknown-method',
  /** The method's params do not match its schema. */
  'invalid-params',
  /** A line longer than MAX_LINE_BYTES; the server closes the connection after this reply. */
  'line-too-long',
  /** The peer's uid is not the VM owner's (SO_PEERCRED); the connection is closed. */
  'forbidden',
  /** Too many connections, or the console is attached elsewhere. */
  'busy',
  /** The operation does not apply to the VM's current state (e.g. the VM is ending). */
  'not-running',
  /** The VM does not offer this (e.g. its console is on a terminal). */
  'unavailable',
  /** The VMM is shutting down and takes no new requests. */
  'shutting-down',
  /** The handler failed; the message says how. */
  'internal-error',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** An error reply, thrown by method handlers and by clients receiving one. */
export class ControlError extends Error {
  override name = 'ControlError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

let zodModule: typeof Zod | undefined;
/** zod, loaded synchronously on first use (its CommonJS build), as @kvm-ts/abi's runtime does. */
export function loadZod(): typeof Zod {
  return (zodModule ??= createRequire(import.meta.url)('zod') as typeof Zod);
}

function build(z: typeof Zod) {
  const id = z.union([z.string().max(256), z.int()]).describe('chosen by the client, echoed in the reply');
  const none = z.strictObject({});
  const count = z.int().nonnegative();
  const hex = z.string().regex(/^0x[0-9a-f]+$/).describe('a 64-bit value as lower-case hex');
  const vmState = z.enum(['starting', 'running', 'paused', 'stopping']);
  const vcpuState = z.enum(['starting', 'running', 'paused', 'exited']);
  const exits = z.strictObject({
    byReason: z.record(z.string(), count).describe('KVM_EXIT_* name → count'),
    forwarded: count.describe('accesses handled by main-thread devices'),
    total: count,
  });

  const info = z.strictObject({
    name: z.string(),
    pid: z.int().positive(),
    state: vmState,
    cpus: z.int().positive(),
    memoryBytes: count,
    startedAt: z.number().describe('epoch milliseconds'),
    uptimeMs: z.number().nonnegative(),
    socket: z.string(),
    abi: z.string().describe('the pinned spec the VM runs on'),
    console: z.strictObject({
      attachable: z.boolean().describe('false when the console is on the terminal of the run'),
      log: z.string().optional().describe('the console log file of a detached VM'),
    }),
  });
  const stateChange = z.strictObject({
    state: vmState,
    changed: z.boolean().describe('false when the VM already was in that state'),
  });
  const stop = z.strictObject({
    state: z.literal('stopped'),
    exitReason: z.string().describe('"stopped", or why the VM had already ended'),
    status: z.int().describe('the exit status the run ends with'),
  });
  const stat = z.strictObject({
    name: z.string(),
    state: vmState,
    uptimeMs: z.number().nonnegative(),
    memory: z.strictObject({
      guestBytes: count,
      regions: z.array(z.strictObject({ gpa: hex, bytes: count })),
      vmmRssBytes: count.describe('resident memory of the VMM process, guest pages it touched included'),
    }),
    exits,
    vcpus: z.array(
      z.strictObject({
        index: count,
        state: vcpuState,
        tid: count.describe('kernel thread id of the vCPU thread (0 before it started)'),
        exits,
      }),
    ),
    devices: z.array(
      z.strictObject({
        name: z.string(),
        bus: z.enum(['pio', 'mmio']),
        counters: z.record(z.string(), count).describe('device-specific: bytes, requests, queue events, …'),
      }),
    ),
  });
  const scalar = z.union([hex, z.int()]);
  const debug = z.strictObject({
    vcpus: z.array(
      z.strictObject({
        index: count,
        regs: z.record(z.string(), hex).describe('kvm_regs, member by member'),
        sregs: z
          .record(z.string(), z.union([scalar, z.array(scalar), z.record(z.string(), z.union([scalar, z.array(scalar)]))]))
          .describe('kvm_sregs, member by member (segments and descriptor tables as objects)'),
        dump: z.string().describe('registers, segments, code and stack as `lkvm debug` prints them'),
      }),
    ),
  });
  const consoleAttach = z.strictObject({
    backlogBytes: count.describe('recent console output sent right after this reply'),
  });

  /** Each method's params and result. */
  const methods = {
    info: { params: none, result: info, summary: 'who and what the VM is (what `kvm-cli list` shows)' },
    pause: { params: none, result: stateChange, summary: 'park every vCPU outside KVM_RUN' },
    resume: { params: none, result: stateChange, summary: 'let the vCPUs run again' },
    stop: { params: none, result: stop, summary: 'end the VM; the run exits with status 0 and exitReason "stopped"' },
    stat: { params: none, result: stat, summary: 'state, exits by reason, per-vCPU state, devices, memory' },
    debug: {
      params: z.strictObject({ vcpu: count.optional().describe('one vCPU (default: all)') }),
      result: debug,
      summary: "each vCPU's registers (the vCPUs are paused while they are read)",
    },
    console: {
      params: z.strictObject({ backlog: z.boolean().optional().describe('send recent output first (default true)') }),
      result: consoleAttach,
      summary: 'turn this connection into the guest console: raw bytes both ways from the next byte on',
    },
  } as const;
  type Methods = typeof methods;

  const version = z.literal(PROTOCOL_VERSION);
  const params = z.record(z.string(), z.unknown()).describe('the method\'s parameters; may be omitted when it takes none');
  /** What every request must be before its method is known. */
  const envelope = z.strictObject({ v: version, id, method: z.string().max(64), params: params.optional() });
  const error = z.strictObject({ code: z.enum(ERROR_CODES), message: z.string() });
  const errorReply = z.strictObject({ v: version, id: id.nullable().describe('null when the request had no usable id'), error });
  const names = Object.keys(methods) as Array<keyof Methods>;
  const request = z.discriminatedUnion(
    'method',
    names.map((m) => z.strictObject({ v: version, id, method: z.literal(m), params: methods[m].params.optional() })) as unknown as [
      Zod.ZodObject,
      ...Zod.ZodObject[],
    ],
  );
  const resultReply = z.strictObject({ v: version, id, result: z.union(names.map((m) => methods[m].result)) });
  const reply = z.union([resultReply, errorReply]);
  return { id, envelope, request, reply, resultReply, errorReply, methods };
}

export type ControlSchemas = ReturnType<typeof build>;
type Methods = ControlSchemas['methods'];
export type MethodName = keyof Methods;
export type Params<M extends MethodName> = Zod.infer<Methods[M]['params']>;
export type Result<M extends MethodName> = Zod.infer<Methods[M]['result']>;
export type RequestId = Zod.infer<ControlSchemas['id']>;

export type InfoResult = Result<'info'>;
export type StatResult = Result<'stat'>;
export type DebugResult = Result<'debug'>;
export type VmState = InfoResult['state'];
export type VcpuStatus = StatResult['vcpus'][number];
export type DeviceCounters = StatResult['devices'][number];

export interface Request<M extends MethodName = MethodName> {
  v: typeof PROTOCOL_VERSION;
  id: RequestId;
  method: M;
  params?: Params<M>;
}
export type Reply =
  | { v: typeof PROTOCOL_VERSION; id: RequestId; result: unknown }
  | { v: typeof PROTOCOL_VERSION; id: RequestId | null; error: { code: ErrorCode; message: string } };

let schemas: ControlSchemas | undefined;

/** The request/reply schemas (zod is loaded on the first call). */
export function controlSchemas(): ControlSchemas {
  return (schemas ??= build(loadZod()));
}

export function methodNames(): MethodName[] {
  return Object.keys(controlSchemas().methods) as MethodName[];
}

/** The first problem of a failed zod parse as one line: `params.vcpu: expected a number`. */
export function firstIssue(error: Zod.ZodError, root = ''): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  const where = jsonPath([...(root ? [root] : []), ...issue.path]);
  return where ? `${where}: ${issue.message}` : issue.message;
}

/** JSON Schema (draft 2020-12) of requests and replies, for docs/ (scripts/control-schemas.ts). */
export function controlJsonSchemas(): { request: unknown; reply: unknown } {
  const z = loadZod();
  const s = controlSchemas();
  return {
    request: { title: 'kvm-ts control request', ...z.toJSONSchema(s.request, { io: 'input' }) },
    reply: { title: 'kvm-ts control reply', ...z.toJSONSchema(s.reply, { io: 'output' }) },
  };
}
