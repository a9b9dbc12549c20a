import test from 'ava';
import fc from 'fast-check';
import { AcpiPm } from '../src/devices/legacy/acpi-pm.js';
import { PM1_CNT_SCI_EN, PM1_CNT_SLP_EN, PM1_PWRBTN, PM1A_CNT_PORT, PM1A_EVT_PORT, RESET_PORT, RESET_VALUE, SCI_IRQ, SLP_TYP_S5 } from '../src/arch/x86/acpi/hardware.js';
import { FakeHost } from './helpers/fake-host.js';

const STS = PM1A_EVT_PORT;
const EN = PM1A_EVT_PORT + 2;
const CNT = PM1A_CNT_PORT;
const S5 = (SLP_TYP_S5 << 10) | PM1_CNT_SLP_EN;

function pm() {
  const host = new FakeHost();
  return { host, d: new AcpiPm(host) };
}

test('claims the PM1a event block, the PM1a control block and the reset register the FADT names', (t) => {
  t.deepEqual(pm().d.ports, [
    [0x600, 4],
    [0x604, 2],
    [0x608, 1],
  ]);
});

test('SLP_TYP of \\_S5_ with SLP_EN ends the run as "poweroff", status 0 (a 16-bit write, as ACPICA makes it)', (t) => {
  const { host, d } = pm();
  d.write(CNT, 2, S5 | PM1_CNT_SCI_EN);
  t.deepEqual(host.exits, [{ status: 0, reason: 'poweroff' }]);
  t.deepEqual(host.logs, []);
});

test('SLP_TYP written first and SLP_EN after it (Linux writes the two in turn) is a poweroff too; byte-wide halves as well', (t) => {
  const { host, d } = pm();
  d.write(CNT, 2, SLP_TYP_S5 << 10);
  t.deepEqual(host.exits, []);
  d.write(CNT + 1, 1, S5 >> 8);
  t.deepEqual(host.exits, [{ status: 0, reason: 'poweroff' }]);
});

test('RESET_VALUE to the reset register ends the run as "reboot", status 0, like the i8042 reset line', (t) => {
  const { host, d } = pm();
  d.write(RESET_PORT, 1, RESET_VALUE);
  t.deepEqual(host.exits, [{ status: 0, reason: 'reboot' }]);
});

test('PM1_CNT reads SCI_EN set (always in ACPI mode) and keeps SLP_TYP, but never SLP_EN', (t) => {
  const { d } = pm();
  t.is(d.read(CNT, 2), PM1_CNT_SCI_EN);
  d.write(CNT, 2, 0);
  t.is(d.read(CNT, 2) & PM1_CNT_SCI_EN, PM1_CNT_SCI_EN, 'SCI_EN cannot be cleared');
  d.write(CNT, 2, 3 << 10);
  t.is(d.read(CNT, 2), (3 << 10) | PM1_CNT_SCI_EN);
  t.is(d.read(CNT, 1), PM1_CNT_SCI_EN);
  t.is(d.read(CNT + 1, 1), (3 << 10) >> 8);
});

test('PM1_STS is write-1-to-clear, PM1_EN read-write; the SCI (IRQ 9) is up while an enabled status bit is set', (t) => {
  const { host, d } = pm();
  d.pressPowerButton();
  t.is(d.read(STS, 2), PM1_PWRBTN);
  t.deepEqual(host.irqs, [], 'not enabled: no SCI');
  d.write(EN, 2, PM1_PWRBTN);
  t.is(d.read(EN, 2), PM1_PWRBTN);
  t.deepEqual(host.irqs, [[SCI_IRQ, true]]);
  d.write(STS, 2, 0);
  t.is(d.read(STS, 2), PM1_PWRBTN, 'writing 0 clears nothing');
  d.write(STS, 2, 0xffff & ~PM1_PWRBTN);
  t.is(d.read(STS, 2), PM1_PWRBTN, 'writing 1s elsewhere clears nothing of it');
  d.write(STS, 2, PM1_PWRBTN);
  t.is(d.read(STS, 2), 0);
  t.deepEqual(host.irqs, [
    [SCI_IRQ, true],
    [SCI_IRQ, false],
  ]);
  // One 32-bit access covers status and enable together.
  d.pressPowerButton();
  t.is(d.read(STS, 4), PM1_PWRBTN | (PM1_PWRBTN << 16));
  d.write(STS, 4, PM1_PWRBTN);
  t.is(d.read(STS, 4), 0, 'status cleared and enable written 0 in one access');
  t.is(host.irqLevel.get(SCI_IRQ), false);
  d.write(EN, 2, 0xffff);
  t.is(d.read(EN, 2), 0x4721, 'only the enable bits §4.8.3.1 defines stick');
});

