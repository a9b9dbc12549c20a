/*
 * The built-in guest's virtio-mmio drivers (blk, rng, console; net is in net.c), ring 3 like the rest of its work:
 * devices come from `virtio_mmio.device=<size>@<base>:<gsi>` on the command line (Linux's syntax),
 * rings are polled, and each device takes one completion by interrupt (IOAPIC pin -> vector 0x30,
 * waited for in ring 0 through a trapped `hlt`) to prove the interrupt path. Output: one line per check,
 * ending in "ok" or "FAIL <why>". README.md lists the options.
 */
#include "virtio.h"

#define BLK_F_RO (1ull << 5)
#define BLK_F_FLUSH (1ull << 9)
#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_T_GET_ID 8
#define BLK_S_OK 0
#define BLK_S_IOERR 1


static struct vdev devices[MAX_DEVICES];
static int ndevices;
const char *why; /* the first failure of the check under way */

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }

int fail_with(const char *w) {
  if (!why) why = w;
  return -1;
}

/* ---- command line ---- */

/* "4K", "0x1000", "1M": a size as Linux's memparse reads it. */
static int parse_size(const char *s, size_t n, uint64_t *out) {
  uint64_t mul = 1;
  if (n > 0 && (s[n - 1] == 'K' || s[n - 1] == 'k')) mul = 1ull << 10, n--;
  else if (n > 0 && (s[n - 1] == 'M' || s[n - 1] == 'm')) mul = 1ull << 20, n--;
  else if (n > 0 && (s[n - 1] == 'G' || s[n - 1] == 'g')) mul = 1ull << 30, n--;
  if (!parse_u64(s, n, out)) return 0;
  *out *= mul;
  return 1;
}

/* virtio_mmio.device=<size>@<base>:<gsi> */
static void add_device(const char *v, size_t n) {
  size_t at = 0, colon = 0;
  while (at < n && v[at] != '@') at++;
  colon = at;
  while (colon < n && v[colon] != ':') colon++;
  uint64_t size, base, gsi;
  if (at >= n || colon >= n || ndevices >= MAX_DEVICES) return;
  if (!parse_size(v, at, &size) || !parse_u64(v + at + 1, colon - at - 1, &base) || !parse_u64(v + colon + 1, n - colon - 1, &gsi)) return;
  if (size < 0x200 || gsi > 23) return;
  devices[ndevices].base = base;
  devices[ndevices].gsi = (uint32_t)gsi;
  ndevices++;
}

int virtio_option(const char *w, size_t n, struct virtio_options *o) {
  size_t eq = 0;
  while (eq < n && w[eq] != '=') eq++;
  const char *val = w + eq + 1;
  size_t vn = eq < n ? n - eq - 1 : 0;
  if (word_is(w, eq, "virtio_mmio.device") && eq < n) add_device(val, vn);
  else if (word_is(w, eq, "kvmts.fill") && eq < n) parse_u64(val, vn, &o->fill_mib);
  else if (word_is(w, n, "kvmts.hostile")) o->hostile = 1, o->hostile_seed = 1;
  else if (word_is(w, eq, "kvmts.hostile") && eq < n) o->hostile = parse_u64(val, vn, &o->hostile_seed);
  else if (word_is(w, n, "kvmts.scratch")) o->scratch = 1;
  else if (word_is(w, eq, "kvmts.bench") && eq < n) parse_u64(val, vn, &o->bench_mib);
  else if (word_is(w, eq, "kvmts.iops") && eq < n) parse_u64(val, vn, &o->bench_iops);
  else if (word_is(w, n, "kvmts.echo")) o->echo = 1;
  else if (word_is(w, n, "kvmts.nonet")) o->nonet = 1;
  else return net_option(w, n, o);
  return 1;
}

/* ---- memory for rings and buffers ---- */

uint64_t arena_start, arena_next, arena_end;

void *dma_alloc(uint64_t size, uint64_t align) {
  uint64_t at = (arena_next + align - 1) & ~(align - 1);
  if (at + size > arena_end) return 0;
  arena_next = at + size;
  memset((void *)(uintptr_t)at, 0, size);
  return (void *)(uintptr_t)at;
}

/* ---- interrupts: IOAPIC pin -> IRQ_VECTOR on the boot CPU ---- */

static void ioapic_write(uint32_t reg, uint32_t v) {
  mmio_write32(IOAPIC, reg);
  mmio_write32(IOAPIC + 0x10, v);
}

void lapic_enable(void) {
  static int lapic_ready;
  if (lapic_ready) return;
  mmio_write32(LAPIC + 0x350, 0x10700); /* LINT0 (the PIC's ExtINT) masked */
  mmio_write32(LAPIC + 0xf0, 0x100 | SPURIOUS_VECTOR); /* APIC software-enabled */
  lapic_ready = 1;
}

void irq_route(uint32_t gsi, int on) {
  lapic_enable();
  ioapic_write(0x10 + 2 * gsi + 1, 0); /* destination: APIC id 0 */
  /* fixed delivery, physical, active high, edge; masked when off */
  ioapic_write(0x10 + 2 * gsi, IRQ_VECTOR | (on ? 0 : 1u << 16));
}

