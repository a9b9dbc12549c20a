/** `0x…` in lower case, zero-padded to `width` digits: the one hex format of messages and port names. */
export function hex(n: number | bigint, width = 0): string {
  return `0x${n.toString(16).padStart(width, '0')}`;
}

/** How an I/O port is named in logs; also the key that reports each unclaimed port once, whichever thread saw it. */
export function portName(port: number): string {
  return `port ${hex(port, 4)}`;
}
