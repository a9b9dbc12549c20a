/*
 * The built-in guest on a PCI bus (kvm-cli run --transport pci): enumerates bus 0 through ECAM —
 * MMIO, so it works at CPL3 where `in`/`out` to 0xCF8 would trap on nested hosts — sizes each
 * function's BAR 0, and drives a virtio-rng function over the virtio-pci modern transport: its
 * capabilities, the common configuration, one request completed by an MSI-X message to the
 * boot CPU's LAPIC (vector IRQ_VECTOR, counted by the ring-0 handler like the IOAPIC's).
 * The ECAM window is the machine model's (docs/design-vmm.md); the guest looks only when the e820
 * map reserves it, so a virtio-mmio machine sees no access there.
 */
#include "virtio.h"

#define PCI_VENDOR_VIRTIO 0x1af4
#define PCI_DEVICE_VIRTIO_RNG (0x1040 + ID_RNG)
#define CFG_COMMAND 0x04
#define CFG_STATUS 0x06
#define CFG_CLASS 0x08
#define CFG_BAR0 0x10
#define CFG_CAP_PTR 0x34
#define CMD_MEMORY 0x2
#define CMD_MASTER 0x4
#define CAP_MSIX 0x11
#define CAP_VENDOR 0x09
#define VIRTIO_CAP_COMMON 1
#define VIRTIO_CAP_NOTIFY 2
#define VIRTIO_CAP_ISR 3
#define MSIX_ENABLE 0x8000
#define NO_VECTOR 0xffff
/* struct virtio_pci_common_cfg (virtio 1.x 4.1.4.3) */
#define C_DFSELECT 0x00
#define C_DF 0x04
#define C_GFSELECT 0x08
#define C_GF 0x0c
#define C_MSIX_CONFIG 0x10
#define C_STATUS 0x14
#define C_Q_SELECT 0x16
#define C_Q_SIZE 0x18
#define C_Q_MSIX 0x1a
#define C_Q_ENABLE 0x1c
#define C_Q_NOFF 0x1e
#define C_Q_DESC 0x20
#define C_Q_AVAIL 0x28
#define C_Q_USED 0x30

