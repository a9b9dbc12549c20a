import type { IoctlSpec, Spec } from '../spec/types.js';
import { change } from './change.js';
import { resolveType } from './members.js';
import type { Change } from './types.js';

/** _IOC_TYPE and _IOC_NR: the bits of a request number that name the ioctl itself. */
const identityBits = (n: number): number => n & 0xffff;
const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

export function compareIoctls(old: Spec, neu: Spec): Change[] {
  const out: Change[] = [];
  for (const [name, o] of Object.entries(old.ioctls)) {
    const n = neu.ioctls[name];
    if (!n) {
      out.push(change('ioctl-removed', 'ioctl', name, `${name} (${hex(o.number)}) is gone`));
      continue;
    }
    out.push(...compareOne(name, o, n, old, neu));
  }
  for (const [name, n] of Object.entries(neu.ioctls)) {
    if (!(name in old.ioctls)) out.push(change('ioctl-added', 'ioctl', name, `${name} = ${hex(n.number)} (${n.dir}, ${n.size} bytes, ${n.fd} fd)`));
  }
  out.push(...newCollisions(old, neu));
  return out;
}

function compareOne(name: string, o: IoctlSpec, n: IoctlSpec, old: Spec, neu: Spec): Change[] {
  const out: Change[] = [];
  if (o.dir !== n.dir) out.push(change('ioctl-direction-changed', 'ioctl', name, `${name} direction ${o.dir} -> ${n.dir} (${hex(o.number)} -> ${hex(n.number)})`));
  if (o.size !== n.size) out.push(change('ioctl-size-changed', 'ioctl', name, `${name} size ${o.size} -> ${n.size} (${hex(o.number)} -> ${hex(n.number)})`));
  const onlyDirOrSize = o.dir !== n.dir || o.size !== n.size;
  if (identityBits(o.number) !== identityBits(n.number) || (o.number !== n.number && !onlyDirOrSize)) {
    out.push(change('ioctl-renumbered', 'ioctl', name, `${name} ${hex(o.number)} -> ${hex(n.number)}`));
  }
  if (o.type !== n.type && o.size === n.size) {
    const swapped = argumentSwapped(o.type, n.type, old, neu);
    out.push(swapped
      ? change('ioctl-arg-type-swapped', 'ioctl', name, `${name} argument ${o.type} -> ${n.type}: same size, ${swapped}`)
      : change('ioctl-arg-type-changed', 'ioctl', name, `${name} argument ${o.type ?? 'none'} -> ${n.type ?? 'none'}`));
  }
  if (o.fd !== n.fd) out.push(change('ioctl-fd-changed', 'ioctl', name, `${name} fd ${o.fd} -> ${n.fd}`));
  return out;
}

const aggregate = (type: string | null): string | undefined => (type === null ? undefined : /^(?:struct|union) (.+)$/.exec(type)?.[1]);
const layoutKey = (spec: Spec, name: string): string | undefined => {
  const s = spec.structs[name];
  return s && JSON.stringify([s.kind, s.size, s.layout.map((l) => [l.path, l.offset, l.size, resolveType(l.type, spec.typedefs), l.count, l.dims, l.bitOffset, l.bitWidth])]);
};

/**
 * Two aggregates of one size whose layouts differ: the number stays, but the bytes at each offset
 * now mean something else to the kernel than to a compiled tool. A rename with an identical
 * layout is source-only. Returns why, or undefined.
 */
function argumentSwapped(oType: string | null, nType: string | null, old: Spec, neu: Spec): string | undefined {
  const o = aggregate(oType);
  const n = aggregate(nType);
  if (o === undefined || n === undefined) return undefined;
  const ok = layoutKey(old, o);
  const nk = layoutKey(neu, n);
  return ok !== undefined && nk !== undefined && ok !== nk ? 'but another layout: every byte means something else' : undefined;
}

/** The ioctl an alias (`#define KVM_X_ALIAS KVM_X`) names, followed to its end. */
function aliasRoot(spec: Spec, name: string): string {
  let n = name;
  for (let i = 0; i < 8 && spec.aliases?.[n] !== undefined; i++) n = spec.aliases[n];
  return n;
}

/** Every fd class an ioctl is valid on (api.rst lists several for some). */
export const fdClasses = (io: IoctlSpec): readonly string[] => io.fds ?? [io.fd];

/** fd class + number -> the ioctls sharing it; an alias and the ioctl it names are one. */
function sharedNumbers(spec: Spec): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const [name, io] of Object.entries(spec.ioctls)) {
    if (aliasRoot(spec, name) !== name && aliasRoot(spec, name) in spec.ioctls) continue;
    for (const fd of fdClasses(io)) {
      const key = `${fd}:${io.number}`;
      const g = groups.get(key);
      if (g) g.push(name);
      else groups.set(key, [name]);
    }
  }
  for (const [key, g] of groups) if (g.length < 2) groups.delete(key);
  return groups;
}

/** A shared number the old spec already had is history; one that appears now is a new ambiguity. */
function newCollisions(old: Spec, neu: Spec): Change[] {
  const before = sharedNumbers(old);
  const out: Change[] = [];
  for (const [key, names] of sharedNumbers(neu)) {
    const grandfathered = new Set(before.get(key) ?? []);
    const [fd, num] = key.split(':');
    const fresh = names.filter((name) => !grandfathered.has(name));
    // Blame the ioctl that moved onto the number, not the one that was already there.
    const moved = fresh.filter((name) => old.ioctls[name]?.number !== neu.ioctls[name].number || !fdClasses(old.ioctls[name]).includes(fd));
    for (const name of (moved.length > 0 ? moved : fresh).sort()) {
      const others = names.filter((x) => x !== name).join(', ');
      out.push(change('ioctl-number-collision', 'ioctl', name, `${name} shares ${hex(Number(num))} with ${others} on the ${fd} fd`));
    }
  }
  return out;
}

/** Every ioctl number shared within one fd class, for the compat tests and docs. */
export function ioctlNumberGroups(spec: Spec): Array<{ fd: string; number: number; names: string[] }> {
  return [...sharedNumbers(spec)].map(([key, names]) => {
    const [fd, num] = key.split(':');
    return { fd, number: Number(num), names: names.sort() };
  });
}
