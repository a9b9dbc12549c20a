/*
 * The built-in guest's virtio-net driver and its small network stack, at CPL3 like the rest:
 * Ethernet, ARP, IPv4 (no fragments), ICMP echo (both ways), UDP with echo on port 7, a DHCP client,
 * and a TCP that answers every segment with a reset. Rings are polled; time comes from the CMOS
 * RTC's seconds (read at most every 2^24 TSC cycles, so port I/O stays rare where it traps).
 * Options (README.md): kvmts.ip=A.B.C.D/N (static, else DHCP), kvmts.serve=SECONDS, kvmts.ping=A.B.C.D,
 * kvmts.echoport=PORT (UDP echo there too, not only on port 7), kvmts.udpbench=A.B.C.D:PORT:SIZE:COUNT
 * (a UDP echo client for the benchmark: COUNT datagrams of SIZE bytes, 16 in flight, between marks
 * 0x20 and 0x21 on port 0x80).
 */
#include "virtio.h"

#define NET_F_MAC (1ull << 5)
#define NET_F_MRG_RXBUF (1ull << 15)
#define NET_F_STATUS (1ull << 16)
#define NET_S_LINK_UP 1
#define HDR 12
#define BUF 2048
#define TXN 16
#define MAX_IFS 4
#define ETH_ARP 0x0806
#define ETH_IP 0x0800
#define IP_ICMP 1
#define IP_TCP 6
#define IP_UDP 17
#define ECHO_PORT 7
#define DHCP_SERVER 67
#define DHCP_CLIENT 68
#define PING_ID 0x4b56
#define PING_WANT 3
#define PING_MAX 10
#define DHCP_TRIES 4
#define CMOS_INDEX 0x70
#define CMOS_DATA 0x71

struct netif {
  struct vdev *dev;
  struct vq rx, tx;
  uint8_t mac[6];
  uint32_t ip, router;
  int prefix;
  uint8_t *rxbuf, *txbuf;
  uint32_t tx_busy; /* one bit per TX slot */
  /* DHCP */
  uint32_t xid, offered, server, offered_mask, offered_router;
  int dhcp_state; /* 0 off, 1 discovering, 2 requesting, 3 bound */
  /* the one ARP entry the ping client needs */
  uint32_t peer_ip;
  uint8_t peer_mac[6];
  int peer_known;
};

static struct netif ifs[MAX_IFS];
static uint16_t echo_port; /* kvmts.echoport */
#define BENCH_SRC_PORT 40007
#define BENCH_WINDOW 16
static uint16_t bench_port;
static uint64_t bench_echoed;
static int nifs;
static uint64_t served;
static uint16_t ip_ident = 1;
static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) {
  uint8_t v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline uint64_t rdtsc(void) {
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}

/* ---- time: seconds since the first call, from the RTC's seconds register ---- */

static uint64_t clock_tsc, clock_s;
static int clock_last = -1;

static int rtc_second(void) {
  outb(CMOS_INDEX, 0x0b);
  int binary = inb(CMOS_DATA) & 0x04;
  outb(CMOS_INDEX, 0x00);
  uint8_t x = inb(CMOS_DATA);
  return binary ? x : (x >> 4) * 10 + (x & 0xf);
}

static uint64_t seconds(void) {
  uint64_t t = rdtsc();
  if (clock_last >= 0 && t - clock_tsc < (1ull << 24)) return clock_s;
  clock_tsc = t;
  int s = rtc_second();
  if (clock_last >= 0) clock_s += (uint64_t)((s - clock_last + 60) % 60);
  clock_last = s;
  return clock_s;
}

/* ---- bytes ---- */

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v; }
static int mac_eq(const uint8_t *a, const uint8_t *b) {
  for (int i = 0; i < 6; i++)
    if (a[i] != b[i]) return 0;
  return 1;
}

static uint32_t sum16(const uint8_t *p, uint32_t n, uint32_t sum) {
  for (uint32_t i = 0; i + 1 < n; i += 2) sum += get16(p + i);
  if (n & 1) sum += (uint32_t)p[n - 1] << 8;
  return sum;
}
static uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}
/* The TCP/UDP checksum: pseudo-header of `ip` plus `len` bytes of the segment. */
static uint16_t l4_sum(const uint8_t *ip, const uint8_t *seg, uint32_t len) {
  uint32_t s = sum16(ip + 12, 8, 0) + ip[9] + len;
  return fold(sum16(seg, len, s));
}

