/**
 * Everything a vCPU thread needs from the spec, as plain numbers: resolved once on the main thread
 * and handed to the worker, so the worker never loads the spec and its hot path reads a DataView
 * at fixed offsets.
 */
import { constantsWithPrefix, type LoadedAbi } from './abi.js';

export interface RunLayout {
  requests: { run: number; getRegs: number; irqLine: number };
  offsets: {
    immediateExit: number;
    exitReason: number;
    ioDirection: number;
    ioSize: number;
    ioPort: number;
    ioCount: number;
    ioDataOffset: number;
    mmioPhysAddr: number;
    mmioData: number;
    mmioLen: number;
    mmioIsWrite: number;
    failEntryReason: number;
    failEntryCpu: number;
    internalSuberror: number;
    internalNdata: number;
    internalData: number;
    systemEventType: number;
    regsRip: number;
    irqLevelIrq: number;
    irqLevelLevel: number;
  };
  sizes: { regs: number; irqLevel: number; internalData: number };
  exits: {
    io: number;
    mmio: number;
    hlt: number;
    shutdown: number;
    failEntry: number;
    internalError: number;
    systemEvent: number;
  };
  ioIn: number;
  systemEvents: { shutdown: number; reset: number; crash: number };
  /** exit_reason value → KVM_EXIT_* name, for messages and run summaries. */
  exitNames: Record<number, string>;
  /** KVM_INTERNAL_ERROR_* value → name. */
  internalErrorNames: Record<number, string>;
}

/** Names of one constant family; a name that extends another family member (KVM_EXIT_IO_IN) is a sub-code, not a member. */
function family(abi: LoadedAbi, prefix: string): Record<number, string> {
  const all = constantsWithPrefix(abi, prefix);
  const names = new Set(all.map(([n]) => n));
  const out: Record<number, string> = {};
  for (const [name, value] of all) {
    const parts = name.split('_');
    let sub = false;
    for (let i = prefix.split('_').length; i < parts.length; i++) if (names.has(parts.slice(0, i).join('_'))) sub = true;
    if (!sub && !(value in out)) out[value] = name;
  }
  return out;
}

export function runLayout(abi: LoadedAbi): RunLayout {
  const at = (path: string) => abi.field('kvm_run', path).offset;
  const internalData = abi.field('kvm_run', 'internal.data');
  return {
    requests: { run: abi.ioctl('KVM_RUN'), getRegs: abi.ioctl('KVM_GET_REGS'), irqLine: abi.ioctl('KVM_IRQ_LINE') },
    offsets: {
      immediateExit: at('immediate_exit'),
      exitReason: at('exit_reason'),
      ioDirection: at('io.direction'),
      ioSize: at('io.size'),
      ioPort: at('io.port'),
      ioCount: at('io.count'),
      ioDataOffset: at('io.data_offset'),
      mmioPhysAddr: at('mmio.phys_addr'),
      mmioData: at('mmio.data'),
      mmioLen: at('mmio.len'),
      mmioIsWrite: at('mmio.is_write'),
      failEntryReason: at('fail_entry.hardware_entry_failure_reason'),
      failEntryCpu: at('fail_entry.cpu'),
      internalSuberror: at('internal.suberror'),
      internalNdata: at('internal.ndata'),
      internalData: internalData.offset,
      systemEventType: at('system_event.type'),
      regsRip: abi.field('kvm_regs', 'rip').offset,
      irqLevelIrq: abi.field('kvm_irq_level', 'irq').offset,
      irqLevelLevel: abi.field('kvm_irq_level', 'level').offset,
    },
    sizes: {
      regs: abi.codec('kvm_regs').size,
      irqLevel: abi.codec('kvm_irq_level').size,
      internalData: internalData.count ?? 0,
    },
    exits: {
      io: abi.constant('KVM_EXIT_IO'),
      mmio: abi.constant('KVM_EXIT_MMIO'),
      hlt: abi.constant('KVM_EXIT_HLT'),
      shutdown: abi.constant('KVM_EXIT_SHUTDOWN'),
      failEntry: abi.constant('KVM_EXIT_FAIL_ENTRY'),
      internalError: abi.constant('KVM_EXIT_INTERNAL_ERROR'),
      systemEvent: abi.constant('KVM_EXIT_SYSTEM_EVENT'),
    },
    ioIn: abi.constant('KVM_EXIT_IO_IN'),
    systemEvents: {
      shutdown: abi.constant('KVM_SYSTEM_EVENT_SHUTDOWN'),
      reset: abi.constant('KVM_SYSTEM_EVENT_RESET'),
      crash: abi.constant('KVM_SYSTEM_EVENT_CRASH'),
    },
    exitNames: family(abi, 'KVM_EXIT_'),
    internalErrorNames: family(abi, 'KVM_INTERNAL_ERROR_'),
  };
}
