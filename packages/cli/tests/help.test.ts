/**
 * `--help`, `-h` and `kvm-cli help COMMAND` on every command: exit 0 and one line per option, and
 * the options the help lists are exactly those the command's parser accepts (each one is given to
 * the real command, which must take it), so neither can drift from the other.
 */
import test from 'ava';
import { COMMANDS } from '../src/main.js';
import { allOptions, parseOptions } from '../src/usage.js';
import { cli } from './helpers/cli.js';

/** `  -k, --kernel KERNEL   text` or `      --rng   text`: the flag, its short form, its value, its text. */
const OPTION_LINE = /^ {2}(?:-(\w), | {4})--([\w-]+)(?: (\S+))?(?: {2,}(.*))?$/;

interface Listed {
  short?: string;
  flag?: string;
  arg?: string;
  help?: string;
  /** A line of the options section that is no option line. */
  line?: string;
}

function helpOptions(text: string): Listed[] {
  const lines = text.split('\n');
  const start = lines.indexOf('options:');
  const end = lines.indexOf('', start);
  return lines.slice(start + 1, end === -1 ? undefined : end).map((line) => {
    const m = OPTION_LINE.exec(line);
    return m ? { short: m[1], flag: m[2], arg: m[3], help: m[4] ?? '' } : { line };
  });
}

for (const [name, load] of Object.entries(COMMANDS)) {
  test(`kvm-cli ${name} --help lists exactly the options its parser takes, each explained, and the parser takes each`, async (t) => {
    const { spec } = await load();
    const words = name.split(' ');
    const help = cli(...words, '--help');
    t.is(help.code, 0, help.stderr);
    t.is(help.stderr, '');
    t.true(help.stdout.startsWith(`usage: kvm-cli ${name}`), help.stdout);
    const listed = helpOptions(help.stdout);
    for (const o of listed) t.is(o.line, undefined, `an option line that is not one: ${JSON.stringify(o)}`);
    const options = listed.map((o) => ({ short: o.short, flag: o.flag ?? '', arg: o.arg, help: o.help ?? '' }));
    for (const o of options) t.true(o.help.trim().length > 0, `--${o.flag} is explained`);
    // The parser's own options (what node:util parseArgs is given), against the help's.
    const parser = parseOptions(allOptions(spec));
    t.deepEqual(options.map((o) => o.flag).sort(), Object.keys(parser).sort());
    for (const o of options) {
      t.is(o.short, parser[o.flag].short, `the short form of --${o.flag}`);
      t.is(o.arg !== undefined, parser[o.flag].type === 'string', `--${o.flag} takes a value exactly when the help shows one`);
    }
    // The real command takes every option the help lists, long and short, and -h too.
    const every = options.flatMap((o): string[] => [o.short && o.flag !== 'help' ? `-${o.short}` : `--${o.flag}`, ...(o.arg !== undefined ? ['x'] : [])]).filter((w) => w !== '--help');
    const all = cli(...words, ...every, '-h');
    t.is(all.code, 0, all.stderr);
    t.is(all.stdout, help.stdout);
    const viaHelp = cli('help', ...words);
    t.is(viaHelp.code, 0, viaHelp.stderr);
    t.is(viaHelp.stdout, help.stdout);
    // One it does not list, it refuses as it always did.
    const unknown = cli(...words, '--no-such-option');
    t.is(unknown.code, 2);
    t.regex(unknown.stderr, /^kvm-cli: unknown option '--no-such-option' \(usage: kvm-cli /);
  });
}

test('kvm-cli --help, -h and help list every command; abi --help every abi command; unknown commands stay exit 2', (t) => {
  for (const args of [['--help'], ['-h'], ['help']]) {
    const r = cli(...args);
    t.is(r.code, 0, r.stderr);
    for (const name of Object.keys(COMMANDS)) t.true(r.stdout.includes(`  kvm-cli ${name}`), `${args.join(' ')} lists ${name}`);
  }
  t.is(cli().code, 2, 'no command is still a usage error');
  for (const args of [['abi', '--help'], ['abi', '-h'], ['help', 'abi']]) {
    const r = cli(...args);
    t.is(r.code, 0, r.stderr);
    for (const name of Object.keys(COMMANDS)) t.is(r.stdout.includes(`  kvm-cli ${name}`), name.startsWith('abi '), `${args.join(' ')} and ${name}`);
  }
  for (const args of [['nope'], ['abi', 'nope'], ['help', 'nope'], ['abi']]) {
    const r = cli(...args);
    t.is(r.code, 2, args.join(' '));
    t.regex(r.stderr, /^kvm-cli: unknown command '[^']+' \(see kvm-cli --help\)\n$/);
  }
});