test('hostile: no write but the two magic ones ends the run, and each kind of pointless write is logged once (property)', (t) => {
  const port = fc.oneof(fc.integer({ min: PM1A_EVT_PORT, max: RESET_PORT }), fc.constantFrom(STS, EN, CNT, CNT + 1, RESET_PORT));
  const size = fc.constantFrom(1, 2, 4, 3, 8, 0);
  const value = fc.oneof(fc.integer({ min: 0, max: 0xffff_ffff }), fc.constantFrom(0, RESET_VALUE, S5, PM1_CNT_SLP_EN, 0xffff_ffff));
  const validSize = (s: number) => s === 1 || s === 2 || s === 4;
  /** The byte the write puts at `at`, if it covers it. */
  const byteAt = (w: { port: number; size: number; value: number }, at: number) => (at >= w.port && at < w.port + w.size ? Math.floor(w.value / 2 ** (8 * (at - w.port))) & 0xff : undefined);
  let runs = 0;
  fc.assert(
    fc.property(fc.array(fc.record({ port, size, value }), { minLength: 1, maxLength: 40 }), (writes) => {
      runs++;
      const { host, d } = pm();
      for (const w of writes) {
        const before = host.exits.length;
        d.write(w.port, w.size, w.value);
        d.read(w.port, validSize(w.size) ? w.size : 1);
        if (host.exits.length === before) continue;
        const e = host.exits[host.exits.length - 1];
        if (host.exits.length !== before + 1 || e.status !== 0) return false;
        const reset = w.port === RESET_PORT && w.size === 1 && (w.value & 0xff) === RESET_VALUE;
        // SLP_EN is bit 5 of PM1_CNT's high byte; the SLP_TYP left in the register must be S5's.
        const slpEn = validSize(w.size) && ((byteAt(w, CNT + 1) ?? 0) & (PM1_CNT_SLP_EN >> 8)) !== 0;
        const s5 = ((d.read(CNT, 2) >> 10) & 7) === SLP_TYP_S5;
        if (e.reason === 'reboot' ? !reset : e.reason === 'poweroff' ? !(slpEn && s5) : true) return false;
      }
      return host.logs.length <= 3 && host.logs.every((l) => l.startsWith('acpi-pm: ')) && new Set(host.logs).size === host.logs.length;
    }),
    { numRuns: 2_000 },
  );
  t.log(`${runs} random write sequences`);
  t.pass();
});

test('hostile: a wrong reset value, a wide reset write, SLP_EN with another SLP_TYP and odd widths end nothing and log one line each', (t) => {
  const { host, d } = pm();
  for (let i = 0; i < 5; i++) {
    d.write(RESET_PORT, 1, RESET_VALUE ^ 1);
    d.write(RESET_PORT, 2, RESET_VALUE);
    d.write(CNT, 2, (1 << 10) | PM1_CNT_SLP_EN);
    d.write(CNT, 2, PM1_CNT_SLP_EN);
    d.write(STS, 3, 0xffffff);
  }
  t.deepEqual(host.exits, []);
  t.is(host.logs.length, 3, host.logs.join('\n'));
  t.regex(host.logs.join('\n'), /reset register/);
  t.regex(host.logs.join('\n'), /SLP_TYP 1/);
  t.regex(host.logs.join('\n'), /3-byte write/);
  t.deepEqual(d.counters(), { sleeps: 0, resets: 0, ignored: 25 });
});