static void put_ip(uint32_t a) {
  for (int i = 3; i >= 0; i--) {
    putdec((a >> (8 * i)) & 0xff);
    if (i) putc_('.');
  }
}
static void put_mac(const uint8_t *m) {
  static const char hx[] = "0123456789abcdef";
  for (int i = 0; i < 6; i++) {
    putc_(hx[m[i] >> 4]);
    putc_(hx[m[i] & 15]);
    if (i < 5) putc_(':');
  }
}
static uint32_t prefix_mask(int p) { return p <= 0 ? 0 : p >= 32 ? 0xffffffffu : ~((1u << (32 - p)) - 1); }
static int mask_prefix(uint32_t m) {
  int p = 0;
  while (p < 32 && (m & (1u << (31 - p)))) p++;
  return p;
}

/* ---- command line: kvmts.ip=A.B.C.D/N, kvmts.serve=S, kvmts.ping=A.B.C.D ---- */

static int parse_ip(const char *s, size_t n, uint32_t *ip, int *prefix) {
  uint32_t a = 0;
  int part = 0;
  size_t i = 0;
  for (; part < 4; part++) {
    uint64_t v = 0;
    size_t start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9' && i - start < 3) v = v * 10 + (uint64_t)(s[i++] - '0');
    if (i == start || v > 255) return 0;
    a = a << 8 | (uint32_t)v;
    if (part < 3 && (i >= n || s[i++] != '.')) return 0;
  }
  *ip = a;
  if (prefix) {
    uint64_t p = 32;
    if (i < n && s[i] == '/') {
      if (!parse_u64(s + i + 1, n - i - 1, &p) || p < 1 || p > 30) return 0;
      i = n;
    }
    *prefix = (int)p;
  }
  return i == n;
}

int net_option(const char *w, size_t n, struct virtio_options *o) {
  size_t eq = 0;
  while (eq < n && w[eq] != '=') eq++;
  if (eq >= n) return 0;
  const char *val = w + eq + 1;
  size_t vn = n - eq - 1;
  int prefix;
  if (word_is(w, eq, "kvmts.ip")) {
    if (o->net_ips < MAX_IFS && parse_ip(val, vn, &o->net_ip[o->net_ips], &prefix)) o->net_prefix[o->net_ips++] = (uint32_t)prefix;
  } else if (word_is(w, eq, "kvmts.serve")) {
    parse_u64(val, vn, &o->serve_s);
  } else if (word_is(w, eq, "kvmts.echoport")) {
    uint64_t p = 0;
    if (parse_u64(val, vn, &p) && p > 0 && p < 65536) o->echo_port = (uint32_t)p;
  } else if (word_is(w, eq, "kvmts.udpbench")) {
    /* A.B.C.D:PORT:SIZE:COUNT */
    size_t c1 = 0;
    while (c1 < vn && val[c1] != ':') c1++;
    uint64_t f[3] = {0, 0, 0};
    size_t at = c1 + 1;
    for (int k = 0; k < 3 && at <= vn; k++) {
      size_t e = at;
      while (e < vn && val[e] != ':') e++;
      if (!parse_u64(val + at, e - at, &f[k])) f[0] = 0;
      at = e + 1;
    }
    if (c1 < vn && parse_ip(val, c1, &o->bench_ip, 0) && f[0] > 0 && f[0] < 65536 && f[1] >= 1 && f[1] <= 1472 && f[2] > 0)
      o->bench_port = (uint32_t)f[0], o->bench_size = (uint32_t)f[1], o->bench_count = f[2];
  } else if (word_is(w, eq, "kvmts.ping")) {
    parse_ip(val, vn, &o->ping_ip, 0);
  } else {
    return 0;
  }
  return 1;
}

/* ---- rings ---- */