/* Waits in ring 0 (a `hlt` the #GP handler turns into a bounded wait) until irq_count reaches `target`; returns irq_count. */
uint32_t wait_irq(uint32_t target) {
  uint32_t r = target;
  __asm__ volatile("hlt" : "+a"(r) : : "memory");
  return r;
}

/* ---- device set-up ---- */

int device_begin(struct vdev *d, uint64_t wanted) {
  if (rd(d, R_MAGIC) != 0x74726976) return fail_with("no virtio magic");
  if (rd(d, R_VERSION) != 2) return fail_with("not virtio-mmio version 2");
  wr(d, R_STATUS, 0);
  if (rd(d, R_STATUS) != 0) return fail_with("status did not reset to 0");
  wr(d, R_STATUS, S_ACK);
  wr(d, R_STATUS, S_ACK | S_DRIVER);
  wr(d, R_DEV_FEATURES_SEL, 0);
  uint64_t offered = rd(d, R_DEV_FEATURES);
  wr(d, R_DEV_FEATURES_SEL, 1);
  offered |= (uint64_t)rd(d, R_DEV_FEATURES) << 32;
  if (!(offered & F_VERSION_1)) return fail_with("VERSION_1 not offered");
  d->features = offered & (wanted | F_VERSION_1 | F_EVENT_IDX | F_INDIRECT_DESC);
  wr(d, R_DRV_FEATURES_SEL, 0);
  wr(d, R_DRV_FEATURES, (uint32_t)d->features);
  wr(d, R_DRV_FEATURES_SEL, 1);
  wr(d, R_DRV_FEATURES, (uint32_t)(d->features >> 32));
  wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
  if (!(rd(d, R_STATUS) & S_FEATURES_OK)) return fail_with("FEATURES_OK refused");
  return 0;
}

int queue_init(struct vdev *d, struct vq *q, uint32_t index) {
  wr(d, R_QUEUE_SEL, index);
  if (rd(d, R_QUEUE_READY)) return fail_with("queue already ready");
  uint32_t max = rd(d, R_QUEUE_NUM_MAX);
  if (max == 0) return fail_with("queue not available");
  uint32_t size = QSIZE;
  while (size > max) size >>= 1;
  q->dev = d;
  q->index = index;
  q->size = size;
  q->event_idx = (d->features & F_EVENT_IDX) != 0;
  q->avail_idx = q->last_used = 0;
  q->desc = dma_alloc(16ull * size, 4096);
  q->avail = dma_alloc(6 + 2ull * size, 4096);
  q->used = dma_alloc(6 + 8ull * size, 4096);
  if (!q->desc || !q->avail || !q->used) return fail_with("out of DMA memory");
  q->avail[2 + size] = SUPPRESS; /* used_event half the index space away: no interrupts while polling */
  wr(d, R_QUEUE_NUM, size);
  wr64(d, R_QUEUE_DESC, (uint64_t)(uintptr_t)q->desc);
  wr64(d, R_QUEUE_DRIVER, (uint64_t)(uintptr_t)q->avail);
  wr64(d, R_QUEUE_DEVICE, (uint64_t)(uintptr_t)q->used);
  wr(d, R_QUEUE_READY, 1);
  if (!rd(d, R_QUEUE_READY)) return fail_with("queue refused");
  return 0;
}

int device_ready(struct vdev *d) {
  wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
  uint32_t s = rd(d, R_STATUS);
  if (s & S_NEEDS_RESET) return fail_with("device needs reset");
  if (!(s & S_DRIVER_OK)) return fail_with("DRIVER_OK not taken");
  return 0;
}

/* ---- virtqueue, driver side ---- */

void set_desc(struct vq *q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
  q->desc[i].addr = addr;
  q->desc[i].len = len;
  q->desc[i].flags = flags;
  q->desc[i].next = next;
}

/* Makes chain `head` available (not yet notified). */
void publish(struct vq *q, uint16_t head) {
  q->avail[2 + q->avail_idx % q->size] = head;
  barrier();
  q->avail_idx++;
  q->avail[1] = q->avail_idx;
}

/* Notifies the device of everything published since `old`, if it asked (avail_event with EVENT_IDX). */
void kick(struct vq *q, uint16_t old) {
  mfence();
  if (q->event_idx) {
    uint16_t ev = *avail_event(q);
    if ((uint16_t)(q->avail_idx - ev - 1) >= (uint16_t)(q->avail_idx - old)) return;
  } else if (*(volatile uint16_t *)q->used & 1) {
    return;
  }
  wr(q->dev, R_QUEUE_NOTIFY, q->index);
}

/* The next used element, polled; 0 on timeout. */
int take_used(struct vq *q, uint32_t *id, uint32_t *len) {
  for (uint64_t spins = 0; *used_idx(q) == q->last_used; spins++) {
    if (spins > SPIN_LIMIT) return 0;
    cpu_pause();
  }
  barrier();
  volatile uint8_t *e = q->used + 4 + 8 * (q->last_used % q->size);
  *id = *(volatile uint32_t *)e;
  *len = *(volatile uint32_t *)(e + 4);
  q->last_used++;
  /* Kept far ahead, not just behind: a used_event the device may be about to reach would race. */
  if (q->event_idx) q->avail[2 + q->size] = (uint16_t)(q->last_used + SUPPRESS);
  return 1;
}

