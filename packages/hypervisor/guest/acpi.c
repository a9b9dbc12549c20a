/*
 * kvmts.acpi=poweroff|reboot: the guest ends the VM the way an ACPI OS does, from the tables alone.
 * The RSDP is found by scanning the BIOS area (0xE0000-0xFFFFF on 16-byte boundaries, signature
 * and both checksums, as ACPICA does), then the XSDT and the FADT (checksums verified). Poweroff
 * takes SLP_TYPa from the DSDT's \_S5_ package and writes it with SLP_EN to PM1a_CNT; reboot
 * writes RESET_VALUE to RESET_REG. Both are byte writes to the high byte of PM1a_CNT or the reset
 * port: the ring-0 #GP path of nested PVM hosts emulates byte-wide `out` only (README).
 */
#include "guest.h"

#define BIOS_AREA 0xe0000ull
#define BIOS_AREA_END 0x100000ull
/* Everything the tables point to must lie in the identity map the guest runs on. */
#define TABLE_LIMIT 0xc0000000ull
#define TABLE_MAX_LEN 0x100000u
#define SIG(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
/* FADT offsets (ACPI 6.5 Table 5.9) */
#define FADT_DSDT 40
#define FADT_PM1A_CNT_BLK 64
#define FADT_FLAGS 112
#define FADT_RESET_REG 116
#define FADT_RESET_VALUE 128
#define FADT_X_DSDT 140
#define FADT_RESET_REG_SUP (1u << 10)
#define GAS_SYSTEM_IO 1
#define SLP_EN_HIGH_BYTE (1u << 5) /* SLP_EN is PM1_CNT bit 13 */
#define SLP_TYP_HIGH_SHIFT 2       /* SLP_TYP is PM1_CNT bits 12:10 */
#define AML_PACKAGE_OP 0x12
#define AML_BYTE_PREFIX 0x0a
#define SETTLE_SPINS (1ull << 26)

static inline uint8_t rd8(uint64_t a) { return *(volatile uint8_t *)a; }
static inline uint32_t rd32(uint64_t a) { return *(volatile uint32_t *)a; }
static inline uint64_t rd64(uint64_t a) { return *(volatile uint64_t *)a; }
static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }

static int sum_ok(uint64_t a, uint32_t len) {
  uint8_t s = 0;
  for (uint32_t i = 0; i < len; i++) s = (uint8_t)(s + rd8(a + i));
  return s == 0;
}

/* The VMM ends the run while handling the write; until its stop reaches this vCPU, wait (bounded). */
static void settle(void) {
  for (uint64_t i = 0; i < SETTLE_SPINS; i++) cpu_pause();
}

static int fail_(const char *why) {
  puts_("acpi: ");
  puts_(why);
  puts_(": FAIL\n");
  return -1;
}

static uint64_t find_rsdp(void) {
  for (uint64_t a = BIOS_AREA; a < BIOS_AREA_END; a += 16) {
    if (rd32(a) != SIG('R', 'S', 'D', ' ') || rd32(a + 4) != SIG('P', 'T', 'R', ' ') || !sum_ok(a, 20)) continue;
    if (rd8(a + 15) >= 2 && (rd32(a + 20) < 36 || !sum_ok(a, rd32(a + 20)))) continue;
    return a;
  }
  return 0;
}

/* A table at `a` with signature `sig`, inside the map and checksummed; its length, or 0. */
static uint32_t table_ok(uint64_t a, uint32_t sig) {
  if (a == 0 || a >= TABLE_LIMIT - 36 || rd32(a) != sig) return 0;
  uint32_t len = rd32(a + 4);
  if (len < 36 || len > TABLE_MAX_LEN || a + len > TABLE_LIMIT || !sum_ok(a, len)) return 0;
  return len;
}

