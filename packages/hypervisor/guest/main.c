/*
 * The kvm-ts built-in test guest, ring-3 part. Reports what the loader handed over (boot_params,
 * e820, command line, MP table), runs a few self-tests, and ends through the debug-exit port.
 * Command-line options are documented in README.md.
 */
#include "guest.h"

#define COM1 0x3f8
#define UART_THR 0
#define UART_RBR 0
#define UART_DLL 0
#define UART_IER 1
#define UART_DLM 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define MCR_LOOP_RTS_OUT2 0x1a
#define MSR_CTS_DCD 0x90

#define CMOS_INDEX 0x70
#define CMOS_DATA 0x71
#define POST_PORT 0x80

/* boot_params offsets (Documentation/arch/x86/zero-page.rst) */
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_VERSION 0x206
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_CMD_LINE_PTR 0x228
#define BP_E820_TABLE 0x2d0
#define E820_RAM 1
#define E820_ACPI 3
#define CMDLINE_MAX 2048

/* exit status bits for failed self-tests */
#define FAIL_MEMORY 0x01
#define FAIL_UART_SCRATCH 0x02
#define FAIL_UART_LOOPBACK 0x04
#define FAIL_BOOT_INFO 0x08
#define FAIL_VIRTIO 0x10

/* The identity map covers 4 GiB; RAM there ends at 3 GiB (the PCI hole). */
#define MAPPED_LIMIT 0xc0000000ull
#define TWO_MIB 0x200000ull
/* At most this much RAM for the virtio drivers' rings and buffers. */
#define VIRTIO_DMA_MAX (24ull << 20)

extern char __image_end[];

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outsb(uint16_t port, const void *buf, uint64_t n) {
  __asm__ volatile("rep outsb" : "+S"(buf), "+c"(n) : "d"(port) : "memory");
}
static inline uint8_t inb(uint16_t port) {
  uint8_t v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}

void *memset(void *d, int c, size_t n) {
  unsigned char *p = d;
  while (n--) *p++ = (unsigned char)c;
  return d;
}
void *memcpy(void *d, const void *s, size_t n) {
  unsigned char *p = d;
  const unsigned char *q = s;
  while (n--) *p++ = *q++;
  return d;
}

/* ---- console ---- */

void putc_(char c) {
  while (!(inb(COM1 + UART_LSR) & LSR_THRE)) {
  }
  outb(COM1 + UART_THR, (uint8_t)c);
}
void puts_(const char *s) {
  for (; *s; s++) {
    if (*s == '\n') putc_('\r');
    putc_(*s);
  }
}
void putdec(uint64_t v) {
  char buf[24];
  int i = 0;
  do buf[i++] = (char)('0' + v % 10); while ((v /= 10) != 0);
  while (i--) putc_(buf[i]);
}
static const char hex_digits[] = "0123456789abcdef";
void puthex(uint64_t v) {
  int shift = 60;
  puts_("0x");
  while (shift > 0 && ((v >> shift) & 0xf) == 0) shift -= 4;
  for (; shift >= 0; shift -= 4) putc_(hex_digits[(v >> shift) & 0xf]);
}
void puthexw(uint64_t v, int digits) {
  puts_("0x");
  for (int shift = 4 * (digits - 1); shift >= 0; shift -= 4) putc_(hex_digits[(v >> shift) & 0xf]);
}

static void serial_init(void) {
  outb(COM1 + UART_IER, 0);
  outb(COM1 + UART_LCR, 0x80); /* DLAB: divisor 1 = 115200 baud */
  outb(COM1 + UART_DLL, 1);
  outb(COM1 + UART_DLM, 0);
  outb(COM1 + UART_LCR, 0x03); /* 8N1 */
  outb(COM1 + UART_FCR, 0xc7); /* FIFO on, cleared, 14-byte trigger */
  outb(COM1 + UART_MCR, 0x0b); /* DTR, RTS, OUT2 */
}

/* ---- command line ---- */