/*
 * Publishes `head` asking for an interrupt on its completion, waits for it in ring 0, and checks
 * that InterruptStatus said "used buffer" and is clear after the acknowledgement.
 */
int complete_by_interrupt(struct vq *q, uint16_t head, uint32_t *id, uint32_t *len) {
  struct vdev *d = q->dev;
  uint32_t target = irq_count + 1;
  irq_route(d->gsi, 1);
  if (q->event_idx) q->avail[2 + q->size] = q->last_used;
  else q->avail[0] = 0;
  uint16_t old = q->avail_idx;
  publish(q, head);
  kick(q, old);
  uint32_t got = wait_irq(target);
  uint32_t isr = rd(d, R_INT_STATUS);
  wr(d, R_INT_ACK, isr);
  uint32_t after = rd(d, R_INT_STATUS);
  irq_route(d->gsi, 0);
  if (!q->event_idx) q->avail[0] = 1;
  int ok = take_used(q, id, len);
  if (got < target) return fail_with("no interrupt came");
  if (!(isr & 1)) return fail_with("InterruptStatus did not say used buffer");
  if (after & 1) return fail_with("InterruptStatus not cleared by InterruptACK");
  if (!ok) return fail_with("no completion after the interrupt");
  return 0;
}

/* Ends a check's line: " ok", or " FAIL <why>". */
void verdict(int rc) {
  if (rc == 0) {
    puts_(" ok\n");
  } else {
    puts_(" FAIL ");
    puts_(why ? why : "unknown");
    puts_("\n");
  }
}

/* ---- CRC-32 (zlib's: reflected, polynomial 0xedb88320) ---- */

static uint32_t crc_table[256];
static uint32_t crc32(uint32_t crc, const uint8_t *p, uint64_t n) {
  if (!crc_table[1])
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
      crc_table[i] = c;
    }
  crc = ~crc;
  while (n--) crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

/* ---- virtio-blk ---- */

#define BLK_SLOTS 8
#define BLK_CHUNK (256u << 10)
#define BENCH_CHUNK (1u << 20)

struct blk_req {
  uint32_t type, reserved;
  uint64_t sector;
};

struct blk {
  struct vdev *dev;
  struct vq q;
  uint64_t sectors;
  int ro;
  struct blk_req *hdr;    /* one per slot */
  volatile uint8_t *status; /* one per slot */
  uint8_t *buf;           /* BLK_SLOTS * BLK_CHUNK */
  volatile struct desc *indirect;
  int interrupts;
};

static int blk_init(struct blk *b, struct vdev *d) {
  b->dev = d;
  if (device_begin(d, BLK_F_RO | BLK_F_FLUSH) || queue_init(d, &b->q, 0)) return -1;
  b->sectors = rd(d, R_CONFIG) | (uint64_t)rd(d, R_CONFIG + 4) << 32;
  b->ro = (d->features & BLK_F_RO) != 0;
  b->hdr = dma_alloc(sizeof(struct blk_req) * BLK_SLOTS, 64);
  b->status = dma_alloc(BLK_SLOTS, 64);
  b->buf = dma_alloc((uint64_t)BLK_SLOTS * BLK_CHUNK, 4096);
  b->indirect = dma_alloc(16 * 3, 16);
  b->interrupts = 0;
  if (!b->hdr || !b->status || !b->buf || !b->indirect) return fail_with("out of DMA memory");
  return device_ready(d);
}

/* Chains header / data / status of slot `s` (descriptors 3s..3s+2); len 0: no data descriptor. */
static uint16_t blk_chain(struct blk *b, int s, uint32_t type, uint64_t sector, void *data, uint32_t len) {
  uint16_t h = (uint16_t)(3 * s);
  b->hdr[s].type = type;
  b->hdr[s].reserved = 0;
  b->hdr[s].sector = sector;
  b->status[s] = 0xff;
  int in = type != BLK_T_OUT;
  if (len) {
    set_desc(&b->q, h, (uint64_t)(uintptr_t)&b->hdr[s], 16, DESC_NEXT, h + 1);
    set_desc(&b->q, h + 1, (uint64_t)(uintptr_t)data, len, DESC_NEXT | (in ? DESC_WRITE : 0), h + 2);
    set_desc(&b->q, h + 2, (uint64_t)(uintptr_t)&b->status[s], 1, DESC_WRITE, 0);
  } else {
    set_desc(&b->q, h, (uint64_t)(uintptr_t)&b->hdr[s], 16, DESC_NEXT, h + 2);
    set_desc(&b->q, h + 2, (uint64_t)(uintptr_t)&b->status[s], 1, DESC_WRITE, 0);
  }
  return h;
}

