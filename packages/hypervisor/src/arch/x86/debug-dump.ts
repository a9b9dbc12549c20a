/**
 * A vCPU's state as `lkvm debug` dumps it (kvmtool x86/kvm-cpu.c: kvm_cpu__show_registers,
 * kvm_cpu__show_code, kvm__dump_mem): general registers, control registers, segments, descriptor
 * tables, EFER and APIC base, the interrupt bitmap, the code around RIP and the top of the stack.
 * Every layout and ioctl number comes from the VM's spec (kvm_regs, kvm_sregs, kvm_translation);
 * guest-virtual addresses go through KVM_TRANSLATE. Only valid while the vCPU is outside KVM_RUN.
 */
import type { StructValue } from '../../kvm/abi.js';
import type { Vm } from '../../vm.js';

/** kvmtool's choice: 64 bytes of code, 43 of them before RIP; 32 bytes of stack. */
const CODE_BYTES = 64;
const CODE_PROLOGUE = 43;
const STACK_BYTES = 32;
const PAGE_MASK = 0xfffn;

export type DumpScalar = string | number;
export type DumpValue = DumpScalar | DumpScalar[] | Record<string, DumpScalar | DumpScalar[]>;

export interface VcpuDump {
  index: number;
  /** kvm_regs member → hex. */
  regs: Record<string, string>;
  /** kvm_sregs member → hex or number; segments and descriptor tables as objects. */
  sregs: Record<string, DumpValue>;
  /** The text `lkvm debug` prints for this vCPU. */
  dump: string;
}

const hexOf = (v: bigint | number) => `0x${BigInt(v).toString(16)}`;
const pad = (v: unknown, width: number) => BigInt(v as bigint | number).toString(16).padStart(width, '0');

/** A decoded member as JSON: bigints as hex, arrays and structs member by member. */
function toJson(v: unknown): DumpValue {
  if (typeof v === 'bigint') return hexOf(v);
  if (typeof v === 'number') return v;
  if (Array.isArray(v)) return v.map((x) => toJson(x) as DumpScalar);
  const out: Record<string, DumpScalar | DumpScalar[]> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = toJson(x) as DumpScalar | DumpScalar[];
  return out;
}

