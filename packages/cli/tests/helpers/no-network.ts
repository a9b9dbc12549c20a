/**
 * The line every no-argument run prints on a host whose passt is absent or cannot start (no uplink):
 * the built-in guest then runs without its default network (network.test.ts tests it).
 */
export const NO_NETWORK_LINE = /^kvm-cli: no network device: the built-in guest's default -n mode=user: [^\n]*\n/m;

/** stderr without that line, for tests about something else. */
export function withoutNoNetworkLine(stderr: string): string {
  return stderr.replace(NO_NETWORK_LINE, '');
}