/* One request, waited for; returns the device's status (or 0xff on timeout). */
static int blk_do(struct blk *b, uint32_t type, uint64_t sector, void *data, uint32_t len, int by_irq) {
  uint16_t h = blk_chain(b, 0, type, sector, data, len);
  uint32_t id, used_len;
  if (by_irq) {
    if (complete_by_interrupt(&b->q, h, &id, &used_len)) return 0xff;
    b->interrupts++;
  } else {
    uint16_t old = b->q.avail_idx;
    publish(&b->q, h);
    kick(&b->q, old);
    if (!take_used(&b->q, &id, &used_len)) {
      fail_with("request timed out");
      return 0xff;
    }
  }
  if (id != h) fail_with("completion for another chain");
  return b->status[0];
}

static void fill_pattern(uint8_t *p, uint64_t off, uint32_t len) {
  for (uint32_t i = 0; i < len; i++) {
    uint64_t o = off + i;
    p[i] = (uint8_t)(((o >> 9) * 7 + (o & 511)) & 0xff);
  }
}

/*
 * Moves `bytes` from byte 0 of the disk in BLK_CHUNK requests, BLK_SLOTS in flight: writes the
 * fill pattern (OUT), or reads and checks it (IN, `verify`), or only reads (IN). `bench`: mark the
 * span on port 0x80 and write whatever the buffers hold (no pattern work inside the timed span).
 */
static int blk_stream(struct blk *b, uint32_t type, uint64_t bytes, int verify, int bench) {
  int write_marks = bench;
  /* The benchmark moves 1 MiB per request from buffers of its own; the checks 256 KiB. */
  static uint8_t *bench_buf;
  uint32_t chunk = bench ? BENCH_CHUNK : BLK_CHUNK;
  uint8_t *base = b->buf;
  if (bench) {
    if (!bench_buf) bench_buf = dma_alloc((uint64_t)BLK_SLOTS * BENCH_CHUNK, 4096);
    if (!bench_buf) return fail_with("out of DMA memory for the benchmark");
    base = bench_buf;
  }
  uint64_t next = 0, done = 0;
  int busy = 0;
  uint64_t slot_off[BLK_SLOTS];
  uint32_t slot_len[BLK_SLOTS];
  if (write_marks) outb(POST_PORT, type == BLK_T_OUT ? 0x10 : 0x12);
  while (done < bytes) {
    uint16_t old = b->q.avail_idx;
    for (int s = 0; s < BLK_SLOTS && next < bytes; s++) {
      if (busy & (1 << s)) continue;
      uint32_t len = bytes - next < chunk ? (uint32_t)(bytes - next) : chunk;
      uint8_t *buf = base + (uint64_t)s * chunk;
      if (type == BLK_T_OUT && !bench) fill_pattern(buf, next, len);
      publish(&b->q, blk_chain(b, s, type, next >> 9, buf, len));
      slot_off[s] = next;
      slot_len[s] = len;
      busy |= 1 << s;
      next += len;
    }
    kick(&b->q, old);
    uint32_t id, used_len;
    if (!take_used(&b->q, &id, &used_len)) return fail_with("request timed out");
    int s = (int)(id / 3);
    if (s >= BLK_SLOTS || !(busy & (1 << s))) return fail_with("completion for an unknown chain");
    busy &= ~(1 << s);
    if (b->status[s] != BLK_S_OK) return fail_with(type == BLK_T_OUT ? "write failed" : "read failed");
    if (verify) {
      uint8_t *buf = base + (uint64_t)s * chunk;
      for (uint32_t i = 0; i < slot_len[s]; i++) {
        uint64_t o = slot_off[s] + i;
        if (buf[i] != (uint8_t)(((o >> 9) * 7 + (o & 511)) & 0xff)) return fail_with("data read back differs");
      }
    }
    done += slot_len[s];
  }
  if (write_marks) outb(POST_PORT, type == BLK_T_OUT ? 0x11 : 0x13);
  return 0;
}

static int blk_flush(struct blk *b) {
  return blk_do(b, BLK_T_FLUSH, 0, 0, 0, 0) == BLK_S_OK ? 0 : fail_with("flush failed");
}

/* A read through an indirect table (header, data, status in one descriptor of the queue). */
static int blk_read_indirect(struct blk *b, uint64_t sector, void *data, uint32_t len) {
  volatile struct desc *t = b->indirect;
  b->hdr[0].type = BLK_T_IN;
  b->hdr[0].sector = sector;
  b->status[0] = 0xff;
  t[0].addr = (uint64_t)(uintptr_t)&b->hdr[0], t[0].len = 16, t[0].flags = DESC_NEXT, t[0].next = 1;
  t[1].addr = (uint64_t)(uintptr_t)data, t[1].len = len, t[1].flags = DESC_NEXT | DESC_WRITE, t[1].next = 2;
  t[2].addr = (uint64_t)(uintptr_t)&b->status[0], t[2].len = 1, t[2].flags = DESC_WRITE, t[2].next = 0;
  set_desc(&b->q, 0, (uint64_t)(uintptr_t)t, 48, DESC_INDIRECT, 0);
  uint16_t old = b->q.avail_idx;
  publish(&b->q, 0);
  kick(&b->q, old);
  uint32_t id, used_len;
  if (!take_used(&b->q, &id, &used_len)) return fail_with("indirect request timed out");
  if (b->status[0] != BLK_S_OK || used_len != len + 1) return fail_with("indirect read failed");
  return 0;
}