/** Reads and formats vCPU `index` of `vm`, which must be paused (or not yet running). */
export function dumpVcpu(vm: Vm, index: number): VcpuDump {
  const abi = vm.abi;
  const read = (struct: string, ioctl: string): StructValue => {
    const codec = abi.codec(struct);
    const bytes = new Uint8Array(codec.size);
    vm.vcpuIoctl(index, ioctl, bytes);
    return codec.decode(new DataView(bytes.buffer));
  };
  const regs = read('kvm_regs', 'KVM_GET_REGS');
  const sregs = read('kvm_sregs', 'KVM_GET_SREGS');
  const translation = abi.codec('kvm_translation');
  const pages = new Map<bigint, bigint | undefined>();
  /** Guest-physical address of a guest-virtual one, as this vCPU's page tables map it now. */
  const physical = (linear: bigint): bigint | undefined => {
    const page = linear & ~PAGE_MASK;
    if (!pages.has(page)) {
      let phys: bigint | undefined;
      try {
        const bytes = translation.toBytes({ linear_address: page });
        vm.vcpuIoctl(index, 'KVM_TRANSLATE', bytes);
        const t = translation.decode(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength));
        phys = t.valid ? (t.physical_address as bigint) : undefined;
      } catch {
        phys = undefined;
      }
      pages.set(page, phys);
    }
    const base = pages.get(page);
    return base === undefined ? undefined : base + (linear & PAGE_MASK);
  };
  const byteAt = (linear: bigint): number | undefined => {
    const gpa = physical(linear & 0xffff_ffff_ffff_ffffn);
    return gpa !== undefined && vm.memory.contains(gpa, 1) ? vm.memory.readU8(gpa) : undefined;
  };

  const r = (name: string) => pad(regs[name], 16);
  const sr = sregs as Record<string, unknown>;
  const lines: string[] = [];
  const out = (s = '') => lines.push(s);
  out(' #');
  out(` # vCPU #${index}'s dump:`);
  out(' #');
  out();
  out(' Registers:');
  out(' ----------');
  out(` rip: ${r('rip')}   rsp: ${r('rsp')} flags: ${r('rflags')}`);
  out(` rax: ${r('rax')}   rbx: ${r('rbx')}   rcx: ${r('rcx')}`);
  out(` rdx: ${r('rdx')}   rsi: ${r('rsi')}   rdi: ${r('rdi')}`);
  out(` rbp: ${r('rbp')}    r8: ${r('r8')}    r9: ${r('r9')}`);
  out(` r10: ${r('r10')}   r11: ${r('r11')}   r12: ${r('r12')}`);
  out(` r13: ${r('r13')}   r14: ${r('r14')}   r15: ${r('r15')}`);
  const s = (name: string) => pad(sr[name], 16);
  out(` cr0: ${s('cr0')}   cr2: ${s('cr2')}   cr3: ${s('cr3')}`);
  out(` cr4: ${s('cr4')}   cr8: ${s('cr8')}`);
  out();
  out(' Segment registers:');
  out(' ------------------');
  out(' register  selector  base              limit     type  p dpl db s l g avl');
  for (const name of ['cs', 'ss', 'ds', 'es', 'fs', 'gs', 'tr', 'ldt']) {
    const g = sr[name] as Record<string, number | bigint>;
    out(
      ` ${name.padEnd(3)}       ${pad(g.selector, 4)}      ${pad(g.base, 16)}  ${pad(g.limit, 8)}  ${pad(g.type, 2)}    ` +
        `${g.present} ${g.dpl}   ${g.db}  ${g.s} ${g.l} ${g.g} ${g.avl}`,
    );
  }
  for (const name of ['gdt', 'idt']) {
    const d = sr[name] as Record<string, number | bigint>;
    out(` ${name}                 ${pad(d.base, 16)}  ${pad(d.limit, 8)}`);
  }
  out();
  out(' APIC:');
  out(' -----');
  out(` efer: ${s('efer')}  apic base: ${s('apic_base')}  nmi: enabled`);
  out();
  out(' Interrupt bitmap:');
  out(' -----------------');
  out((sr.interrupt_bitmap as bigint[]).map((w) => ` ${pad(w, 16)}`).join(''));

  const rip = BigInt(regs.rip as bigint);
  const cs = sr.cs as Record<string, number | bigint>;
  // Outside long mode the code segment's base counts (kvmtool's ip_to_flat).
  const flat = cs.l ? rip : BigInt(cs.base) + rip;
  const code: string[] = [];
  for (let i = 0; i < CODE_BYTES; i++) {
    const at = flat - BigInt(CODE_PROLOGUE) + BigInt(i);
    const b = byteAt(at);
    if (b === undefined) {
      if (at < flat) continue; // the prologue may start on an unmapped page
      break;
    }
    code.push(at === flat ? ` <${pad(b, 2)}>` : ` ${pad(b, 2)}`);
  }
  out();
  out(' Code:');
  out(' -----');
  out(code.join(''));
  const rsp = BigInt(regs.rsp as bigint);
  out();
  out(' Stack:');
  out(' ------');
  out(` rsp: [<${pad(rsp, 16)}>] `);
  for (let n = 0; n < STACK_BYTES; n += 8) {
    const bytes = Array.from({ length: 8 }, (_, i) => byteAt(rsp + BigInt(n + i)));
    const addr = `0x${pad(rsp + BigInt(n), 8)}`;
    if (bytes.some((b) => b === undefined)) out(` ${addr}: <unknown>`);
    else out(` ${addr}: ${bytes.slice(0, 4).map((b) => pad(b, 2)).join(' ')}  ${bytes.slice(4).map((b) => pad(b, 2)).join(' ')}`);
  }

  const regsJson: Record<string, string> = {};
  for (const [k, v] of Object.entries(regs)) regsJson[k] = hexOf(v as bigint);
  const sregsJson: Record<string, DumpValue> = {};
  for (const [k, v] of Object.entries(sregs)) sregsJson[k] = toJson(v);
  return { index, regs: regsJson, sregs: sregsJson, dump: `${lines.join('\n')}\n` };
}
