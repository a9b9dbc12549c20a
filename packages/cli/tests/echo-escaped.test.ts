/**
 * Error lines that echo a flag's or a config file's text print terminal escapes, NUL and newlines
 * escaped (#24): what a hostile config holds cannot retitle or recolour the terminal, or add lines.
 */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'kvm-ts-echo-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test('a --name with an escape sequence is echoed escaped', (t) => {
  const r = cli('run', '--name', '\x1b[31mred\x07');
  t.is(r.code, 2);
  t.is(r.stderr, "kvm-cli: --name: '\\x1b[31mred\\x07' is not a VM name (1–64 letters, digits, '.', '_' or '-', starting with a letter or digit)\n");
});

test('a config key with a title-setting escape and a newline stays one escaped line', (t) => {
  const path = join(dir, 'vm.json');
  writeFileSync(path, JSON.stringify({ '\x1b]0;pwned\x07\nkvm-cli: fake': 1 }));
  const r = cli('run', '--config', path);
  t.is(r.code, 2);
  t.is(r.stderr.split('\n').length, 2, r.stderr);
  t.false(r.stderr.includes('\x1b'));
  t.regex(r.stderr, /\\x1b\]0;pwned\\x07\\x0akvm-cli: fake: unknown option/);
});
