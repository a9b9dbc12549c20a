import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FetchError } from './errors.js';

/**
 * Which Debian mirror to fetch from: the one this machine's apt already uses. The project names no
 * mirror host of its own, so a machine behind a local mirror, a proxy-only mirror or a snapshot
 * keeps working without configuration. KVM_TS_DEBIAN_MIRROR / KVM_TS_DEBIAN_SECURITY_MIRROR win.
 */

/** One `deb` entry of apt's sources, in either format. */
export interface AptSourceEntry {
  uris: string[];
  suites: string[];
  components: string[];
  /** A keyring path from signed-by / Signed-By (an inline key block is not kept). */
  signedBy?: string;
  /** "file:line" of the entry, for messages. */
  from: string;
}

export interface MirrorChoice {
  uri: string;
  signedBy?: string;
  /** Where the choice came from: "file:line" or the environment variable. */
  from: string;
}

export interface DebianMirrors {
  archive: MirrorChoice;
  /** The security archive (suites named <codename>-security); absent when none is configured. */
  security?: MirrorChoice;
}

export const MIRROR_ENV = 'KVM_TS_DEBIAN_MIRROR';
export const SECURITY_MIRROR_ENV = 'KVM_TS_DEBIAN_SECURITY_MIRROR';

const CODENAMES = [
  'buzz', 'rex', 'bo', 'hamm', 'slink', 'potato', 'woody', 'sarge', 'etch', 'lenny', 'squeeze', 'wheezy',
  'jessie', 'stretch', 'buster', 'bullseye', 'bookworm', 'trixie', 'forky', 'duke', 'sid',
  'stable', 'oldstable', 'oldoldstable', 'testing', 'unstable', 'experimental', 'rc-buggy',
];
const DEBIAN_SUITE = new RegExp(`^(?:${CODENAMES.join('|')})(?:-updates|-backports|-backports-sloppy|-proposed-updates|-security|/updates)?$`);
const SECURITY_SUITE = /(?:-security|\/updates)$/;

/** A suite name Debian itself publishes (not Ubuntu's, not a third-party repository's "nodistro"). */
export function isDebianSuite(suite: string): boolean {
  return DEBIAN_SUITE.test(suite);
}

export function isSecuritySuite(suite: string): boolean {
  return SECURITY_SUITE.test(suite);
}

function keyringPath(value: string | undefined): string | undefined {
  const v = value?.trim();
  return v && v.startsWith('/') && !/\s/.test(v) ? v : undefined;
}

/** One-line sources.list(5) entries: `deb [opt=val …] uri suite [component …]`. */
export function parseOneLineSources(text: string, file: string): AptSourceEntry[] {
  const entries: AptSourceEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const m = /^(\S+)\s*(?:\[([^\]]*)\])?\s*(.*)$/.exec(line);
    if (!m || m[1] !== 'deb') return;
    const options = new Map<string, string>();
    for (const opt of (m[2] ?? '').trim().split(/\s+/).filter(Boolean)) {
      const eq = opt.indexOf('=');
      if (eq > 0) options.set(opt.slice(0, eq).toLowerCase(), opt.slice(eq + 1));
    }
    const [uri, suite, ...components] = m[3].split(/\s+/).filter(Boolean);
    if (!uri || !suite) return;
    entries.push({ uris: [uri], suites: [suite], components, signedBy: keyringPath(options.get('signed-by')), from: `${file}:${i + 1}` });
  });
  return entries;
}

/** deb822 `.sources` stanzas (sources.list(5) "DEB822-STYLE FORMAT"). */
export function parseDeb822Sources(text: string, file: string): AptSourceEntry[] {
  const entries: AptSourceEntry[] = [];
  let fields = new Map<string, string>();
  let last: string | undefined;
  let start = 0;
  const flush = (): void => {
    if (fields.size > 0) {
      const list = (name: string): string[] => (fields.get(name) ?? '').split(/\s+/).filter(Boolean);
      const enabled = (fields.get('enabled') ?? 'yes').trim().toLowerCase() !== 'no';
      if (enabled && list('types').includes('deb') && list('uris').length > 0 && list('suites').length > 0) {
        entries.push({ uris: list('uris'), suites: list('suites'), components: list('components'), signedBy: keyringPath(fields.get('signed-by')), from: `${file}:${start}` });
      }
    }
    fields = new Map();
    last = undefined;
  };
  text.split('\n').forEach((raw, i) => {
    if (raw.startsWith('#')) return;
    if (raw.trim() === '') return flush();
    if (/^[ \t]/.test(raw)) {
      // A continuation line (multi-line Signed-By key blocks, long URI lists).
      if (last) fields.set(last, `${fields.get(last)}\n${raw.trim()}`);
      return;
    }
    const colon = raw.indexOf(':');
    if (colon <= 0) return;
    if (fields.size === 0) start = i + 1;
    last = raw.slice(0, colon).trim().toLowerCase();
    fields.set(last, raw.slice(colon + 1).trim());
  });
  flush();
  return entries;
}