/* A used element if there is one (never waits). */
static int poll_used(struct vq *q, uint32_t *id, uint32_t *len) {
  if (*used_idx(q) == q->last_used) return 0;
  barrier();
  volatile uint8_t *e = q->used + 4 + 8 * (q->last_used % q->size);
  *id = *(volatile uint32_t *)e;
  *len = *(volatile uint32_t *)(e + 4);
  q->last_used++;
  if (q->event_idx) q->avail[2 + q->size] = (uint16_t)(q->last_used + SUPPRESS);
  return 1;
}

static void tx_reclaim(struct netif *n) {
  uint32_t id, len;
  while (poll_used(&n->tx, &id, &len))
    if (id < TXN) n->tx_busy &= ~(1u << id);
}

/* A free TX slot's frame buffer (past the zeroed header), or 0 if none frees up in time. */
static uint8_t *tx_frame(struct netif *n, int *slot) {
  for (uint64_t spins = 0; spins < SPIN_LIMIT; spins++) {
    tx_reclaim(n);
    for (int s = 0; s < TXN && s < (int)n->tx.size; s++)
      if (!(n->tx_busy & (1u << s))) {
        uint8_t *b = n->txbuf + (uint64_t)s * BUF;
        memset(b, 0, HDR);
        *slot = s;
        return b + HDR;
      }
    cpu_pause();
  }
  return 0;
}

/* Sends slot `s` with a frame of `len` bytes; by interrupt: waits for its completion that way. */
static int tx_send(struct netif *n, int s, uint32_t len, int by_irq) {
  if (len < 60) memset(n->txbuf + (uint64_t)s * BUF + HDR + len, 0, 60 - len), len = 60; /* Ethernet minimum */
  set_desc(&n->tx, (uint16_t)s, (uint64_t)(uintptr_t)(n->txbuf + (uint64_t)s * BUF), HDR + len, 0, 0);
  if (by_irq) {
    uint32_t id, ulen;
    return complete_by_interrupt(&n->tx, (uint16_t)s, &id, &ulen);
  }
  n->tx_busy |= 1u << s;
  uint16_t old = n->tx.avail_idx;
  publish(&n->tx, (uint16_t)s);
  kick(&n->tx, old);
  return 0;
}

static void rx_recycle(struct netif *n, uint32_t id) {
  uint16_t old = n->rx.avail_idx;
  publish(&n->rx, (uint16_t)id);
  kick(&n->rx, old);
}

/* ---- frames out ---- */

static uint8_t *eth_begin(uint8_t *f, const struct netif *n, const uint8_t *dst, uint16_t type) {
  memcpy(f, dst, 6);
  memcpy(f + 6, n->mac, 6);
  put16(f + 12, type);
  return f + 14;
}

static void ip_finish(uint8_t *ip, uint8_t proto, uint32_t src, uint32_t dst, uint32_t payload) {
  ip[0] = 0x45, ip[1] = 0;
  put16(ip + 2, (uint16_t)(20 + payload));
  put16(ip + 4, ip_ident++);
  put16(ip + 6, 0x4000); /* don't fragment */
  ip[8] = 64, ip[9] = proto;
  put16(ip + 10, 0);
  put32(ip + 12, src);
  put32(ip + 16, dst);
  put16(ip + 10, fold(sum16(ip, 20, 0)));
}

static int send_arp(struct netif *n, uint16_t op, const uint8_t *dmac, uint32_t tip, int by_irq) {
  int s;
  uint8_t *f = tx_frame(n, &s);
  if (!f) return fail_with("no transmit buffer came free");
  uint8_t *a = eth_begin(f, n, op == 1 ? bcast : dmac, ETH_ARP);
  put16(a, 1), put16(a + 2, ETH_IP), a[4] = 6, a[5] = 4, put16(a + 6, op);
  memcpy(a + 8, n->mac, 6);
  put32(a + 14, n->ip);
  if (op == 1) memset(a + 18, 0, 6);
  else memcpy(a + 18, dmac, 6);
  put32(a + 24, tip);
  return tx_send(n, s, 14 + 28, by_irq);
}

