import { readFileSync } from 'node:fs';
import type { IoctlFd } from '../spec/types.js';

/**
 * linux/kvm.h groups its ioctls under comments naming the fd they are issued on. The generator
 * takes an ioctl's fd class from these when fd-table.ts has no entry for it (a kernel newer than
 * the table, a co-editing patch); the table stays the override for ioctls kvm.h misplaces.
 */
const HEADINGS: ReadonlyArray<[RegExp, IoctlFd]> = [
  [/ioctls for \/dev\/kvm fds/i, 'system'],
  [/ioctls for VM fds/i, 'vm'],
  [/ioctls for vcpu fds/i, 'vcpu'],
  [/ioctls for fds returned by KVM_CREATE_DEVICE/i, 'device'],
];

export interface FdSection {
  fd: IoctlFd;
  /** 1-based line of the heading; the section runs to the next heading or the end of the file. */
  line: number;
}

/** The fd headings of one header file, in line order. Only comments count, never code. */
export function fdSections(path: string): FdSection[] {
  const text = readFileSync(path, 'latin1');
  const out: FdSection[] = [];
  for (const m of text.matchAll(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g)) {
    const heading = HEADINGS.find(([re]) => re.test(m[0]));
    if (!heading) continue;
    const line = text.slice(0, m.index).split('\n').length;
    out.push({ fd: heading[1], line });
  }
  return out;
}

/** The section holding `line`, or undefined above the first heading. */
export function sectionAt(sections: readonly FdSection[], line: number): FdSection | undefined {
  let found: FdSection | undefined;
  for (const s of sections) if (s.line <= line) found = s;
  return found;
}