export interface AptSourceFiles {
  /** Dir::Etc::sourcelist (one-line format). */
  sourceList: string;
  /** Dir::Etc::sourceparts: *.list (one-line) and *.sources (deb822) files. */
  sourceParts: string;
}

/** Where this machine's apt reads its sources, as apt-config reports it (defaults without apt). */
export function aptSourceFiles(): AptSourceFiles {
  const fallback = { sourceList: '/etc/apt/sources.list', sourceParts: '/etc/apt/sources.list.d' };
  const r = spawnSync('apt-config', ['shell', 'SL', 'Dir::Etc::sourcelist/f', 'SP', 'Dir::Etc::sourceparts/d'], { encoding: 'utf8' });
  if (r.status !== 0) return fallback;
  const value = (name: string): string | undefined => new RegExp(`^${name}='([^']*)'`, 'm').exec(r.stdout)?.[1];
  return { sourceList: value('SL') ?? fallback.sourceList, sourceParts: (value('SP') ?? fallback.sourceParts).replace(/\/$/, '') };
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Every `deb` entry in apt's reading order: sources.list, then the parts directory by file name. */
export function readAptSources(files: AptSourceFiles): AptSourceEntry[] {
  const entries = parseOneLineSources(readOrEmpty(files.sourceList), files.sourceList);
  let parts: string[] = [];
  try {
    // apt ignores every other extension (.disabled, .save, .dpkg-dist, …).
    parts = readdirSync(files.sourceParts).filter((n) => /^[A-Za-z0-9_.-]+\.(?:list|sources)$/.test(n)).sort();
  } catch {
    // No parts directory: only sources.list.
  }
  for (const name of parts) {
    const path = join(files.sourceParts, name);
    const text = readOrEmpty(path);
    entries.push(...(name.endsWith('.sources') ? parseDeb822Sources(text, path) : parseOneLineSources(text, path)));
  }
  return entries;
}

function firstFor(entries: AptSourceEntry[], security: boolean): MirrorChoice | undefined {
  for (const e of entries) {
    const suites = e.suites.filter((s) => isDebianSuite(s) && isSecuritySuite(s) === security);
    const uri = e.uris.find((u) => !u.startsWith('cdrom:'));
    if (suites.length > 0 && uri && e.components.includes('main')) return { uri: uri.replace(/\/+$/, ''), signedBy: e.signedBy, from: e.from };
  }
  return undefined;
}

export interface DiscoverOptions {
  files?: AptSourceFiles;
  env?: NodeJS.ProcessEnv;
}

/**
 * The Debian archive and security archive to fetch from: the environment's overrides, else the
 * first Debian entry of each kind in apt's own sources. Throws a one-line 'no-source' error naming
 * the variable to set when there is no archive at all.
 */
export function discoverMirrors(opts: DiscoverOptions = {}): DebianMirrors {
  const env = opts.env ?? process.env;
  const files = opts.files ?? aptSourceFiles();
  const entries = readAptSources(files);
  const fromEnv = (name: string): MirrorChoice | undefined => (env[name] ? { uri: env[name].replace(/\/+$/, ''), from: name } : undefined);
  const archive = fromEnv(MIRROR_ENV) ?? firstFor(entries, false);
  if (!archive) {
    throw new FetchError(
      'no-source',
      `no Debian archive in apt's sources (${files.sourceList}, ${files.sourceParts}/*.list, *.sources): set ${MIRROR_ENV} to a Debian mirror's URL`,
    );
  }
  const security = fromEnv(SECURITY_MIRROR_ENV) ?? firstFor(entries, true);
  return security ? { archive, security } : { archive };
}