static int send_dhcp(struct netif *n, uint8_t type, int by_irq) {
  int s;
  uint8_t *f = tx_frame(n, &s);
  if (!f) return fail_with("no transmit buffer came free");
  uint8_t *ip = eth_begin(f, n, bcast, ETH_IP);
  uint8_t *udp = ip + 20, *b = udp + 8;
  memset(b, 0, 240);
  b[0] = 1, b[1] = 1, b[2] = 6;
  put32(b + 4, n->xid);
  put16(b + 10, 0x8000); /* broadcast replies: we have no address yet */
  memcpy(b + 28, n->mac, 6);
  put32(b + 236, 0x63825363);
  uint8_t *o = b + 240;
  *o++ = 53, *o++ = 1, *o++ = type;
  if (type == 3) {
    *o++ = 50, *o++ = 4, put32(o, n->offered), o += 4;
    *o++ = 54, *o++ = 4, put32(o, n->server), o += 4;
  }
  *o++ = 55, *o++ = 4, *o++ = 1, *o++ = 3, *o++ = 6, *o++ = 54;
  *o++ = 255;
  uint32_t blen = (uint32_t)(o - b);
  put16(udp, DHCP_CLIENT), put16(udp + 2, DHCP_SERVER), put16(udp + 4, (uint16_t)(8 + blen)), put16(udp + 6, 0);
  ip_finish(ip, IP_UDP, 0, 0xffffffffu, 8 + blen);
  uint16_t c = l4_sum(ip, udp, 8 + blen);
  put16(udp + 6, c ? c : 0xffff);
  return tx_send(n, s, 14 + 20 + 8 + blen, by_irq);
}

static uint16_t ping_seq;
static int ping_sent, ping_replies;
static uint32_t ping_target;

/* An echo request to ping_target, through the next hop whose MAC the ARP entry holds. */
static int send_ping(struct netif *n) {
  int s;
  uint8_t *f = tx_frame(n, &s);
  if (!f) return fail_with("no transmit buffer came free");
  uint8_t *ip = eth_begin(f, n, n->peer_mac, ETH_IP);
  uint8_t *icmp = ip + 20;
  icmp[0] = 8, icmp[1] = 0;
  put16(icmp + 2, 0);
  put16(icmp + 4, PING_ID);
  put16(icmp + 6, ++ping_seq);
  for (int i = 0; i < 56; i++) icmp[8 + i] = (uint8_t)i;
  put16(icmp + 2, fold(sum16(icmp, 64, 0)));
  ip_finish(ip, IP_ICMP, n->ip, ping_target, 64);
  return tx_send(n, s, 14 + 20 + 64, 0);
}

/*
 * Sends back frame `f` (`len` bytes) as the reply it was turned into: Ethernet addresses swapped,
 * IPv4 addresses swapped with a fresh header checksum. The L4 part is the caller's.
 */
static int reply_frame(struct netif *n, const uint8_t *f, uint32_t len, uint8_t **out, int *slot) {
  uint8_t *r = tx_frame(n, slot);
  if (!r || len > BUF - HDR) return 0;
  memcpy(r, f, len);
  memcpy(r, f + 6, 6);
  memcpy(r + 6, n->mac, 6);
  uint8_t *ip = r + 14;
  uint32_t src = get32(ip + 12);
  put32(ip + 12, n->ip);
  put32(ip + 16, src);
  ip[8] = 64;
  put16(ip + 10, 0);
  uint32_t ihl = (uint32_t)(ip[0] & 15) * 4;
  put16(ip + 10, fold(sum16(ip, ihl, 0)));
  *out = r;
  return 1;
}

/* ---- frames in ---- */

static void dhcp_input(struct netif *n, const uint8_t *b, uint32_t len) {
  if (len < 240 || b[0] != 2 || get32(b + 4) != n->xid || !mac_eq(b + 28, n->mac) || get32(b + 236) != 0x63825363) return;
  uint8_t type = 0;
  uint32_t server = 0, mask = 0, router = 0;
  for (uint32_t i = 240; i < len && b[i] != 255;) {
    if (b[i] == 0) {
      i++;
      continue;
    }
    if (i + 1 >= len || i + 2 + b[i + 1] > len) break;
    uint8_t code = b[i], l = b[i + 1];
    const uint8_t *v = b + i + 2;
    if (code == 53 && l >= 1) type = v[0];
    if (code == 54 && l >= 4) server = get32(v);
    if (code == 1 && l >= 4) mask = get32(v);
    if (code == 3 && l >= 4) router = get32(v);
    i += 2u + l;
  }
  if (type == 2 && n->dhcp_state == 1) { /* OFFER */
    n->offered = get32(b + 16);
    n->server = server ? server : get32(b + 20);
    n->offered_mask = mask;
    n->offered_router = router;
    n->dhcp_state = 2;
    send_dhcp(n, 3, 0);
  } else if (type == 5 && n->dhcp_state == 2) { /* ACK */
    n->ip = get32(b + 16);
    if (mask) n->offered_mask = mask;
    if (router) n->offered_router = router;
    n->prefix = n->offered_mask ? mask_prefix(n->offered_mask) : 24;
    n->router = n->offered_router;
    n->dhcp_state = 3;
  } else if (type == 6 && n->dhcp_state == 2) { /* NAK: start over */
    n->dhcp_state = 1;
    send_dhcp(n, 1, 0);
  }
}