static void blk_name(struct vdev *d, int n) {
  d->name[0] = 'v', d->name[1] = 'd', d->name[2] = (char)('a' + n), d->name[3] = 0;
}

/* vda as a scratch disk: write, flush, read back a few MiB; GET_ID; an indirect and an interrupt-driven read. */
static int blk_selftest(struct blk *b, uint64_t *moved) {
  uint64_t bytes = 4 * MiB;
  if (b->ro) return fail_with("scratch disk is read-only");
  if (b->sectors * 512 < bytes) bytes = b->sectors * 512 & ~4095ull;
  if (bytes == 0) return fail_with("scratch disk is empty");
  *moved = bytes;
  if (blk_stream(b, BLK_T_OUT, bytes, 0, 0) || blk_flush(b)) return -1;
  if (blk_stream(b, BLK_T_IN, bytes, 1, 0)) return -1;
  uint8_t *buf = b->buf;
  memset(buf, 0, 4096);
  if (blk_read_indirect(b, 1, buf, 4096)) return -1;
  for (uint32_t i = 0; i < 4096; i++)
    if (buf[i] != (uint8_t)((((512 + i) >> 9) * 7 + ((512 + i) & 511)) & 0xff)) return fail_with("indirect read differs");
  memset(buf, 0, 4096);
  if (blk_do(b, BLK_T_IN, 0, buf, 4096, 1) != BLK_S_OK) return fail_with("interrupt-driven read failed");
  if (buf[513] != (uint8_t)(7 + 1)) return fail_with("interrupt-driven read differs");
  memset(buf, 0, 32);
  if (blk_do(b, BLK_T_GET_ID, 0, buf, 20, 0) != BLK_S_OK || buf[0] == 0) return fail_with("GET_ID failed");
  return 0;
}

static void put_id(const uint8_t *id) {
  putc_('"');
  for (int i = 0; i < 20 && id[i]; i++) putc_(id[i] >= 32 && id[i] < 127 ? (char)id[i] : '?');
  putc_('"');
}

static int run_blk(struct vdev *d, int n, const struct virtio_options *o) {
  static struct blk b;
  why = 0;
  blk_name(d, n);
  int rc = blk_init(&b, d);
  if (rc) {
    puts_("virtio-blk: ");
    puts_(d->name);
    puts_(":");
    verdict(rc);
    return rc;
  }
  int failed = 0;
  if (o->scratch && n == 0) {
    uint64_t moved = 0;
    why = 0;
    rc = blk_selftest(&b, &moved);
    puts_("virtio-blk: ");
    puts_(d->name);
    puts_(": ");
    putdec(b.sectors);
    puts_(" sectors, wrote, flushed and read back ");
    putdec(moved >> 10);
    puts_(" KiB, indirect read, id ");
    put_id(b.buf);
    puts_(", ");
    putdec((uint64_t)b.interrupts);
    puts_(" completion by interrupt:");
    verdict(rc);
    failed |= rc;
  } else {
    /* Never written: the CRC-32 of the first min(1 MiB, size) bytes, to compare with the host file. */
    uint64_t bytes = b.sectors * 512 < MiB ? b.sectors * 512 : MiB;
    why = 0;
    rc = 0;
    uint32_t crc = 0;
    for (uint64_t off = 0; off < bytes && rc == 0; off += BLK_CHUNK) {
      uint32_t len = bytes - off < BLK_CHUNK ? (uint32_t)(bytes - off) : BLK_CHUNK;
      int by_irq = off == 0;
      if (blk_do(&b, BLK_T_IN, off >> 9, b.buf, len, by_irq) != BLK_S_OK) rc = fail_with("read failed");
      else crc = crc32(crc, b.buf, len);
    }
    puts_("virtio-blk: ");
    puts_(d->name);
    puts_(": ");
    putdec(b.sectors);
    puts_(b.ro ? " sectors, ro, crc32 " : " sectors, crc32 ");
    puthexw(crc, 8);
    puts_(" of the first ");
    putdec(bytes);
    puts_(" bytes:");
    verdict(rc);
    failed |= rc;
    if (b.ro && rc == 0) {
      /* A write must be refused with IOERR, and nothing written. */
      why = 0;
      int st = blk_do(&b, BLK_T_OUT, 0, b.buf, 512, 0);
      rc = st == BLK_S_IOERR ? 0 : fail_with("write to a read-only disk was not refused");
      puts_("virtio-blk: ");
      puts_(d->name);
      puts_(": a write is refused with IOERR on a read-only disk:");
      verdict(rc);
      failed |= rc;
    }
  }
  if (n == 0 && o->fill_mib) {
    why = 0;
    uint64_t bytes = o->fill_mib * MiB;
    rc = bytes > b.sectors * 512 ? fail_with("disk smaller than the fill") : blk_stream(&b, BLK_T_OUT, bytes, 0, 0);
    if (rc == 0) rc = blk_flush(&b);
    if (rc == 0) {
      puts_("virtio-blk: vda: filled ");
      putdec(o->fill_mib);
      puts_(" MiB, flushed\n");
    } else {
      puts_("virtio-blk: vda: fill:");
      verdict(rc);
    }
    failed |= rc;
  }
  if (n == 0 && o->bench_mib) {
    uint64_t bytes = o->bench_mib * MiB;
    why = 0;
    rc = bytes > b.sectors * 512 ? fail_with("disk smaller than the benchmark") : 0;
    if (rc == 0) rc = blk_stream(&b, BLK_T_OUT, bytes, 0, 1);
    if (rc == 0) rc = blk_flush(&b);
    if (rc == 0) rc = blk_stream(&b, BLK_T_IN, bytes, 0, 1);
    puts_("virtio-blk: vda: benchmark, sequential write and read (marks 0x10-0x13 on port 0x80):");
    verdict(rc);
    failed |= rc;
  }
  if (n == 0 && o->bench_iops) {
    /*
     * 4 KiB reads at pseudo-random 4 KiB offsets: one at a time (queue depth 1, marks 0x14/0x15),
     * then BLK_SLOTS in flight (marks 0x16/0x17), the same offsets both times.
     */
    uint64_t blocks = b.sectors / 8;
    why = 0;
    rc = blocks ? 0 : fail_with("disk smaller than 4 KiB");
    for (int depth = 1; depth <= BLK_SLOTS && rc == 0; depth *= BLK_SLOTS) {
      uint64_t x = 0x9e3779b97f4a7c15ull, issued = 0, done = 0;
      int busy = 0;
      outb(POST_PORT, depth == 1 ? 0x14 : 0x16);
      while (done < o->bench_iops && rc == 0) {
        uint16_t old = b.q.avail_idx;
        for (int s = 0; s < depth && issued < o->bench_iops; s++) {
          if (busy & (1 << s)) continue;
          x ^= x << 13, x ^= x >> 7, x ^= x << 17;
          publish(&b.q, blk_chain(&b, s, BLK_T_IN, (x % blocks) * 8, b.buf + (uint64_t)s * 4096, 4096));
          busy |= 1 << s;
          issued++;
        }
        kick(&b.q, old);
        uint32_t id, len;
        if (!take_used(&b.q, &id, &len)) rc = fail_with("request timed out");
        else if (b.status[id / 3] != BLK_S_OK) rc = fail_with("read failed");
        busy &= ~(1 << (id / 3));
        done++;
      }
      outb(POST_PORT, depth == 1 ? 0x15 : 0x17);
    }
    puts_("virtio-blk: vda: benchmark, random 4 KiB reads at depth 1 and 8 (marks 0x14-0x17 on port 0x80):");
    verdict(rc);
    failed |= rc;
  }
  return failed;
}

