/* The built-in guest's virtio-mmio driver core (virtio.c), shared with the device drivers in other files (net.c). */
#ifndef KVMTS_VIRTIO_H
#define KVMTS_VIRTIO_H
#include "guest.h"

/* ---- virtio-mmio registers (virtio 1.x 4.2.2) ---- */
#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_DEV_FEATURES 0x010
#define R_DEV_FEATURES_SEL 0x014
#define R_DRV_FEATURES 0x020
#define R_DRV_FEATURES_SEL 0x024
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_INT_STATUS 0x060
#define R_INT_ACK 0x064
#define R_STATUS 0x070
#define R_QUEUE_DESC 0x080
#define R_QUEUE_DRIVER 0x090
#define R_QUEUE_DEVICE 0x0a0
#define R_CONFIG 0x100

#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define S_NEEDS_RESET 0x40

#define F_INDIRECT_DESC (1ull << 28)
#define F_EVENT_IDX (1ull << 29)
#define F_VERSION_1 (1ull << 32)

#define ID_NET 1
#define ID_BLK 2
#define ID_CONSOLE 3
#define ID_RNG 4

#define DESC_NEXT 1
#define DESC_WRITE 2
#define DESC_INDIRECT 4

#define IOAPIC 0xfec00000ull
#define LAPIC 0xfee00000ull
#define IRQ_VECTOR 0x30
#define SPURIOUS_VECTOR 0x3f
#define POST_PORT 0x80
#define MAX_DEVICES 16
#define QSIZE 64
/* Polls of a used ring before giving up: seconds at CPL3 speed, never forever. */
#define SPIN_LIMIT (1ull << 27)
#define MiB (1ull << 20)
/* used_event this far ahead of the driver's last used index means "no interrupts, thanks". */
#define SUPPRESS 0x7fff

struct vdev {
  uint64_t base;
  uint32_t gsi;
  uint32_t id;
  uint64_t features;
  char name[8];
};

struct desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};

struct vq {
  struct vdev *dev;
  uint32_t index, size;
  volatile struct desc *desc;
  volatile uint16_t *avail; /* flags, idx, ring[size], used_event */
  volatile uint8_t *used;   /* flags, idx, {id, len}[size], avail_event */
  uint16_t avail_idx, last_used;
  int event_idx;
};

static inline uint32_t rd(struct vdev *d, uint32_t off) { return mmio_read32(d->base + off); }
static inline void wr(struct vdev *d, uint32_t off, uint32_t v) { mmio_write32(d->base + off, v); }
static inline void wr64(struct vdev *d, uint32_t off, uint64_t v) {
  wr(d, off, (uint32_t)v);
  wr(d, off + 4, (uint32_t)(v >> 32));
}
static inline volatile uint16_t *used_idx(struct vq *q) { return (volatile uint16_t *)(q->used + 2); }
static inline volatile uint16_t *avail_event(struct vq *q) { return (volatile uint16_t *)(q->used + 4 + 8 * q->size); }

/* The first failure of the check under way, and how a check records it (returns -1). */
extern const char *why;
int fail_with(const char *w);
/* The DMA arena: rings and buffers, zeroed; 0 when it is used up. */
extern uint64_t arena_start, arena_next, arena_end;
void *dma_alloc(uint64_t size, uint64_t align);
/* Reset, ACK, DRIVER, features (`wanted` and the transport ones), FEATURES_OK. */
int device_begin(struct vdev *d, uint64_t wanted);
int queue_init(struct vdev *d, struct vq *q, uint32_t index);
int device_ready(struct vdev *d);
void set_desc(struct vq *q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next);
void publish(struct vq *q, uint16_t head);
void kick(struct vq *q, uint16_t old);
/* The next used element, polled until it comes or SPIN_LIMIT; 0 on timeout. */
int take_used(struct vq *q, uint32_t *id, uint32_t *len);
int complete_by_interrupt(struct vq *q, uint16_t head, uint32_t *id, uint32_t *len);
/* The boot CPU's LAPIC software-enabled, LINT0 masked (once): IOAPIC routes and MSI-X messages need it. */
void lapic_enable(void);
uint32_t wait_irq(uint32_t target);
/* Ends a check's line: " ok", or " FAIL <why>". */
void verdict(int rc);

/* virtio-net (net.c): set up device `d` as eth<index> and get its address; after every device, serve. */
int net_setup(struct vdev *d, int index, const struct virtio_options *o);
int net_serve(const struct virtio_options *o);
/* Parses kvmts.ip=, kvmts.serve=, kvmts.ping=; 1 if `w` was one of them. */
int net_option(const char *w, size_t n, struct virtio_options *o);
#endif