static inline uint8_t rd8(uint64_t a) { return *(volatile uint8_t *)a; }
static inline uint16_t rd16(uint64_t a) { return *(volatile uint16_t *)a; }
static inline void wr8(uint64_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static inline void wr16(uint64_t a, uint16_t v) { *(volatile uint16_t *)a = v; }
static inline uint64_t cfg(int dev) { return ECAM_WINDOW + ((uint64_t)dev << 15); }

/* `digits` hex digits, no prefix: "00:01.0", "1af4:1044". */
static void hexn(uint64_t v, int digits) {
  for (int i = digits - 1; i >= 0; i--) putc_("0123456789abcdef"[(v >> (4 * i)) & 0xf]);
}

/* BAR `bar`'s base as the function decodes it (32-bit memory BARs only). */
static uint64_t bar_base(uint64_t f, uint32_t bar) { return mmio_read32(f + CFG_BAR0 + 4 * bar) & ~0xfu; }

/* The BAR sizing protocol: all-ones, read the mask back, restore. Returns the size (0: no BAR). */
static uint32_t bar_size(uint64_t f, uint32_t bar) {
  uint64_t at = f + CFG_BAR0 + 4 * bar;
  uint32_t saved = mmio_read32(at);
  mmio_write32(at, 0xffffffffu);
  uint32_t mask = mmio_read32(at) & ~0xfu;
  mmio_write32(at, saved);
  return mask ? ~mask + 1 : 0;
}

struct vpci {
  uint64_t f, common, notify, isr, table;
  uint32_t notify_mult;
};

static int find_caps(struct vpci *v) {
  uint64_t f = v->f;
  if (!(rd16(f + CFG_STATUS) & 0x10)) return fail_with("no capability list");
  int n = 0;
  for (uint8_t at = rd8(f + CFG_CAP_PTR); at && n < 48; at = rd8(f + at + 1), n++) {
    uint8_t id = rd8(f + at);
    if (id == CAP_MSIX) {
      uint32_t t = mmio_read32(f + at + 4);
      v->table = bar_base(f, t & 7) + (t & ~7u);
      continue;
    }
    if (id != CAP_VENDOR) continue;
    uint8_t type = rd8(f + at + 3);
    uint64_t where = bar_base(f, rd8(f + at + 4)) + mmio_read32(f + at + 8);
    if (type == VIRTIO_CAP_COMMON) v->common = where;
    if (type == VIRTIO_CAP_NOTIFY) v->notify = where, v->notify_mult = mmio_read32(f + at + 16);
    if (type == VIRTIO_CAP_ISR) v->isr = where;
  }
  if (!v->common || !v->notify || !v->isr) return fail_with("a virtio capability is missing");
  if (!v->table) return fail_with("no MSI-X capability");
  return 0;
}

/* Reset, ACK, DRIVER, VERSION_1 only, FEATURES_OK (the common configuration's version of device_begin). */
static int begin(struct vpci *v) {
  uint64_t c = v->common;
  wr8(c + C_STATUS, 0);
  if (rd8(c + C_STATUS) != 0) return fail_with("status did not reset to 0");
  wr8(c + C_STATUS, S_ACK | S_DRIVER);
  mmio_write32(c + C_DFSELECT, 1);
  if (!(mmio_read32(c + C_DF) & 1)) return fail_with("VERSION_1 not offered");
  mmio_write32(c + C_GFSELECT, 0);
  mmio_write32(c + C_GF, 0);
  mmio_write32(c + C_GFSELECT, 1);
  mmio_write32(c + C_GF, 1);
  wr8(c + C_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
  if (!(rd8(c + C_STATUS) & S_FEATURES_OK)) return fail_with("FEATURES_OK refused");
  return 0;
}

static int queue(struct vpci *v, struct vq *q) {
  uint64_t c = v->common;
  wr16(c + C_Q_SELECT, 0);
  uint32_t max = rd16(c + C_Q_SIZE), size = QSIZE;
  if (max == 0) return fail_with("queue not available");
  while (size > max) size >>= 1;
  q->index = 0;
  q->size = size;
  q->event_idx = 0;
  q->avail_idx = q->last_used = 0;
  q->desc = dma_alloc(16ull * size, 4096);
  q->avail = dma_alloc(6 + 2ull * size, 4096);
  q->used = dma_alloc(6 + 8ull * size, 4096);
  if (!q->desc || !q->avail || !q->used) return fail_with("out of DMA memory");
  wr16(c + C_Q_SIZE, (uint16_t)size);
  wr16(c + C_Q_MSIX, 0);
  if (rd16(c + C_Q_MSIX) != 0) return fail_with("MSI-X vector 0 refused for the queue");
  wr16(c + C_MSIX_CONFIG, NO_VECTOR);
  uint64_t addrs[3] = {(uint64_t)(uintptr_t)q->desc, (uint64_t)(uintptr_t)q->avail, (uint64_t)(uintptr_t)q->used};
  for (int i = 0; i < 3; i++) {
    mmio_write32(c + C_Q_DESC + 8 * i, (uint32_t)addrs[i]);
    mmio_write32(c + C_Q_DESC + 8 * i + 4, (uint32_t)(addrs[i] >> 32));
  }
  wr16(c + C_Q_ENABLE, 1);
  if (rd16(c + C_Q_ENABLE) != 1) return fail_with("queue refused");
  return 0;
}

/* MSI-X vector 0: a fixed, edge message for IRQ_VECTOR to APIC id 0, unmasked; then MSI-X on. */
static void msix_on(struct vpci *v, uint8_t cap) {
  lapic_enable();
  mmio_write32(v->table, (uint32_t)LAPIC);
  mmio_write32(v->table + 4, 0);
  mmio_write32(v->table + 8, IRQ_VECTOR);
  mmio_write32(v->table + 12, 0);
  wr16(v->f + cap + 2, MSIX_ENABLE);
}

static int run_rng_pci(int dev, uint32_t *bar0) {
  static struct vq q;
  enum { LEN = 64 };
  struct vpci v = {0};
  v.f = cfg(dev);
  why = 0;
  *bar0 = bar_size(v.f, 0);
  /* Memory decoding and bus mastering, as pci_enable_device and pci_set_master would. */
  wr16(v.f + CFG_COMMAND, rd16(v.f + CFG_COMMAND) | CMD_MEMORY | CMD_MASTER);
  int rc = *bar0 ? find_caps(&v) : fail_with("BAR 0 does not size");
  uint8_t cap = 0;
  for (uint8_t at = rd8(v.f + CFG_CAP_PTR), n = 0; at && n < 48; at = rd8(v.f + at + 1), n++)
    if (rd8(v.f + at) == CAP_MSIX) cap = at;
  if (!rc) rc = begin(&v);
  if (!rc) msix_on(&v, cap);
  if (!rc) rc = queue(&v, &q);
  uint8_t *buf = dma_alloc(LEN, 64);
  if (!rc && !buf) rc = fail_with("out of DMA memory");
  if (!rc) {
    wr8(v.common + C_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    if (rd8(v.common + C_STATUS) & S_NEEDS_RESET) rc = fail_with("device needs reset");
  }
  if (!rc) {
    uint32_t target = irq_count + 1, id, len;
    set_desc(&q, 0, (uint64_t)(uintptr_t)buf, LEN, DESC_WRITE, 0);
    publish(&q, 0);
    mfence();
    wr16(v.notify + (uint64_t)rd16(v.common + C_Q_NOFF) * v.notify_mult, 0);
    uint32_t got = wait_irq(target);
    uint8_t isr = rd8(v.isr);
    int ok = take_used(&q, &id, &len);
    if (got < target) rc = fail_with("no MSI-X interrupt came");
    else if (!ok || id != 0 || len != LEN) rc = fail_with("no completion after the interrupt");
    else if (isr & 1) rc = fail_with("the ISR said used buffer with MSI-X on");
  }
  wr8(v.common + C_STATUS, 0);
  return rc;
}

int pci_run(uint64_t dma_start, uint64_t dma_len) {
  int failed = 0, found = 0;
  arena_start = arena_next = dma_start;
  arena_end = dma_start + dma_len;
  for (int dev = 0; dev < 32; dev++) {
    uint32_t id = mmio_read32(cfg(dev));
    if (id == 0xffffffffu) continue;
    found++;
    puts_("pci: 00:");
    hexn((uint64_t)dev, 2);
    puts_(".0 ");
    hexn(id & 0xffff, 4);
    putc_(':');
    hexn(id >> 16, 4);
    puts_(" class ");
    hexn(mmio_read32(cfg(dev) + CFG_CLASS) >> 8, 6);
    putc_('\n');
    if ((id & 0xffff) != PCI_VENDOR_VIRTIO || (id >> 16) != PCI_DEVICE_VIRTIO_RNG) continue;
    uint32_t bar0 = 0;
    int rc = run_rng_pci(dev, &bar0);
    puts_("virtio-pci: 00:");
    hexn((uint64_t)dev, 2);
    puts_(".0 virtio-rng: BAR 0 of ");
    putdec(bar0 >> 10);
    puts_(" KiB, 64 bytes, 1 completion by MSI-X:");
    verdict(rc);
    failed |= rc != 0;
  }
  puts_("pci: ");
  putdec((uint64_t)found);
  puts_(" functions on bus 0\n");
  return failed;
}
