/**
 * A hand-written header and the spec a correct generator would produce for it on x86_64 (values
 * worked out by hand from the SysV ABI; note lo/mid share tag's 4-byte unit). It exercises every probe feature without the header cache:
 * bitfields, an anonymous array element type, a 2-D array, a union, a flexible array member,
 * ioctls and constants (negative, and one only exact as a decimal string).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Spec } from '../../src/spec/types.js';

const HEADER = `#ifndef PROBE_FIXTURE_H
#define PROBE_FIXTURE_H
/* the asm-generic ioctl encoding */
#define _IOC_NRBITS 8
#define _IOC_TYPEBITS 8
#define _IOC_SIZEBITS 14
#define _IOC_NRSHIFT 0
#define _IOC_TYPESHIFT (_IOC_NRSHIFT + _IOC_NRBITS)
#define _IOC_SIZESHIFT (_IOC_TYPESHIFT + _IOC_TYPEBITS)
#define _IOC_DIRSHIFT (_IOC_SIZESHIFT + _IOC_SIZEBITS)
#define _IOC_NONE 0U
#define _IOC_WRITE 1U
#define _IOC_READ 2U
#define _IOC(dir, type, nr, size) (((dir) << _IOC_DIRSHIFT) | ((type) << _IOC_TYPESHIFT) | ((nr) << _IOC_NRSHIFT) | ((size) << _IOC_SIZESHIFT))
#define _IO(type, nr) _IOC(_IOC_NONE, (type), (nr), 0)
#define _IOR(type, nr, t) _IOC(_IOC_READ, (type), (nr), sizeof(t))
#define _IOC_DIR(nr) (((nr) >> _IOC_DIRSHIFT) & ((1 << 2) - 1))
#define _IOC_SIZE(nr) (((nr) >> _IOC_SIZESHIFT) & ((1 << _IOC_SIZEBITS) - 1))

#define FIX_NEG (-5)
#define FIX_BIG 0xffffffffffffffffULL
#define FIX_SMALL 42

struct fix_point { unsigned int x; unsigned short y; };
struct fix_main {
  unsigned char tag;
  unsigned int lo : 3, mid : 7;
  unsigned long long wide;
  struct { unsigned short a, b; } pair[2];
  unsigned char grid[2][3];
  union { unsigned int u; unsigned char c[4]; } un;
  struct fix_point pts[];
};

#define FIX_IOC_GET _IOR(0xAE, 0x01, struct fix_point)
#define FIX_IOC_RUN _IO(0xAE, 0x80)
#endif
`;

export function fixtureSpec(): Spec {
  return {
    kernel: '0.0.0+fixture',
    arch: 'x86_64',
    ioctls: {
      FIX_IOC_GET: { number: 0x8008ae01, dir: 'read', size: 8, type: 'struct fix_point', fd: 'vm' },
      FIX_IOC_RUN: { number: 0xae80, dir: 'none', size: 0, type: null, fd: 'vcpu' },
    },
    structs: {
      fix_point: {
        size: 8,
        align: 4,
        kind: 'struct',
        layout: [
          { path: 'x', offset: 0, size: 4, type: 'unsigned int' },
          { path: 'y', offset: 4, size: 2, type: 'unsigned short' },
        ],
      },
      fix_main: {
        size: 40,
        align: 8,
        kind: 'struct',
        layout: [
          { path: 'tag', offset: 0, size: 1, type: 'unsigned char' },
          { path: 'lo', offset: 0, size: 4, type: 'unsigned int', bitOffset: 8, bitWidth: 3 },
          { path: 'mid', offset: 0, size: 4, type: 'unsigned int', bitOffset: 11, bitWidth: 7 },
          { path: 'wide', offset: 8, size: 8, type: 'unsigned long long' },
          { path: 'pair', offset: 16, size: 4, type: 'struct fix_main.pair', count: 2 },
          { path: 'grid', offset: 24, size: 1, type: 'unsigned char', count: 6, dims: [2, 3] },
          { path: 'un.u', offset: 32, size: 4, type: 'unsigned int' },
          { path: 'un.c', offset: 32, size: 1, type: 'unsigned char', count: 4 },
          { path: 'pts', offset: 36, size: 8, type: 'struct fix_point', count: 0 },
        ],
      },
      'fix_main.pair': {
        size: 4,
        align: 2,
        kind: 'struct',
        layout: [
          { path: 'a', offset: 0, size: 2, type: 'unsigned short' },
          { path: 'b', offset: 2, size: 2, type: 'unsigned short' },
        ],
      },
    },
    constants: { FIX_NEG: -5, FIX_BIG: '18446744073709551615', FIX_SMALL: 42 },
    typedefs: {},
  };
}

/** Writes the fixture header as <root>/linux/kvm.h and returns the include root. */
export function writeFixtureHeaders(): string {
  const root = mkdtempSync(join(tmpdir(), 'kvm-ts-probe-fixture-'));
  mkdirSync(join(root, 'linux'));
  writeFileSync(join(root, 'linux', 'kvm.h'), HEADER);
  return root;
}