/* Handles one received frame; returns 1 if it was answered. */
static int handle(struct netif *n, const uint8_t *f, uint32_t len) {
  if (len < 14 || (!mac_eq(f, n->mac) && !mac_eq(f, bcast))) return 0;
  uint16_t type = get16(f + 12);
  if (type == ETH_ARP && len >= 14 + 28) {
    const uint8_t *a = f + 14;
    if (get16(a) != 1 || get16(a + 2) != ETH_IP || a[4] != 6 || a[5] != 4) return 0;
    uint32_t spa = get32(a + 14), tpa = get32(a + 24);
    if (n->peer_ip && spa == n->peer_ip) memcpy(n->peer_mac, a + 8, 6), n->peer_known = 1;
    if (get16(a + 6) == 1 && n->ip && tpa == n->ip) return send_arp(n, 2, a + 8, spa, 0) == 0;
    return 0;
  }
  if (type != ETH_IP || len < 14 + 20) return 0;
  const uint8_t *ip = f + 14;
  uint32_t ihl = (uint32_t)(ip[0] & 15) * 4, tot = get16(ip + 2);
  if ((ip[0] >> 4) != 4 || ihl < 20 || tot < ihl || tot > len - 14 || fold(sum16(ip, ihl, 0)) != 0) return 0;
  if (get16(ip + 6) & 0x3fff) return 0; /* fragments: not handled */
  uint32_t dst = get32(ip + 16);
  const uint8_t *l4 = ip + ihl;
  uint32_t l4len = tot - ihl;
  uint8_t proto = ip[9];
  if (proto == IP_UDP && l4len >= 8 && get16(l4 + 2) == DHCP_CLIENT && n->dhcp_state) {
    dhcp_input(n, l4 + 8, l4len - 8);
    return 0;
  }
  if (!n->ip || dst != n->ip) return 0;
  uint8_t *r;
  int s;
  if (proto == IP_ICMP && l4len >= 8) {
    if (l4[0] == 0 && get16(l4 + 4) == PING_ID && get32(ip + 12) == ping_target) {
      ping_replies++;
      return 0;
    }
    if (l4[0] != 8 || fold(sum16(l4, l4len, 0)) != 0 || !reply_frame(n, f, 14 + tot, &r, &s)) return 0;
    uint8_t *icmp = r + 14 + ihl;
    icmp[0] = 0;
    put16(icmp + 2, 0);
    put16(icmp + 2, fold(sum16(icmp, l4len, 0)));
    return tx_send(n, s, 14 + tot, 0) == 0;
  }
  uint16_t dport = l4len >= 8 ? get16(l4 + 2) : 0;
  if (proto == IP_UDP && bench_port && dport == BENCH_SRC_PORT && get16(l4) == bench_port) {
    bench_echoed++;
    return 0;
  }
  if (proto == IP_UDP && l4len >= 8 && (dport == ECHO_PORT || (echo_port && dport == echo_port))) {
    if (!reply_frame(n, f, 14 + tot, &r, &s)) return 0;
    uint8_t *udp = r + 14 + ihl;
    put16(udp, dport);
    put16(udp + 2, get16(l4));
    put16(udp + 6, 0);
    uint16_t c = l4_sum(r + 14, udp, l4len);
    put16(udp + 6, c ? c : 0xffff);
    return tx_send(n, s, 14 + tot, 0) == 0;
  }
  if (proto == IP_TCP && l4len >= 20 && !(l4[13] & 0x04)) {
    /* No TCP here: every segment is answered with a reset (RFC 793's closed port). */
    uint32_t dataoff = (uint32_t)(l4[12] >> 4) * 4;
    if (dataoff < 20 || dataoff > l4len || !reply_frame(n, f, 14 + ihl + 20, &r, &s)) return 0;
    uint8_t *ipr = r + 14, *t = ipr + ihl;
    uint32_t seg = l4len - dataoff + ((l4[13] & 0x02) ? 1 : 0) + ((l4[13] & 0x01) ? 1 : 0);
    int ack = (l4[13] & 0x10) != 0;
    put16(t, get16(l4 + 2)), put16(t + 2, get16(l4));
    put32(t + 4, ack ? get32(l4 + 8) : 0);
    put32(t + 8, get32(l4 + 4) + seg);
    t[12] = 5 << 4, t[13] = ack ? 0x04 : 0x14;
    put16(t + 14, 0), put16(t + 16, 0), put16(t + 18, 0);
    put16(ipr + 2, (uint16_t)(ihl + 20));
    put16(ipr + 10, 0);
    put16(ipr + 10, fold(sum16(ipr, ihl, 0)));
    put16(t + 16, l4_sum(ipr, t, 20));
    return tx_send(n, s, 14 + ihl + 20, 0) == 0;
  }
  return 0;
}

