import test from 'ava';
import { loadAbi } from '@kvm-ts/abi';
import { encodeCpuid2, normalizeCpuid } from '../src/arch/x86/cpuid.js';
import type { CpuidEntry } from '../src/kvm/system.js';
import { routeLegacyInterrupts } from '../src/arch/x86/lapic.js';
import { bootMsrs, checkMsrsSet, encodeMsrs, MSR } from '../src/arch/x86/msrs.js';
import { bootSregs, type BootState } from '../src/arch/x86/regs.js';

const abi = loadAbi('latest', 'x86_64');
const entry = (fn: number, index: number, regs: Partial<CpuidEntry> = {}): CpuidEntry => ({ function: fn, index, flags: 0, eax: 0, ebx: 0, ecx: 0, edx: 0, ...regs });

const supported = [
  entry(1, 0, { ebx: 0x0000_0800, ecx: 1 << 24, edx: 0 }),
  entry(4, 0, { eax: (1 << 5) | 0x1 }), // L1
  entry(4, 3, { eax: (3 << 5) | 0x3 }), // L3
  entry(0xb, 0),
  entry(0xb, 1),
  entry(0xb, 2),
  // KVM's signature leaf, as KVM_GET_SUPPORTED_CPUID reports it: "KVMKVMKVM\0\0\0", max leaf 0x40000001.
  entry(0x4000_0000, 0, { eax: 0x4000_0001, ebx: 0x4b4d564b, ecx: 0x564b4d56, edx: 0x4d }),
];

test('CPUID gives each vCPU its APIC id and a consistent topology of `cpus` cores', (t) => {
  const out = normalizeCpuid(supported, { index: 2, cpus: 4, tscDeadline: false });
  const get = (fn: number, index = 0) => out.find((e) => e.function === fn && e.index === index)!;
  t.is(get(1).ebx >>> 24, 2, 'initial APIC id');
  t.is((get(1).ebx >>> 16) & 0xff, 4, 'logical processor count');
  t.is(get(1).ebx & 0xffff, 0x0800, 'other EBX bits kept');
  t.true((get(1).ecx & (1 << 31)) !== 0, 'hypervisor bit');
  t.is(get(1).ecx & (1 << 24), 0, 'TSC deadline not advertised without the capability');
  t.true((get(1).edx & (1 << 28)) !== 0, 'HTT with more than one CPU');
  t.is(get(4, 0).eax >>> 26, 3, 'cores per package - 1');
  t.is((get(4, 0).eax >>> 14) & 0xfff, 0, 'L1 private');
  t.is((get(4, 3).eax >>> 14) & 0xfff, 3, 'L3 shared by the package');
  t.deepEqual([get(0xb, 0).ebx, get(0xb, 1).ebx, get(0xb, 1).eax], [1, 4, 2]);
  t.deepEqual([get(0xb, 0).ecx >> 8, get(0xb, 1).ecx >> 8, get(0xb, 2).ecx >> 8], [1, 2, 0]);
  t.true([0, 1, 2].every((i) => get(0xb, i).edx === 2), 'x2APIC id in every 0xB subleaf');
  const sig = get(0x4000_0000);
  t.is(Buffer.from(new Uint32Array([sig.ebx, sig.ecx, sig.edx]).buffer).toString('latin1'), 'KVMKVMKVM\0\0\0');
  t.deepEqual(sig, supported[supported.length - 1], "KVM's signature leaf passes through unchanged");
  t.is(out.length, supported.length, 'no leaf invented');
  t.is(supported[0].ebx, 0x0000_0800, 'the supported list is not modified');
  const single = normalizeCpuid(supported, { index: 0, cpus: 1, tscDeadline: true });
  t.is(single.find((e) => e.function === 1)!.edx & (1 << 28), 0);
  t.true((single.find((e) => e.function === 1)!.ecx & (1 << 24)) !== 0);
});

test('kvm_cpuid2 and kvm_msrs carry their flexible entry arrays at the spec offsets', (t) => {
  const entries = normalizeCpuid(supported, { index: 1, cpus: 2, tscDeadline: false });
  const bytes = encodeCpuid2(abi, entries);
  const view = new DataView(bytes.buffer);
  const at = abi.field('kvm_cpuid2', 'entries').offset;
  const codec = abi.codec<CpuidEntry>('kvm_cpuid_entry2');
  t.is(bytes.length, at + entries.length * codec.size);
  t.is(view.getUint32(abi.field('kvm_cpuid2', 'nent').offset, true), entries.length);
  t.like(codec.decode(view, at + codec.size * 0), { function: 1, ebx: entries[0].ebx });

  const msrs = bootMsrs();
  const m = encodeMsrs(abi, msrs);
  const mv = new DataView(m.buffer);
  const mAt = abi.field('kvm_msrs', 'entries').offset;
  const mCodec = abi.codec('kvm_msr_entry');
  t.is(mv.getUint32(abi.field('kvm_msrs', 'nmsrs').offset, true), msrs.length);
  const decoded = msrs.map((_, i) => mCodec.decode(mv, mAt + i * mCodec.size));
  t.like(decoded.find((d) => d.index === MSR.IA32_MISC_ENABLE), { data: 1n });
  t.like(decoded.find((d) => d.index === MSR.MTRR_DEF_TYPE), { data: 0x806n });
  t.throws(() => checkMsrsSet(msrs, 3), { message: /refused MSR 0x[0-9a-f]+ \(3 of \d+ set\)/ });
});

test('boot sregs: long mode with paging, flat 64-bit code, the loader TSS; LAPIC LINT0 ExtINT, LINT1 NMI', (t) => {
  const sregs = abi.codec('kvm_sregs');
  const current = sregs.decode(new DataView(new Uint8Array(sregs.size).buffer));
  current.cr0 = 0x6000_0010n;
  const boot: BootState = { entry: 0x100_0000n, bootParams: 0x7000, pageTable: 0x9000, gdt: { base: 0x500, limit: 47 }, codeSelector: 0x10, dataSelector: 0x18, tssSelector: 0x20 };
  const s = bootSregs(current, boot) as Record<string, any>;
  t.is(s.cr0, 0x8000_0011n, 'PE | ET | PG, caches enabled');
  t.is(s.cr3, 0x9000n);
  t.is(s.cr4 & 0x20n, 0x20n);
  t.is(s.efer & 0x500n, 0x500n);
  t.like(s.cs, { selector: 0x10, l: 1, db: 0, present: 1, s: 1 });
  t.like(s.ss, { selector: 0x18, l: 0, db: 1 });
  t.like(s.tr, { selector: 0x20, type: 0xb, limit: 0x67, present: 1 });
  const round = sregs.decode(new DataView(sregs.toBytes(s).buffer));
  t.is(round.cr3, 0x9000n);

  const lapic = new Uint8Array(abi.codec('kvm_lapic_state').size);
  const regs = abi.field('kvm_lapic_state', 'regs').offset;
  const lv = new DataView(lapic.buffer);
  lv.setUint32(regs + 0x350, 0x0001_0000, true); // masked, fixed
  routeLegacyInterrupts(abi, lapic);
  t.is(lv.getUint32(regs + 0x350, true), 0x0001_0700);
  t.is(lv.getUint32(regs + 0x360, true), 0x0000_0400);
});