struct options {
  int exit_set;
  uint64_t exit_code;
  int spin;
  uint64_t pio;
  uint64_t memtest_mib;
  int flood; /* 1: as a driver does, 16 bytes per THRE; 2 (flood=raw): never looks at LSR */
  uint64_t mmioscan;
  int acpi; /* kvmts.acpi=poweroff|reboot: ACPI_POWEROFF or ACPI_REBOOT */
  struct virtio_options virtio;
};

int parse_u64(const char *s, size_t n, uint64_t *out) {
  uint64_t v = 0;
  size_t i = 0;
  unsigned base = 10;
  if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) base = 16, i = 2;
  if (i >= n) return 0;
  for (; i < n; i++) {
    char c = s[i];
    unsigned d;
    if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
    else if (base == 16 && c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
    else if (base == 16 && c >= 'A' && c <= 'F') d = (unsigned)(c - 'A' + 10);
    else return 0;
    v = v * base + d;
  }
  *out = v;
  return 1;
}

int word_is(const char *w, size_t n, const char *key) {
  size_t i = 0;
  for (; key[i]; i++)
    if (i >= n || w[i] != key[i]) return 0;
  return i == n;
}

static void parse_options(const char *cmdline, struct options *o) {
  const char *p = cmdline;
  while (*p) {
    while (*p == ' ') p++;
    const char *w = p;
    while (*p && *p != ' ') p++;
    size_t n = (size_t)(p - w);
    if (n == 0) break;
    size_t eq = 0;
    while (eq < n && w[eq] != '=') eq++;
    const char *val = w + eq + 1;
    size_t vn = eq < n ? n - eq - 1 : 0;
    if (virtio_option(w, n, &o->virtio)) continue;
    if (acpi_option(w, n, &o->acpi)) continue;
    if (word_is(w, n, "spin")) o->spin = 1;
    else if (word_is(w, eq, "exit") && eq < n && parse_u64(val, vn, &o->exit_code)) o->exit_set = 1;
    else if (word_is(w, eq, "pio") && eq < n) parse_u64(val, vn, &o->pio);
    else if (word_is(w, eq, "memtest") && eq < n) parse_u64(val, vn, &o->memtest_mib);
    else if (word_is(w, n, "flood")) o->flood = 1;
    else if (word_is(w, n, "flood=raw")) o->flood = 2;
    else if (word_is(w, eq, "mmioscan") && eq < n) parse_u64(val, vn, &o->mmioscan);
  }
}

/* ---- boot information ---- */

static inline uint8_t rd8(uint64_t a) { return *(volatile uint8_t *)a; }
static inline uint16_t rd16(uint64_t a) { return *(volatile uint16_t *)a; }
static inline uint32_t rd32(uint64_t a) { return *(volatile uint32_t *)a; }
static inline uint64_t rd64(uint64_t a) { return *(volatile uint64_t *)a; }

static int checksum_ok(uint64_t a, uint32_t len) {
  uint8_t sum = 0;
  for (uint32_t i = 0; i < len; i++) sum = (uint8_t)(sum + rd8(a + i));
  return sum == 0;
}

/* The MP floating pointer, searched where the MP spec says: last KiB of base memory, then the BIOS ROM. */
static uint64_t find_mp_floating(void) {
  static const uint64_t ranges[][2] = {{0x9fc00, 0xa0000}, {0xf0000, 0x100000}};
  for (int r = 0; r < 2; r++)
    for (uint64_t a = ranges[r][0]; a < ranges[r][1]; a += 16)
      if (rd32(a) == 0x5f504d5f /* "_MP_" */ && checksum_ok(a, 16 * (uint32_t)rd8(a + 8))) return a;
  return 0;
}