/* Takes every received frame waiting on `n`, handles it and gives the buffer back. */
static void poll_rx(struct netif *n) {
  uint32_t id, len;
  while (poll_used(&n->rx, &id, &len)) {
    if (id >= n->rx.size) continue; /* not ours: nothing to give back */
    const uint8_t *b = n->rxbuf + (uint64_t)id * BUF;
    uint16_t nbuf = (uint16_t)(b[10] | b[11] << 8);
    if (nbuf == 1 && len >= HDR + 14 && len <= BUF) served += (uint64_t)handle(n, b + HDR, len - HDR);
    rx_recycle(n, id);
    /* A frame spread over several buffers (larger than ours: not expected): dropped, all given back. */
    for (uint16_t k = 1; k < nbuf; k++) {
      for (uint64_t spins = 0; !poll_used(&n->rx, &id, &len); spins++)
        if (spins > SPIN_LIMIT) return;
      if (id < n->rx.size) rx_recycle(n, id);
    }
  }
}

/* ---- set-up ---- */

static void put_addr_line(const struct netif *n, const char *what) {
  puts_("virtio-net: ");
  put_mac(n->mac);
  puts_(what);
  put_ip(n->ip);
  putc_('/');
  putdec((uint64_t)n->prefix);
}

static int dhcp(struct netif *n) {
  n->xid = get32(n->mac + 2) ^ 0x6b766d74u;
  n->dhcp_state = 1;
  for (int attempt = 0; attempt < DHCP_TRIES && n->dhcp_state != 3; attempt++) {
    if (attempt > 0) {
      n->dhcp_state = 1;
      if (send_dhcp(n, 1, 0)) return -1;
    }
    uint64_t start = seconds();
    while (n->dhcp_state != 3 && seconds() - start < 2) {
      poll_rx(n);
      cpu_pause();
    }
  }
  if (n->dhcp_state != 3) {
    n->dhcp_state = 0;
    return fail_with("no DHCP answer");
  }
  return 0;
}

