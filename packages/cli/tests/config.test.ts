/**
 * `kvm-cli run --config FILE.json` and `--print-config`: the round trip (a printed config fed back
 * gives the same config, and the same VM), flags over the file, relative paths, every error path
 * naming the file and the JSON path; and the JSON Schemas in docs/schemas/ checked against the zod
 * schemas they are generated from (the committed text, and ajv's verdicts against zod's on
 * generated documents).
 */
import test from 'ava';
import fc from 'fast-check';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { controlSchemas, loadZod } from '@kvm-ts/hypervisor/control';
import { builtinGuestPath } from '@kvm-ts/hypervisor';
import { configSchema, RUN_OPTIONS } from '../src/run-options.js';
import { SCHEMA_DIR, schemaFiles } from '../scripts/schemas.js';
import { kvmTests } from './helpers/kvm.js';

const BIN = fileURLToPath(new URL('../bin/kvm-cli.js', import.meta.url));
const kvm = kvmTests('config file runs');

function cli(args: string[], cwd?: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd, timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function temp(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function printed(t: import('ava').ExecutionContext, args: string[], cwd?: string): Record<string, unknown> {
  const r = cli(['run', ...args, '--print-config'], cwd);
  t.is(r.status, 0, r.stderr);
  t.is(r.stderr, '');
  return JSON.parse(r.stdout);
}

function oneLine(t: import('ava').ExecutionContext, r: ReturnType<typeof cli>, pattern: RegExp) {
  t.is(r.status, 2, r.stderr);
  t.is(r.stdout, '');
  t.is(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  t.regex(r.stderr.trimEnd(), pattern);
}

test('--print-config prints every option with its default, and a command line as a file', (t) => {
  t.deepEqual(printed(t, []), { cpus: 1, memory: '256M', disks: [], network: [], rng: false, console: 'serial', acpi: true, debugPort: false, debugExit: false, hostDecompress: true, withoutCap: [] });
  const guest = builtinGuestPath();
  const full = printed(t, ['-k', guest, '-p', 'spin', '-c', '2', '-m', '1G', '--debug-port', '--timeout', '2.5', '--no-host-decompress',
    '--abi', '6.1', '--kernel-caps-as', '5.10', '--without-cap', 'KVM_CAP_IRQFD,KVM_CAP_IOEVENTFD', '--name', 'vm-1']);
  t.deepEqual(full, {
    kernel: guest,
    cmdline: 'spin',
    cpus: 2,
    memory: '1G',
    disks: [],
    network: [],
    rng: false,
    console: 'serial',
    acpi: true,
    debugPort: true,
    debugExit: false,
    timeout: 2.5,
    hostDecompress: false,
    abi: '6.1',
    kernelCapsAs: '5.10',
    withoutCap: ['KVM_CAP_IRQFD', 'KVM_CAP_IOEVENTFD'],
    name: 'vm-1',
  });
  t.deepEqual(Object.keys(full), RUN_OPTIONS.map((o) => o.key).filter((k) => k in full), 'the order of the table');
});

test('a printed config fed back prints the same; flags override the file; paths are relative to the file', (t) => {
  const dir = temp(t);
  const first = printed(t, ['-p', 'spin memtest=0', '-c', '3', '-m', '4100K', '--without-cap', 'KVM_CAP_IRQFD', '--name', 'rt']);
  const file = join(dir, 'vm.json');
  writeFileSync(file, JSON.stringify(first));
  t.deepEqual(printed(t, ['--config', file]), first);
  t.deepEqual(printed(t, ['--config', file, '-c', '1', '--without-cap', 'KVM_CAP_IOEVENTFD', '--name', 'other']), {
    ...first,
    cpus: 1,
    withoutCap: ['KVM_CAP_IOEVENTFD'],
    name: 'other',
  });
  // A relative path in a file is the file's directory's; on the command line, the cwd's.
  mkdirSync(join(dir, 'images'));
  writeFileSync(join(dir, 'images', 'kernel'), 'x');
  writeFileSync(join(dir, 'rel.json'), JSON.stringify({ kernel: 'images/kernel', memory: 64 }));
  t.like(printed(t, ['--config', 'rel.json'], dir), { kernel: join(dir, 'images', 'kernel'), memory: '64M' });
  t.like(printed(t, ['-k', 'kernel'], join(dir, 'images')), { kernel: join(dir, 'images', 'kernel') });
});

test('config file errors name the file and the JSON path, in one line, exit 2', (t) => {
  const dir = temp(t);
  const write = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const run = (name: string, text: string) => cli(['run', '--config', write(name, text), '--print-config']);
  oneLine(t, cli(['run', '--config', join(dir, 'none.json')]), /^kvm-cli: --config: .*none\.json: no such file$/);
  oneLine(t, cli(['run', '--config', dir]), /--config: .*: is a directory$/);
  oneLine(t, run('a.json', '{"cpus": 2,'), /^kvm-cli: .*a\.json: not JSON \(/);
  oneLine(t, run('b.json', '[1]'), /^kvm-cli: .*b\.json: Invalid input: expected object, received array$/);
  oneLine(t, run('c.json', '{"cpus": 2, "disk": "x"}'), /^kvm-cli: .*c\.json: disk: unknown option \(options: kernel, initrd, cmdline, cpus, memory,/);
  oneLine(t, run('d.json', '{"cpus": "two"}'), /^kvm-cli: .*d\.json: cpus: Invalid input: expected number, received string$/);
  oneLine(t, run('e.json', '{"cpus": 0}'), /^kvm-cli: .*e\.json: cpus: Too small/);
  oneLine(t, run('f.json', '{"memory": "lots"}'), /^kvm-cli: .*f\.json: memory: 'lots' is not a size \(e\.g\. 256, 512M, 2G\)$/);
  oneLine(t, run('g.json', '{"memory": "5K"}'), /^kvm-cli: .*g\.json: memory: 5K is not a whole number of 4 KiB pages$/);
  oneLine(t, run('h.json', '{"kernel": "/nonexistent/vmlinuz"}'), /^kvm-cli: .*h\.json: kernel: no such file \(\/nonexistent\/vmlinuz\)$/);
  oneLine(t, run('i.json', '{"initrd": "."}'), /^kvm-cli: .*i\.json: initrd: not a regular file \(\.\)$/);
  oneLine(t, run('j.json', '{"withoutCap": ["KVM_CAP_IRQFD", 7]}'), /^kvm-cli: .*j\.json: withoutCap\[1\]: Invalid input: expected string, received number$/);
  oneLine(t, run('k.json', '{"withoutCap": ["KVM_CAP_BOGUS"]}'), /^kvm-cli: .*k\.json: withoutCap: 'KVM_CAP_BOGUS' is not a KVM_CAP_\* of any pinned spec$/);
  oneLine(t, run('l.json', '{"abi": "1.0"}'), /^kvm-cli: .*l\.json: abi: no x86_64 spec '1\.0'/);
  oneLine(t, run('m.json', '{"console": "hvc"}'), /^kvm-cli: .*m\.json: console: Invalid option: expected one of "serial"\|"virtio"$/);
  const disk = write('disk.img', '');
  oneLine(t, run('s.json', JSON.stringify({ disks: [{ path: disk }, { path: 'nope.img' }] })), /^kvm-cli: .*s\.json: disks\[1\]\.path: no such file \(nope\.img\)$/);
  oneLine(t, run('u.json', '{"disks": [{"path": "x", "rw": true}]}'), /^kvm-cli: .*u\.json: disks\[0\]\.rw: unknown key$/);
  oneLine(t, run('n.json', '{"timeout": -1}'), /^kvm-cli: .*n\.json: timeout: Too small/);
  oneLine(t, run('o.json', '{"name": "a/b"}'), /^kvm-cli: .*o\.json: name: 'a\/b' is not a VM name/);
  oneLine(t, run('p.json', '{"debugPort": "yes"}'), /^kvm-cli: .*p\.json: debugPort: Invalid input: expected boolean, received string$/);
  // A flag's own error still names the flag, even with a file.
  oneLine(t, cli(['run', '--config', write('q.json', '{}'), '-m', 'lots']), /^kvm-cli: --mem: 'lots' is not a size/);
  t.deepEqual(printed(t, ['--config', write('r.json', '{"$schema": "../docs/schemas/run-config.schema.json"}')]), printed(t, []));
});

kvm('the VM a config file describes is the VM its command line describes', (t) => {
  const dir = temp(t);
  const args = ['-c', '2', '-m', '128M', '-p', 'exit=9 memtest=1', '--without-cap', 'KVM_CAP_IRQFD'];
  const file = join(dir, 'vm.json');
  writeFileSync(file, cli(['run', ...args, '--print-config']).stdout);
  const byFlags = cli(['run', ...args, '--json']);
  const byFile = cli(['run', '--config', file, '--json']);
  t.is(byFlags.status, 9, byFlags.stderr);
  t.is(byFile.status, 9, byFile.stderr);
  const pick = (s: string) => {
    const { exitReason, status, cpus, memMiB, abi, fallbacks } = JSON.parse(s);
    return { exitReason, status, cpus, memMiB, abi, fallbacks };
  };
  t.deepEqual(pick(byFile.stdout), pick(byFlags.stdout));
  t.like(pick(byFile.stdout), { cpus: 2, memMiB: 128, status: 9 });
  t.true(JSON.stringify(pick(byFile.stdout).fallbacks).includes('KVM_CAP_IRQFD'));
  const console = byFile.stderr.replace(/rtc: [^\n]*\n/, '');
  t.is(console, byFlags.stderr.replace(/rtc: [^\n]*\n/, ''), 'the same guest output');
  // kvmts.nonet: a host whose passt cannot give the default network tells the guest so.
  t.regex(console, /cmdline: "console=ttyS0 kvmts\.scratch (kvmts\.nonet )?exit=9 memtest=1 virtio_mmio\.device=/);
});

test('docs/control.md lists every option of the table with its flag', (t) => {
  const doc = readFileSync(fileURLToPath(new URL('../../../docs/control.md', import.meta.url)), 'utf8');
  for (const o of RUN_OPTIONS) {
    const flag = o.short ? `-${o.short}` : `--${o.flag}`;
    t.true(doc.includes(`| \`${o.key}\` | \`${flag}\` |`), `docs/control.md has no row for ${o.key} (${flag})`);
  }
});

test('docs/schemas/ holds exactly what the zod schemas generate (npm run schemas)', (t) => {
  for (const [name, text] of Object.entries(schemaFiles())) t.is(readFileSync(SCHEMA_DIR + name, 'utf8'), text, `docs/schemas/${name} is stale`);
});

const ajv = new Ajv2020({ strict: false, allErrors: false });

test('the config JSON Schema accepts and refuses what the zod schema does', (t) => {
  const z = loadZod();
  const zodSchema = configSchema(z);
  const validate = ajv.compile(JSON.parse(schemaFiles()['run-config.schema.json']));
  const keys = [...RUN_OPTIONS.map((o) => o.key), '$schema', 'bogus'];
  const value = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('serial', 'x', 0, 1, 2.5, -1, true, [], ['KVM_CAP_IRQFD']));
  let accepted = 0;
  fc.assert(
    fc.property(fc.dictionary(fc.constantFrom(...keys), value, { maxKeys: 5 }), (doc) => {
      const byZod = zodSchema.safeParse(doc).success;
      t.is(validate(doc), byZod, JSON.stringify(doc));
      if (byZod) accepted++;
    }),
    { numRuns: 2000 },
  );
  t.true(accepted > 50, `only ${accepted} generated documents were valid`);
});

test('the control JSON Schemas accept and refuse what the zod schemas do', (t) => {
  const s = controlSchemas();
  const files = schemaFiles();
  const request = ajv.compile(JSON.parse(files['control-request.schema.json']));
  const reply = ajv.compile(JSON.parse(files['control-reply.schema.json']));
  const methods = Object.keys(s.methods);
  const req = fc.record(
    {
      v: fc.constantFrom(1, 1, 1, 2),
      id: fc.oneof(fc.integer(), fc.string({ maxLength: 4 }), fc.integer(), fc.constant(null), fc.constant(1.5)),
      method: fc.constantFrom(...methods, 'nope'),
      params: fc.oneof(fc.constant({}), fc.record({ vcpu: fc.oneof(fc.nat(3), fc.constant(-1)) }, { requiredKeys: [] }), fc.record({ backlog: fc.boolean() }), fc.jsonValue({ maxDepth: 1 })),
      extra: fc.constant(1),
    },
    { requiredKeys: ['v', 'id', 'method'] },
  ).map((r) => {
    // An unknown member is rare, so that most documents get past the envelope.
    if ('extra' in r && typeof r.id === 'number' && r.id % 4 !== 0) delete (r as { extra?: number }).extra;
    return r;
  });
  let valid = 0;
  fc.assert(
    fc.property(req, (r) => {
      const byZod = s.request.safeParse(r).success;
      t.is(request(r), byZod, JSON.stringify(r));
      if (byZod) valid++;
    }),
    { numRuns: 2000 },
  );
  t.true(valid > 50, `only ${valid} generated requests were valid`);
  const samples = [
    { v: 1, id: 1, result: { state: 'paused', changed: true } },
    { v: 1, id: 'a', result: { state: 'stopped', exitReason: 'stopped', status: 0 } },
    { v: 1, id: null, error: { code: 'parse-error', message: 'x' } },
    { v: 1, id: 1, error: { code: 'nope', message: 'x' } },
    { v: 1, id: 1, result: { state: 'paused' } },
    { v: 1, id: 1, result: { backlogBytes: 3 } },
    { v: 2, id: 1, result: { backlogBytes: 3 } },
  ];
  for (const r of samples) t.is(reply(r), s.reply.safeParse(r).success, JSON.stringify(r));
});