/* SLP_TYPa of \_S5_: Name(_S5_, Package(){ SLP_TYPa, … }) in the DSDT's AML. */
static int s5_sleep_type(uint64_t dsdt, uint32_t len) {
  for (uint64_t p = dsdt + 36; p + 12 < dsdt + len; p++) {
    if (rd32(p) != SIG('_', 'S', '5', '_') || rd8(p + 4) != AML_PACKAGE_OP) continue;
    uint64_t q = p + 5;
    q += 1 + (rd8(q) >> 6); /* PkgLength: lead byte and the bytes its bits 7-6 count */
    q += 1;                 /* NumElements */
    uint8_t op = rd8(q);
    if (op == 0x00 || op == 0x01) return op; /* ZeroOp, OneOp */
    if (op == AML_BYTE_PREFIX) return rd8(q + 1);
    return -1;
  }
  return -1;
}

int acpi_option(const char *w, size_t n, int *action) {
  if (word_is(w, n, "kvmts.acpi=poweroff")) *action = ACPI_POWEROFF;
  else if (word_is(w, n, "kvmts.acpi=reboot")) *action = ACPI_REBOOT;
  else return 0;
  return 1;
}

int acpi_act(int action) {
  uint64_t rsdp = find_rsdp();
  if (!rsdp) return fail_("no valid RSDP in the BIOS area");
  uint64_t xsdt = rd8(rsdp + 15) >= 2 ? rd64(rsdp + 24) : 0;
  uint32_t xlen = table_ok(xsdt, SIG('X', 'S', 'D', 'T'));
  if (!xlen) return fail_("no valid XSDT");
  uint64_t fadt = 0;
  uint32_t flen = 0;
  for (uint32_t off = 36; off + 8 <= xlen && !flen; off += 8) {
    fadt = rd64(xsdt + off);
    flen = table_ok(fadt, SIG('F', 'A', 'C', 'P'));
  }
  if (flen < FADT_X_DSDT + 8) return fail_("no valid FADT in the XSDT");
  puts_("acpi: RSDP at ");
  puthex(rsdp);
  puts_(", XSDT at ");
  puthex(xsdt);
  puts_(", FADT at ");
  puthex(fadt);
  putc_('\n');
  if (action == ACPI_REBOOT) {
    if (!(rd32(fadt + FADT_FLAGS) & FADT_RESET_REG_SUP)) return fail_("the FADT has no reset register");
    if (rd8(fadt + FADT_RESET_REG) != GAS_SYSTEM_IO) return fail_("the reset register is not an I/O port");
    uint64_t port = rd64(fadt + FADT_RESET_REG + 4);
    uint8_t value = rd8(fadt + FADT_RESET_VALUE);
    puts_("acpi: reboot: ");
    puthexw(value, 2);
    puts_(" to RESET_REG ");
    puthexw(port, 4);
    putc_('\n');
    outb((uint16_t)port, value);
    settle();
    return fail_("the reset write did not end the VM");
  }
  uint64_t dsdt = rd64(fadt + FADT_X_DSDT);
  if (!dsdt) dsdt = rd32(fadt + FADT_DSDT);
  uint32_t dlen = table_ok(dsdt, SIG('D', 'S', 'D', 'T'));
  if (!dlen) return fail_("no valid DSDT");
  int typ = s5_sleep_type(dsdt, dlen);
  if (typ < 0 || typ > 7) return fail_("no \\_S5_ package in the DSDT");
  uint32_t cnt = rd32(fadt + FADT_PM1A_CNT_BLK);
  if (!cnt || cnt > 0xfffe) return fail_("the FADT has no PM1a_CNT_BLK");
  puts_("acpi: poweroff: SLP_TYP ");
  putdec((uint64_t)typ);
  puts_(" of \\_S5_ with SLP_EN to PM1a_CNT ");
  puthexw(cnt, 4);
  putc_('\n');
  outb((uint16_t)(cnt + 1), (uint8_t)((unsigned)typ << SLP_TYP_HIGH_SHIFT | SLP_EN_HIGH_BYTE));
  settle();
  return fail_("the sleep write did not end the VM");
}
