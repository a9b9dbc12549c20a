/**
 * Tools the network tests run that a fresh machine may lack, taken from Debian's packages for this
 * host's release into the user cache by the test pipeline's fetch step (@kvm-ts/abi/debian, no
 * root, nothing installed): passt for user-mode networking, ping (iputils) for the host side of the
 * tap tests, busybox-static as the /init of the stock-kernel boot test, acpica-tools' iasl to
 * disassemble the ACPI tables the VMM generates (an independent reader of them). A tool already on PATH (or passt named by KVM_TS_PASST) is used as it is. The product
 * itself only ever looks at PATH and KVM_TS_PASST (net-backends/passt.ts).
 */
import { cachedTool, fetchUnpackedTool, findOnPath, type FetchedTool, type UnpackedTool } from '@kvm-ts/abi/debian';
import { findPasst } from './devices/virtio/net-backends/passt.js';

// passt execs passt.avx2 beside itself where the CPU has AVX2; the man page says what it takes.
const PASST: UnpackedTool = { pkg: 'passt', members: ['./usr/bin/passt*', './usr/share/man/man1/passt.1.gz'], binary: 'usr/bin/passt' };
const PING: UnpackedTool = { pkg: 'iputils-ping', members: ['./bin/ping'], binary: 'bin/ping' };
// Static, so it runs as a stock kernel's /init with nothing else in the initramfs.
const BUSYBOX: UnpackedTool = { pkg: 'busybox-static', members: ['./bin/busybox'], binary: 'bin/busybox' };
const IASL: UnpackedTool = { pkg: 'acpica-tools', members: ['./usr/bin/iasl'], binary: 'usr/bin/iasl' };

/** passt for the tests: $KVM_TS_PASST or PATH's, else the cached copy; undefined when there is none. */
export function testPasst(): string | undefined {
  return findPasst() ?? cachedTool(PASST);
}

/** ping for the tests: PATH's, else the cached copy. */
export function testPing(): string | undefined {
  return findOnPath('ping') ?? cachedTool(PING);
}

export async function fetchPasst(): Promise<FetchedTool> {
  const found = findPasst();
  return found ? { path: found } : fetchUnpackedTool(PASST);
}

export async function fetchPing(): Promise<FetchedTool> {
  const found = findOnPath('ping');
  return found ? { path: found } : fetchUnpackedTool(PING);
}

/** A static busybox for a test initramfs: the cached copy (PATH's may be dynamically linked). */
export function testBusybox(): string | undefined {
  return cachedTool(BUSYBOX);
}

export async function fetchBusybox(): Promise<FetchedTool> {
  return fetchUnpackedTool(BUSYBOX);
}

/** iasl for the ACPI table tests: PATH's, else the cached copy. */
export function testIasl(): string | undefined {
  return findOnPath('iasl') ?? cachedTool(IASL);
}

export async function fetchIasl(): Promise<FetchedTool> {
  const found = findOnPath('iasl');
  return found ? { path: found } : fetchUnpackedTool(IASL);
}