/* ---- virtio-rng ---- */

static int run_rng(struct vdev *d) {
  static struct vq q;
  enum { N = 4, LEN = 64 };
  uint8_t *buf;
  why = 0;
  int rc = device_begin(d, 0);
  if (!rc) rc = queue_init(d, &q, 0);
  buf = dma_alloc(N * LEN, 64);
  if (!rc && !buf) rc = fail_with("out of DMA memory");
  if (!rc) rc = device_ready(d);
  int irqs = 0;
  for (int i = 0; i < N && !rc; i++) {
    uint32_t id, len;
    set_desc(&q, (uint16_t)i, (uint64_t)(uintptr_t)(buf + i * LEN), LEN, DESC_WRITE, 0);
    if (i == N - 1) {
      rc = complete_by_interrupt(&q, (uint16_t)i, &id, &len);
      irqs += rc == 0;
    } else {
      uint16_t old = q.avail_idx;
      publish(&q, (uint16_t)i);
      kick(&q, old);
      if (!take_used(&q, &id, &len)) rc = fail_with("request timed out");
    }
    if (!rc && (id != (uint32_t)i || len != LEN)) rc = fail_with("short or foreign completion");
  }
  if (!rc) {
    /* Neither constant nor repeating: not all bytes of a buffer equal, no two buffers equal. */
    for (int i = 0; i < N && !rc; i++) {
      int same = 1;
      for (int k = 1; k < LEN; k++) same &= buf[i * LEN + k] == buf[i * LEN];
      if (same) rc = fail_with("a buffer of one repeated byte");
      for (int j = 0; j < i && !rc; j++) {
        int eq = 1;
        for (int k = 0; k < LEN; k++) eq &= buf[i * LEN + k] == buf[j * LEN + k];
        if (eq) rc = fail_with("two buffers are equal");
      }
    }
  }
  puts_("virtio-rng: ");
  putdec(N * LEN);
  puts_(" bytes in ");
  putdec(N);
  puts_(" requests, ");
  putdec((uint64_t)irqs);
  puts_(" completion by interrupt, neither constant nor repeating:");
  verdict(rc);
  return rc;
}

/* ---- virtio-console ---- */