int net_setup(struct vdev *d, int index, const struct virtio_options *o) {
  why = 0;
  echo_port = (uint16_t)o->echo_port;
  if (nifs >= MAX_IFS) {
    puts_("virtio-net: more devices than the guest drives\n");
    return 0;
  }
  struct netif *n = &ifs[nifs];
  memset(n, 0, sizeof *n);
  n->dev = d;
  int rc = device_begin(d, NET_F_MAC | NET_F_STATUS | NET_F_MRG_RXBUF);
  if (!rc && !(d->features & NET_F_MAC)) rc = fail_with("no MAC offered");
  if (!rc) rc = queue_init(d, &n->rx, 0);
  if (!rc) rc = queue_init(d, &n->tx, 1);
  n->rxbuf = dma_alloc((uint64_t)QSIZE * BUF, 4096);
  n->txbuf = dma_alloc((uint64_t)TXN * BUF, 4096);
  if (!rc && (!n->rxbuf || !n->txbuf)) rc = fail_with("out of DMA memory");
  if (!rc) rc = device_ready(d);
  uint32_t c0 = rd(d, R_CONFIG), c1 = rd(d, R_CONFIG + 4);
  for (int i = 0; i < 4; i++) n->mac[i] = (uint8_t)(c0 >> (8 * i));
  n->mac[4] = (uint8_t)c1, n->mac[5] = (uint8_t)(c1 >> 8);
  int link = !(d->features & NET_F_STATUS) || ((c1 >> 16) & NET_S_LINK_UP);
  if (!rc && !link) rc = fail_with("link down");
  if (!rc) {
    for (uint32_t i = 0; i < n->rx.size; i++) {
      set_desc(&n->rx, (uint16_t)i, (uint64_t)(uintptr_t)(n->rxbuf + (uint64_t)i * BUF), BUF, DESC_WRITE, 0);
      publish(&n->rx, (uint16_t)i);
    }
    kick(&n->rx, 0);
  }
  int is_static = index < o->net_ips;
  if (is_static) n->ip = o->net_ip[index], n->prefix = (int)o->net_prefix[index];
  if (!rc) nifs++; /* only a device whose rings are set up is polled later */
  /* The first frame out completes by interrupt: a gratuitous ARP, or the DHCP DISCOVER. */
  if (!rc) {
    if (is_static) rc = send_arp(n, 1, bcast, n->ip, 1);
    else n->xid = get32(n->mac + 2) ^ 0x6b766d74u, n->dhcp_state = 1, rc = send_dhcp(n, 1, 1);
  }
  puts_("virtio-net: eth");
  putdec((uint64_t)index);
  puts_(": ");
  put_mac(n->mac);
  puts_(link ? ", link up" : ", link down");
  puts_(d->features & NET_F_MRG_RXBUF ? ", mergeable rx buffers" : "");
  puts_(", 1 completion by interrupt:");
  verdict(rc);
  if (rc) {
    n->ip = 0;
    return rc;
  }
  if (is_static) {
    put_addr_line(n, ": address ");
    puts_(" (static)\n");
    return 0;
  }
  why = 0;
  rc = dhcp(n);
  if (rc) {
    puts_("virtio-net: ");
    put_mac(n->mac);
    puts_(": dhcp FAIL ");
    puts_(why);
    puts_("\n");
    return rc;
  }
  put_addr_line(n, ": dhcp ok, address ");
  puts_(" from ");
  put_ip(n->server);
  puts_("\n");
  return 0;
}

/* ---- serving and pinging ---- */

/* The interface that reaches `ip` (on its subnet, else through its router), and the next hop. */
static struct netif *route(uint32_t ip, uint32_t *hop) {
  for (int i = 0; i < nifs; i++) {
    uint32_t m = prefix_mask(ifs[i].prefix);
    if (ifs[i].ip && (ifs[i].ip & m) == (ip & m)) return *hop = ip, &ifs[i];
  }
  for (int i = 0; i < nifs; i++)
    if (ifs[i].ip && ifs[i].router) return *hop = ifs[i].router, &ifs[i];
  return 0;
}

/* One step of the ping client each second: ARP for the next hop until known, then an echo request. */
static void ping_tick(struct netif *n) {
  if (!n->peer_known) send_arp(n, 1, bcast, n->peer_ip, 0);
  else if (send_ping(n) == 0) ping_sent++;
}

