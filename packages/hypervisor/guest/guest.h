/* What the built-in guest's C files share: console output, memory helpers, MMIO access. */
#ifndef KVMTS_GUEST_H
#define KVMTS_GUEST_H
#include <stddef.h>
#include <stdint.h>

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);

void putc_(char c);
void puts_(const char *s);
void putdec(uint64_t v);
void puthex(uint64_t v);
/* "0x" and exactly `digits` hex digits */
void puthexw(uint64_t v, int digits);

static inline uint32_t mmio_read32(uint64_t a) { return *(volatile uint32_t *)a; }
static inline void mmio_write32(uint64_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }
static inline void mfence(void) { __asm__ volatile("mfence" ::: "memory"); }
static inline void cpu_pause(void) { __asm__ volatile("pause"); }

/* Command-line helpers (main.c). */
int parse_u64(const char *s, size_t n, uint64_t *out);
int word_is(const char *w, size_t n, const char *key);

/* Set by the ring-0 interrupt handler (start.S). */
extern volatile uint32_t irq_count;

/* What the command line says about virtio (virtio.c). */
struct virtio_options {
  uint64_t fill_mib;     /* kvmts.fill=M */
  int hostile;           /* kvmts.hostile[=seed] */
  uint64_t hostile_seed;
  int scratch;           /* kvmts.scratch: vda is a scratch disk the self-test may write */
  uint64_t bench_mib;    /* kvmts.bench=M: sequential write/read benchmark over vda */
  uint64_t bench_iops;   /* kvmts.iops=N: N random 4 KiB reads */
  int echo;              /* kvmts.echo: wait a little for hvc0 input and print it */
  int nonet;             /* kvmts.nonet: the VMM could not give the network device it meant to */
  uint32_t net_ip[4];    /* kvmts.ip=A.B.C.D/N, one per network device in order (0: DHCP) */
  uint32_t net_prefix[4];
  int net_ips;
  uint64_t serve_s;      /* kvmts.serve=SECONDS: answer ARP, ICMP echo and UDP echo that long */
  uint32_t ping_ip;      /* kvmts.ping=A.B.C.D: echo requests to it */
  uint32_t echo_port;    /* kvmts.echoport=PORT: UDP echo there as well as on port 7 */
  uint32_t bench_ip, bench_port, bench_size; /* kvmts.udpbench=A.B.C.D:PORT:SIZE:COUNT */
  uint64_t bench_count;
};

/* Parses one command-line word; returns 1 if it was a virtio one. */
int virtio_option(const char *w, size_t n, struct virtio_options *o);
/* Finds, initialises and self-tests every virtio-mmio device; returns 0 if all checks passed. */
int virtio_run(const struct virtio_options *o, uint64_t dma_start, uint64_t dma_len, uint64_t ram_end);
/* The machine's ECAM window for bus 0 (src/devices/pci/bus.ts, docs/design-vmm.md). */
#define ECAM_WINDOW 0xe0000000ull
#define ECAM_WINDOW_SIZE 0x100000ull
/* Enumerates PCI bus 0 through ECAM and drives its virtio-rng over virtio-pci with MSI-X (pci.c); 0 if all checks passed. */
int pci_run(uint64_t dma_start, uint64_t dma_len);
/* kvmts.acpi=poweroff|reboot (acpi.c): end the VM through the ACPI tables' PM1a_CNT or RESET_REG. */
#define ACPI_POWEROFF 1
#define ACPI_REBOOT 2
/* Parses one command-line word; returns 1 if it was kvmts.acpi=…. */
int acpi_option(const char *w, size_t n, int *action);
/* Finds the tables and writes the sleep or reset register; returns (-1) only if that did not end the VM. */
int acpi_act(int action);
#endif