static int run_console(struct vdev *d, const struct virtio_options *o) {
  static struct vq rx, tx;
  static const char line[] = "hvc0: hello from the kvm-ts test guest\r\n";
  enum { RX_BUFS = 4, RX_LEN = 256 };
  why = 0;
  int rc = device_begin(d, 0);
  if (!rc) rc = queue_init(d, &rx, 0);
  if (!rc) rc = queue_init(d, &tx, 1);
  uint8_t *out = dma_alloc(sizeof line, 64);
  uint8_t *in = dma_alloc(RX_BUFS * RX_LEN, 64);
  if (!rc && (!out || !in)) rc = fail_with("out of DMA memory");
  if (!rc) rc = device_ready(d);
  if (!rc) {
    /* Receive buffers wait for input; nothing below waits for them unless kvmts.echo says so. */
    uint16_t old = rx.avail_idx;
    for (int i = 0; i < RX_BUFS; i++) {
      set_desc(&rx, (uint16_t)i, (uint64_t)(uintptr_t)(in + i * RX_LEN), RX_LEN, DESC_WRITE, 0);
      publish(&rx, (uint16_t)i);
    }
    kick(&rx, old);
    memcpy(out, line, sizeof line - 1);
    set_desc(&tx, 0, (uint64_t)(uintptr_t)out, sizeof line - 1, 0, 0);
    uint32_t id, len;
    rc = complete_by_interrupt(&tx, 0, &id, &len);
  }
  puts_("virtio-console: hvc0: ");
  putdec(sizeof line - 1);
  puts_(" bytes out, 1 completion by interrupt, input not waited for:");
  verdict(rc);
  if (!rc && o->echo) {
    /* Up to a few seconds for a line of input on hvc0, then print what came. */
    uint32_t id, len = 0;
    uint8_t got[RX_LEN + 1];
    int n = 0;
    for (int tries = 0; tries < 8 && n == 0; tries++)
      if (take_used(&rx, &id, &len) && id < RX_BUFS) {
        for (uint32_t k = 0; k < len && k < RX_LEN; k++) got[n++] = in[id * RX_LEN + k];
      }
    got[n] = 0;
    puts_("virtio-console: hvc0: received ");
    putdec((uint64_t)n);
    puts_(" bytes: \"");
    for (int k = 0; k < n; k++) putc_(got[k] >= 32 && got[k] < 127 ? (char)got[k] : '.');
    puts_("\"\n");
  }
  return rc;
}

/* ---- hostile: misdrive every device, then reset it ---- */

static uint64_t rng_state;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* An address a hostile driver might hand over: in its own arena, straddling RAM's end, past it, or absurd. */
static uint64_t hostile_addr(uint64_t ram_end) {
  switch (rnd() % 6) {
  case 0:
    return ram_end - (rnd() % 64);
  case 1:
    return ram_end + (rnd() % 0x10000);
  case 2:
    return rnd();
  case 3:
    return 0xfffffffffffff000ull + (rnd() % 0x1000);
  default:
    return arena_start + (rnd() % (arena_end - arena_start));
  }
}

/*
 * `rx_only`: the device may run, but only its queue 0 is ever set up (virtio-net's receive queue):
 * garbage transmit chains would leave the VM through its backend as frames.
 */