/* The benchmark client: COUNT datagrams to the target, at most BENCH_WINDOW unanswered at a time. */
static int udp_bench(const struct virtio_options *o) {
  uint32_t hop = 0;
  struct netif *n = route(o->bench_ip, &hop);
  why = 0;
  if (!n) return fail_with("no route to the benchmark target");
  n->peer_ip = hop;
  n->peer_known = 0;
  uint64_t start = seconds();
  for (uint64_t last = ~0ull; !n->peer_known && seconds() - start < 4;) {
    if (seconds() != last) last = seconds(), send_arp(n, 1, bcast, hop, 0);
    poll_rx(n);
    cpu_pause();
  }
  if (!n->peer_known) return fail_with("no ARP answer from the next hop");
  bench_port = (uint16_t)o->bench_port;
  bench_echoed = 0;
  uint64_t sent = 0, lost = 0, seen = 0, stalled = seconds();
  outb(POST_PORT, 0x20);
  while (bench_echoed + lost < o->bench_count) {
    while (sent < o->bench_count && sent - bench_echoed - lost < BENCH_WINDOW) {
      int s;
      uint8_t *f = tx_frame(n, &s);
      if (!f) break;
      uint8_t *ip = eth_begin(f, n, n->peer_mac, ETH_IP);
      uint8_t *u = ip + 20;
      put16(u, BENCH_SRC_PORT), put16(u + 2, bench_port), put16(u + 4, (uint16_t)(8 + o->bench_size)), put16(u + 6, 0);
      put32(u + 8, (uint32_t)sent);
      ip_finish(ip, IP_UDP, n->ip, o->bench_ip, 8 + o->bench_size);
      /* UDP checksum 0: none (IPv4 allows it), so the payload is not summed per datagram */
      tx_send(n, s, 14 + 20 + 8 + o->bench_size, 0);
      sent++;
    }
    poll_rx(n);
    tx_reclaim(n);
    if (bench_echoed != seen) {
      seen = bench_echoed;
      stalled = seconds();
    } else if (seconds() - stalled >= 2) {
      /* Nothing came back for 2 s: what is in flight is lost; go on with the rest. */
      lost = sent - bench_echoed;
      stalled = seconds();
    }
  }
  outb(POST_PORT, 0x21);
  puts_("virtio-net: udp benchmark to ");
  put_ip(o->bench_ip);
  putc_(':');
  putdec(o->bench_port);
  puts_(": ");
  putdec(bench_echoed);
  puts_(" of ");
  putdec(o->bench_count);
  puts_(" datagrams of ");
  putdec(o->bench_size);
  puts_(" bytes echoed (marks 0x20/0x21 on port 0x80):");
  int rc = bench_echoed > 0 ? 0 : fail_with("no echo came back");
  verdict(rc);
  bench_port = 0;
  return rc;
}

int net_serve(const struct virtio_options *o) {
  int failed = 0;
  if (nifs > 0 && o->bench_count) failed |= udp_bench(o) != 0;
  if (nifs == 0 || (!o->serve_s && !o->ping_ip)) return failed;
  uint32_t hop = 0;
  struct netif *pn = o->ping_ip ? route(o->ping_ip, &hop) : 0;
  ping_target = o->ping_ip;
  if (pn) pn->peer_ip = hop;
  for (int i = 0; i < nifs && o->serve_s; i++) {
    if (!ifs[i].ip) continue;
    puts_("virtio-net: serving ");
    put_ip(ifs[i].ip);
    puts_(" for ");
    putdec(o->serve_s);
    puts_(" s\n");
  }
  served = 0;
  uint64_t start = seconds(), last_tick = ~0ull;
  /* Without kvmts.serve the ping client gets 8 s; with it, the serving time. */
  uint64_t until = o->serve_s ? o->serve_s : 8;
  for (;;) {
    uint64_t t = seconds() - start;
    if (t >= until) break;
    if (!o->serve_s && ping_replies >= PING_WANT) break;
    if (pn && t != last_tick) {
      last_tick = t;
      if (ping_replies < PING_WANT && ping_sent < PING_MAX) ping_tick(pn);
    }
    for (int i = 0; i < nifs; i++) {
      poll_rx(&ifs[i]);
      tx_reclaim(&ifs[i]);
    }
    cpu_pause();
  }
  if (o->serve_s) {
    puts_("virtio-net: served ");
    putdec(served);
    puts_(" packets\n");
  }
  if (o->ping_ip) {
    why = 0;
    int rc = !pn ? fail_with("no route to it") : ping_replies > 0 ? 0 : fail_with("no reply");
    puts_("virtio-net: ping ");
    put_ip(o->ping_ip);
    puts_(": ");
    putdec((uint64_t)ping_replies);
    puts_(" of ");
    putdec((uint64_t)ping_sent);
    puts_(" replies:");
    verdict(rc);
    failed |= rc != 0;
  }
  return failed;
}