static int report_mptable(void) {
  uint64_t fp = find_mp_floating();
  if (!fp) {
    puts_("mptable: not found\n");
    return -1;
  }
  uint64_t cfg = rd32(fp + 4);
  if (cfg == 0 || cfg >= MAPPED_LIMIT || rd32(cfg) != 0x504d4350 /* "PCMP" */ || !checksum_ok(cfg, rd16(cfg + 4))) {
    puts_("mptable: bad configuration table\n");
    return -1;
  }
  uint16_t count = rd16(cfg + 34);
  uint64_t p = cfg + 44, end = cfg + rd16(cfg + 4);
  int cpus = 0, bsp = -1, ioapic = -1, irqs = 0;
  for (uint16_t i = 0; i < count && p < end; i++) {
    uint8_t type = rd8(p);
    if (type == 0) {
      if (rd8(p + 3) & 1) cpus++;
      if (rd8(p + 3) & 2) bsp = rd8(p + 1);
      p += 20;
      continue;
    }
    if (type == 2) ioapic = rd8(p + 1);
    if (type == 3) irqs++;
    p += 8;
  }
  puts_("cpus: ");
  putdec((uint64_t)cpus);
  puts_(" (MP table at ");
  puthex(fp);
  puts_(", BSP APIC id ");
  putdec((uint64_t)bsp);
  puts_(", IOAPIC id ");
  putdec((uint64_t)ioapic);
  puts_(", ");
  putdec((uint64_t)irqs);
  puts_(" interrupt routes)\n");
  return cpus;
}

struct ram_window {
  uint64_t start, len;
};

/* Set when e820 reserves the machine's ECAM window: the VMM put the virtio devices on PCI. */
static int ecam_reserved;

/* Reports the e820 map; returns the biggest usable RAM window above the image, below the PCI hole. */
static struct ram_window report_e820(uint64_t bp, uint64_t avoid_start, uint64_t avoid_end) {
  uint8_t n = rd8(bp + BP_E820_ENTRIES);
  uint64_t total = 0;
  uint64_t floor = ((uint64_t)(uintptr_t)__image_end + TWO_MIB - 1) & ~(TWO_MIB - 1);
  struct ram_window best = {0, 0};
  if (n > 128) n = 128;
  for (uint8_t i = 0; i < n; i++) {
    uint64_t e = bp + BP_E820_TABLE + 20ull * i;
    uint64_t addr = rd64(e), size = rd64(e + 8);
    uint32_t type = rd32(e + 16);
    puts_("e820: ");
    puthex(addr);
    puts_("-");
    puthex(addr + size - 1);
    puts_(type == E820_RAM ? " usable\n" : type == E820_ACPI ? " acpi\n" : " reserved\n");
    if (type != E820_RAM && addr == ECAM_WINDOW && size >= ECAM_WINDOW_SIZE) ecam_reserved = 1;
    if (type != E820_RAM) continue;
    total += size;
    uint64_t s = addr < floor ? floor : addr;
    uint64_t t = addr + size > MAPPED_LIMIT ? MAPPED_LIMIT : addr + size;
    if (avoid_end > avoid_start && avoid_start < t && avoid_end > s) t = avoid_start > s ? avoid_start : s;
    if (t > s && t - s > best.len) best.start = s, best.len = t - s;
  }
  puts_("memory: ");
  putdec(total >> 20);
  puts_(" MiB usable in ");
  putdec(n);
  puts_(" e820 entries\n");
  return best;
}

/* ---- self-tests ---- */

static int test_uart_scratch(void) {
  static const uint8_t patterns[] = {0x55, 0xaa, 0x00, 0xff, 0x5a};
  for (unsigned i = 0; i < sizeof patterns; i++) {
    outb(COM1 + UART_SCR, patterns[i]);
    if (inb(COM1 + UART_SCR) != patterns[i]) return 0;
  }
  return 1;
}

static int test_uart_loopback(void) {
  uint8_t mcr = inb(COM1 + UART_MCR);
  int ok = 1;
  outb(COM1 + UART_MCR, MCR_LOOP_RTS_OUT2);
  if ((inb(COM1 + UART_MSR) & 0xf0) != MSR_CTS_DCD) ok = 0;
  for (int i = 0; i < 64 && (inb(COM1 + UART_LSR) & LSR_DR); i++) inb(COM1 + UART_RBR);
  static const uint8_t bytes[] = {0xa5, 0x3c, 0x00, 0xff};
  for (unsigned i = 0; ok && i < sizeof bytes; i++) {
    outb(COM1 + UART_THR, bytes[i]);
    if (!(inb(COM1 + UART_LSR) & LSR_DR) || inb(COM1 + UART_RBR) != bytes[i]) ok = 0;
  }
  outb(COM1 + UART_MCR, mcr);
  return ok;
}