static void hostile(struct vdev *d, int may_run, int rx_only, uint64_t ram_end, int rounds) {
  static const uint32_t regs[] = {R_DEV_FEATURES_SEL, R_DRV_FEATURES, R_DRV_FEATURES_SEL, R_QUEUE_SEL, R_QUEUE_NUM, R_QUEUE_READY,
                                  R_QUEUE_NOTIFY, R_INT_ACK, R_STATUS, R_QUEUE_DESC, R_QUEUE_DESC + 4, R_QUEUE_DRIVER,
                                  R_QUEUE_DRIVER + 4, R_QUEUE_DEVICE, R_QUEUE_DEVICE + 4, 0x0ac, 0x0fc, R_CONFIG, R_CONFIG + 8};
  uint64_t area = arena_end - arena_start;
  for (int r = 0; r < rounds; r++) {
    /* Garbage where rings and descriptors will be looked for. */
    for (int k = 0; k < 64; k++) {
      uint64_t at = arena_start + (rnd() % (area / 8)) * 8;
      *(volatile uint64_t *)(uintptr_t)at = rnd();
    }
    switch (rnd() % 3) {
    case 0: /* any register, any value (DRIVER_OK only where the device may run) */
      if (rx_only) wr(d, R_STATUS, 0); /* random queue registers, so never running */
      for (int k = 0; k < 32; k++) {
        uint32_t reg = rnd() % 2 ? regs[rnd() % (sizeof regs / sizeof regs[0])] : (uint32_t)(rnd() % 0x140) & ~3u;
        uint32_t v = (uint32_t)rnd();
        if (reg == R_STATUS && (!may_run || rx_only)) v &= ~S_DRIVER_OK;
        wr(d, reg, v);
        (void)rd(d, (uint32_t)(rnd() % 0x140) & ~3u);
      }
      break;
    case 1: /* a plausible start with absurd queues */
      wr(d, R_STATUS, 0);
      wr(d, R_STATUS, S_ACK | S_DRIVER);
      wr(d, R_DRV_FEATURES_SEL, rnd() & 1);
      wr(d, R_DRV_FEATURES, (uint32_t)rnd());
      wr(d, R_DRV_FEATURES_SEL, 1);
      wr(d, R_DRV_FEATURES, 1 | (uint32_t)(rnd() & 0x10)); /* VERSION_1 (and maybe more) */
      wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
      for (uint32_t qi = 0; qi < 3; qi++) {
        uint32_t sel = rnd() % 4 == 0 ? (uint32_t)rnd() : qi;
        wr(d, R_QUEUE_SEL, rx_only ? 0 : sel);
        wr(d, R_QUEUE_NUM, rnd() % 3 == 0 ? (uint32_t)rnd() : 1u << (rnd() % 16));
        wr64(d, R_QUEUE_DESC, hostile_addr(ram_end) & ~15ull);
        wr64(d, R_QUEUE_DRIVER, hostile_addr(ram_end) & ~1ull);
        wr64(d, R_QUEUE_DEVICE, hostile_addr(ram_end) & ~3ull);
        wr(d, R_QUEUE_READY, 1);
      }
      if (may_run) wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
      for (int k = 0; k < 8; k++) wr(d, R_QUEUE_NOTIFY, rnd() % 4 == 0 ? (uint32_t)rnd() : (uint32_t)(rnd() % 3));
      break;
    default: { /* a valid queue full of hostile descriptors: loops, nesting, huge and stray buffers */
      struct vq q;
      wr(d, R_STATUS, 0);
      if (device_begin(d, 0) || queue_init(d, &q, 0)) break;
      if (may_run) wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
      for (uint32_t i = 0; i < q.size; i++) {
        uint16_t flags = (uint16_t)(rnd() & 7);
        uint64_t addr = flags & DESC_INDIRECT && rnd() % 2 ? (uint64_t)(uintptr_t)q.desc : hostile_addr(ram_end);
        uint32_t len = rnd() % 3 == 0 ? (uint32_t)rnd() : (uint32_t)(rnd() % 4096);
        set_desc(&q, (uint16_t)i, addr, len, flags, rnd() % 4 == 0 ? (uint16_t)rnd() : (uint16_t)(rnd() % q.size));
      }
      uint16_t old = q.avail_idx;
      for (int k = 0; k < 8; k++) publish(&q, (uint16_t)(rnd() % (q.size + 2)));
      if (rnd() % 4 == 0) q.avail[1] = (uint16_t)rnd(); /* an avail index far ahead */
      kick(&q, old);
      wr(d, R_QUEUE_NOTIFY, 0);
      for (int k = 0; k < 1000; k++) cpu_pause(); /* let the device chew on it */
      break;
    }
    }
  }
  wr(d, R_STATUS, 0); /* and a reset brings it back */
}

/* ---- all devices ---- */

int virtio_run(const struct virtio_options *o, uint64_t dma_start, uint64_t dma_len, uint64_t ram_end) {
  int failed = 0, disks = 0, nets = 0;
  if (o->nonet) puts_("virtio-net: skipped (no network device)\n");
  if (ndevices == 0) return 0;
  arena_start = dma_start;
  arena_end = dma_start + dma_len;
  for (int i = 0; i < ndevices; i++) devices[i].id = mmio_read32(devices[i].base + R_DEVICE_ID);
  if (o->hostile) {
    rng_state = o->hostile_seed ? o->hostile_seed * 0x9e3779b97f4a7c15ull : 1;
    for (int i = 0, n = 0; i < ndevices; i++) {
      int blk = devices[i].id == ID_BLK;
      arena_next = arena_start;
      /*
       * Queues full of garbage only where the device may act on it harmlessly: the entropy
       * device, a scratch disk, and a network device's receive queue. A disk the user attached is
       * never written, and the console would print the garbage, so those two get every register
       * misdriven but never DRIVER_OK; a network device's transmit queue is never set up (its
       * garbage would leave the VM as frames).
       */
      int net = devices[i].id == ID_NET;
      int may_run = devices[i].id == ID_RNG || (blk && o->scratch && n == 0) || net;
      hostile(&devices[i], may_run, net, ram_end, 200);
      n += blk;
    }
    puts_("virtio: hostile driving of ");
    putdec((uint64_t)ndevices);
    puts_(" devices done, each reset\n");
  }
  arena_next = arena_start;
  for (int i = 0; i < ndevices; i++) {
    struct vdev *d = &devices[i];
    switch (d->id) {
    case ID_BLK:
      failed |= run_blk(d, disks++, o) != 0;
      break;
    case ID_RNG:
      failed |= run_rng(d) != 0;
      break;
    case ID_CONSOLE:
      failed |= run_console(d, o) != 0;
      break;
    case ID_NET:
      failed |= net_setup(d, nets++, o) != 0;
      break;
    default:
      puts_("virtio: device id ");
      putdec(d->id);
      puts_(" at ");
      puthex(d->base);
      puts_(" not driven\n");
    }
  }
  if (nets) failed |= net_serve(o) != 0;
  return failed;
}
