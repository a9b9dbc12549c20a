/*
 * The measuring stick for scripts/bench-pio.ts: the same hand-assembled long-mode guest, the same
 * VM shape (in-kernel irqchip, one vCPU), run by the smallest possible C loop around KVM_RUN.
 * Not product code: it includes the system's <linux/kvm.h>, which kvm-ts itself never does.
 *
 * usage: pio-ref CODE_HEX MARKER_PORT EXIT_PORT
 * Prints one JSON line: {"exits": N, "ns": T, "cpuNs": C}: wall time and this thread's CPU time
 * (/proc/thread-self/schedstat) between the two marker writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM_SIZE (8u << 20)
#define GDT_ADDR 0x500
#define PML4 0x1000
#define PDPT 0x2000
#define PD 0x3000
#define CODE_ADDR 0x10000

static void die(const char *what) {
  fprintf(stderr, "pio-ref: %s: %s\n", what, strerror(errno));
  exit(1);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t thread_cpu_ns(void) {
  unsigned long long ns = 0;
  FILE *f = fopen("/proc/thread-self/schedstat", "r");
  if (!f || fscanf(f, "%llu", &ns) != 1) die("read /proc/thread-self/schedstat");
  fclose(f);
  return ns;
}

static void flat(struct kvm_segment *s, uint16_t sel, uint8_t type, int code) {
  memset(s, 0, sizeof *s);
  s->base = 0;
  s->limit = 0xffffffff;
  s->selector = sel;
  s->type = type;
  s->present = 1;
  s->s = 1;
  s->g = 1;
  s->db = code ? 0 : 1;
  s->l = code ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: pio-ref CODE_HEX MARKER_PORT EXIT_PORT\n");
    return 2;
  }
  const char *hex = argv[1];
  unsigned marker = (unsigned)strtoul(argv[2], NULL, 0), exit_port = (unsigned)strtoul(argv[3], NULL, 0);

  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("open /dev/kvm");
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) die("KVM_CREATE_VM");
  if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0) die("KVM_SET_TSS_ADDR");
  if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) die("KVM_CREATE_IRQCHIP");

  uint8_t *mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) die("mmap");
  struct kvm_userspace_memory_region region = {.slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE, .userspace_addr = (uintptr_t)mem};
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION");

  /* The same layout as tests/helpers/tiny-guest.ts. */
  uint64_t *gdt = (uint64_t *)(mem + GDT_ADDR);
  gdt[0] = 0;
  gdt[1] = 0x00af9b000000ffffull;
  gdt[2] = 0x00cf93000000ffffull;
  *(uint64_t *)(mem + PML4) = PDPT | 3;
  *(uint64_t *)(mem + PDPT) = PD | 3;
  *(uint64_t *)(mem + PD) = 0x83;
  *(uint64_t *)(mem + PD + 8) = 0x200000 | 0x83;
  size_t n = strlen(hex) / 2;
  for (size_t i = 0; i < n; i++) {
    unsigned b;
    sscanf(hex + 2 * i, "%2x", &b);
    mem[CODE_ADDR + i] = (uint8_t)b;
  }

  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) die("KVM_CREATE_VCPU");
  int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) die("mmap kvm_run");

  /* CPUID as KVM supports it, so the guest sees the same CPU as under kvm-ts. */
  struct kvm_cpuid2 *cpuid = calloc(1, sizeof *cpuid + 256 * sizeof(struct kvm_cpuid_entry2));
  cpuid->nent = 256;
  if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) die("KVM_GET_SUPPORTED_CPUID");
  if (ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0) die("KVM_SET_CPUID2");

  struct kvm_sregs sregs;
  if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) die("KVM_GET_SREGS");
  flat(&sregs.cs, 0x08, 0xb, 1);
  flat(&sregs.ds, 0x10, 0x3, 0);
  sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
  sregs.gdt.base = GDT_ADDR;
  sregs.gdt.limit = 23;
  sregs.cr0 = (sregs.cr0 & ~((1ull << 30) | (1ull << 29))) | 1 | (1u << 4) | (1ull << 31);
  sregs.cr3 = PML4;
  sregs.cr4 |= 1u << 5;
  sregs.efer |= (1u << 8) | (1u << 10);
  if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) die("KVM_SET_SREGS");
  struct kvm_regs regs = {.rip = CODE_ADDR, .rflags = 2, .rsp = 0x8000};
  if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS");

  uint64_t exits = 0, marks[2] = {0, 0}, cpu[2] = {0, 0};
  int nmarks = 0;
  for (;;) {
    if (ioctl(vcpu, KVM_RUN, 0) < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      die("KVM_RUN");
    }
    if (run->exit_reason != KVM_EXIT_IO) {
      fprintf(stderr, "pio-ref: unexpected exit reason %u\n", run->exit_reason);
      return 1;
    }
    exits++;
    uint16_t port = run->io.port;
    if (port == marker && nmarks < 2) {
      marks[nmarks] = now_ns();
      cpu[nmarks++] = thread_cpu_ns();
    }
    else if (port == exit_port) break;
  }
  printf("{\"exits\": %llu, \"ns\": %llu, \"cpuNs\": %llu}\n", (unsigned long long)exits, (unsigned long long)(marks[1] - marks[0]),
         (unsigned long long)(cpu[1] - cpu[0]));
  return 0;
}