static uint64_t pattern(uint64_t addr) {
  uint64_t x = addr * 0x9e3779b97f4a7c15ull;
  return x ^ (x >> 29) ^ 0xa5a5a5a5a5a5a5a5ull;
}

/* Fills a RAM window with an address-derived pattern, reads it back and checksums it. */
static int test_memory(struct ram_window w, uint64_t *checksum) {
  volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)w.start;
  uint64_t words = w.len / 8, sum = 0;
  for (uint64_t i = 0; i < words; i++) p[i] = pattern(w.start + 8 * i);
  for (uint64_t i = 0; i < words; i++) {
    uint64_t v = p[i];
    if (v != pattern(w.start + 8 * i)) return 0;
    sum = (sum << 1 | sum >> 63) ^ v;
  }
  *checksum = sum;
  return 1;
}

static void report_rtc(void) {
  uint8_t regs[] = {0x32, 0x09, 0x08, 0x07, 0x04, 0x02, 0x00};
  uint8_t v[7];
  outb(CMOS_INDEX, 0x0b);
  int binary = inb(CMOS_DATA) & 0x04;
  for (int i = 0; i < 7; i++) {
    outb(CMOS_INDEX, regs[i]);
    uint8_t x = inb(CMOS_DATA);
    v[i] = binary ? x : (uint8_t)((x >> 4) * 10 + (x & 0xf));
  }
  puts_("rtc: ");
  putdec(v[0] * 100u + v[1]);
  for (int i = 2; i < 7; i++) {
    putc_(i == 2 || i == 3 ? '-' : i == 4 ? ' ' : ':');
    if (v[i] < 10) putc_('0');
    putdec(v[i]);
  }
  puts_(" UTC\n");
}

/* The PCI hole: nothing claims it, so every read is an exit the VMM answers with all-ones. */
#define MMIO_HOLE 0xc0000000ull
#define MMIO_HOLE_PAGES ((0xfec00000ull - MMIO_HOLE) >> 12)

static void mmio_scan(uint64_t pages) {
  uint64_t ones = 0;
  if (pages > MMIO_HOLE_PAGES) pages = MMIO_HOLE_PAGES;
  for (uint64_t i = 0; i < pages; i++)
    if (rd32(MMIO_HOLE + (i << 12)) == 0xffffffffu) ones++;
  puts_("mmioscan: ");
  putdec(pages);
  puts_(" pages read, ");
  putdec(ones);
  puts_(" all-ones\n");
}

/* Console output forever: a stalled reader must make this wait (flood) or be dropped (flood=raw). */
static void __attribute__((noreturn)) flood(int raw) {
  static char line[4096];
  for (size_t i = 0; i < sizeof line; i++) line[i] = (i % 64 == 62) ? '\r' : (i % 64 == 63) ? '\n' : (char)('a' + i % 26);
  puts_(raw ? "flood: raw\n" : "flood: polite\n");
  for (;;) {
    if (raw) {
      outsb(COM1 + UART_THR, line, sizeof line);
      continue;
    }
    for (size_t at = 0; at < sizeof line; at += 16) {
      while (!(inb(COM1 + UART_LSR) & LSR_THRE)) {
      }
      outsb(COM1 + UART_THR, line + at, 16);
    }
  }
}

static int result(const char *name, int ok) {
  puts_("test ");
  puts_(name);
  puts_(ok ? ": ok\n" : ": FAILED\n");
  return ok;
}

int guest_main(uint64_t bp) {
  struct options o = {0, 0, 0, 0, 8, 0, 0, 0, {0}};
  int fail = 0;
  serial_init();
  puts_("\nkvm-ts test guest: running at CPL3\n");
  if (bp == 0 || bp >= MAPPED_LIMIT) {
    puts_("boot_params: missing\n");
    return FAIL_BOOT_INFO;
  }
  uint16_t version = rd16(bp + BP_VERSION);
  puts_("boot_params: ");
  puthex(bp);
  puts_(", boot protocol ");
  putdec(version >> 8);
  putc_('.');
  putdec(version & 0xff);
  putc_('\n');

  static char cmdline[CMDLINE_MAX + 1];
  uint64_t cmd = rd32(bp + BP_CMD_LINE_PTR) | ((uint64_t)rd32(bp + BP_EXT_CMD_LINE_PTR) << 32);
  size_t n = 0;
  if (cmd && cmd < MAPPED_LIMIT)
    for (; n < CMDLINE_MAX && rd8(cmd + n); n++) cmdline[n] = (char)rd8(cmd + n);
  cmdline[n] = 0;
  puts_("cmdline: \"");
  puts_(cmdline);
  puts_("\"\n");
  parse_options(cmdline, &o);

  uint64_t rd_start = rd32(bp + BP_RAMDISK_IMAGE), rd_len = rd32(bp + BP_RAMDISK_SIZE);
  if (rd_len) {
    puts_("initrd: ");
    putdec(rd_len);
    puts_(" bytes at ");
    puthex(rd_start);
    putc_('\n');
  }
  struct ram_window w = report_e820(bp, rd_start, rd_start + rd_len);
  if (report_mptable() < 1) fail |= FAIL_BOOT_INFO;
  report_rtc();

  if (!result("uart-scratch", test_uart_scratch())) fail |= FAIL_UART_SCRATCH;
  if (!result("uart-loopback", test_uart_loopback())) fail |= FAIL_UART_LOOPBACK;
  /* The virtio drivers' rings and buffers: the top of the free window, clear of the memory test. */
  uint64_t ram_end = w.start + w.len;
  uint64_t dma_len = w.len / 2 < VIRTIO_DMA_MAX ? (w.len / 2) & ~0xfffull : VIRTIO_DMA_MAX;
  uint64_t dma_start = ram_end - dma_len;
  w.len -= dma_len;
  uint64_t want = o.memtest_mib << 20;
  if (want > w.len) want = w.len & ~7ull;
  w.len = want;
  if (w.len) {
    uint64_t sum = 0;
    int ok = test_memory(w, &sum);
    puts_("test memory (");
    putdec(w.len >> 10);
    puts_(" KiB at ");
    puthex(w.start);
    puts_(ok ? "): ok, checksum " : "): FAILED\n");
    if (ok) {
      puthex(sum);
      putc_('\n');
    } else {
      fail |= FAIL_MEMORY;
    }
  } else {
    puts_("test memory: skipped (memtest=0 or no free RAM)\n");
  }

  if (o.pio) {
    puts_("pio: ");
    putdec(o.pio);
    puts_(" writes to port 0x80\n");
    for (uint64_t i = 0; i < o.pio; i++) outb(POST_PORT, (uint8_t)i);
    puts_("pio: done\n");
  }

  if (virtio_run(&o.virtio, dma_start, dma_len, ram_end) != 0) fail |= FAIL_VIRTIO;
  if (ecam_reserved && pci_run(dma_start, dma_len) != 0) fail |= FAIL_VIRTIO;
  if (o.mmioscan) mmio_scan(o.mmioscan);

  puts_(fail ? "self-test: FAIL\n" : "self-test: PASS\n");
  if (o.flood) flood(o.flood == 2);
  if (o.spin) {
    puts_("spin: looping at CPL3 until stopped\n");
    for (;;) __asm__ volatile("pause");
  }
  if (o.acpi && !fail && acpi_act(o.acpi) != 0) fail |= FAIL_BOOT_INFO;
  int status = fail ? fail : o.exit_set ? (int)(o.exit_code & 0xff) : 0;
  puts_("exit: ");
  putdec((uint64_t)status);
  putc_('\n');
  return status;
}
