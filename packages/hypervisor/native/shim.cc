// The syscall shim: file descriptors, ioctl, mmap, eventfd, thread kicks, fd readiness, the
// peer credentials of a UNIX socket, socketpair, and the two file calls Node lacks (fallocate,
// OFD locks).
// It knows Linux system calls and nothing about KVM: every request number, constant and
// structure layout comes from the spec on the TypeScript side.
#include <napi.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmath>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace {

// The signal that knocks a thread out of a blocking ioctl: the first real-time signal, as crosvm
// and Firecracker use, so that no signal with another meaning (SIGUSR1 starts Node's inspector) is
// taken over. Its handler does nothing and is installed without SA_RESTART, so the interrupted
// ioctl returns EINTR instead of resuming.
int KickSignal() { return SIGRTMIN; }

Napi::Error SysError(Napi::Env env, int err, const char* syscall, const std::string& detail = "") {
  const char* code = uv_err_name(-err);
  std::string msg = std::string(code) + ": " + strerror(err) + ", " + syscall;
  if (!detail.empty()) msg += " " + detail;
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  // Same convention as Node's own fs errors: errno is the negated system error number.
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

Napi::Value Throw(Napi::Env env, int err, const char* syscall, const std::string& detail = "") {
  SysError(env, err, syscall, detail).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowType(Napi::Env env, const char* msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

std::string Hex(unsigned long v) {
  char buf[24];
  snprintf(buf, sizeof buf, "%lx", v);
  return buf;
}

bool ArgInt(const Napi::CallbackInfo& info, size_t i, int64_t* out) {
  if (info.Length() <= i || !info[i].IsNumber()) return false;
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::trunc(d) != d) return false;
  *out = static_cast<int64_t>(d);
  return true;
}

bool ArgFd(const Napi::CallbackInfo& info, size_t i, int* fd) {
  int64_t v;
  if (!ArgInt(info, i, &v) || v < 0 || v > INT32_MAX) return false;
  *fd = static_cast<int>(v);
  return true;
}

// Bytes behind a Buffer, typed array, DataView or ArrayBuffer argument.
bool ArgBytes(Napi::Value v, void** data, size_t* len) {
  if (v.IsTypedArray()) {
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    *data = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    *len = ta.ByteLength();
    return true;
  }
  if (v.IsDataView()) {
    Napi::DataView dv = v.As<Napi::DataView>();
    *data = static_cast<uint8_t*>(dv.ArrayBuffer().Data()) + dv.ByteOffset();
    *len = dv.ByteLength();
    return true;
  }
  if (v.IsArrayBuffer()) {
    Napi::ArrayBuffer ab = v.As<Napi::ArrayBuffer>();
    *data = ab.Data();
    *len = ab.ByteLength();
    return true;
  }
  return false;
}

// Live mappings, so an explicit munmap can find and retire the one behind an ArrayBuffer, and
// a garbage-collected ArrayBuffer's finalizer unmaps only its own mapping: after an explicit
// munmap the kernel may hand the same address to a new mapping. Shared with each mapping's
// finalizer, which may run after the addon instance is gone.
struct Mapping;
struct Registry {
  std::mutex lock;
  std::unordered_map<void*, Mapping*> live;
};

struct Mapping {
  std::shared_ptr<Registry> registry;
  void* addr;
  size_t len;
};

void FinalizeMapping(Napi::Env, void*, Mapping* m) {
  {
    std::lock_guard<std::mutex> g(m->registry->lock);
    auto it = m->registry->live.find(m->addr);
    if (it != m->registry->live.end() && it->second == m) {
      munmap(m->addr, m->len);
      m->registry->live.erase(it);
    }
  }
  delete m;
}

struct Instance {
  std::shared_ptr<Registry> mappings = std::make_shared<Registry>();
};

Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return ThrowType(env, "open(path): path must be a string");
  std::string path = info[0].As<Napi::String>();
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return Throw(env, errno, "open", "'" + path + "'");
  return Napi::Number::New(env, fd);
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!ArgFd(info, 0, &fd)) return ThrowType(env, "close(fd): fd must be a non-negative integer");
  // Linux releases the descriptor even when close reports EINTR, so never retry.
  if (::close(fd) < 0 && errno != EINTR) return Throw(env, errno, "close");
  return env.Undefined();
}

// A little-endian unsigned count of `size` bytes.
uint64_t ReadCount(const uint8_t* p, size_t size) {
  uint64_t v = 0;
  for (size_t i = 0; i < size; i++) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

// A buffer whose header counts the entries that follow it: [countOffset, countSize, entriesOffset,
// entrySize], from the caller (which derives them from the ABI spec). The kernel reads or writes as
// many entries as the count says, so the buffer must hold them all.
bool CheckCountedEntries(Napi::Env env, const Napi::Value& bound, unsigned long request, const void* data, size_t len) {
  if (bound.IsUndefined()) return true;
  if (!bound.IsArray() || bound.As<Napi::Array>().Length() != 4) {
    ThrowType(env, "ioctl: the entry bound must be [countOffset, countSize, entriesOffset, entrySize]");
    return false;
  }
  Napi::Array a = bound.As<Napi::Array>();
  double f[4];
  for (uint32_t i = 0; i < 4; i++) {
    Napi::Value v = a.Get(i);
    f[i] = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!std::isfinite(f[i]) || f[i] < 0 || std::trunc(f[i]) != f[i] || f[i] > UINT32_MAX) {
      ThrowType(env, "ioctl: the entry bound's fields must be non-negative integers");
      return false;
    }
  }
  size_t countOffset = static_cast<size_t>(f[0]), countSize = static_cast<size_t>(f[1]);
  if (countSize < 1 || countSize > 8 || countOffset + countSize > len) {
    ThrowType(env, "ioctl: the entry count lies outside the buffer");
    return false;
  }
  uint64_t count = ReadCount(static_cast<const uint8_t*>(data) + countOffset, countSize);
  // Long double: count * entrySize cannot overflow before the comparison.
  long double need = static_cast<long double>(f[2]) + static_cast<long double>(count) * static_cast<long double>(f[3]);
  if (need > static_cast<long double>(len)) {
    std::string msg = "ioctl: request 0x" + Hex(request) + " with a count of " + std::to_string(count) + " needs " +
                      std::to_string(static_cast<unsigned long long>(need)) + " bytes, the buffer holds " + std::to_string(len);
    ThrowType(env, msg.c_str());
    return false;
  }
  return true;
}

// ioctl(fd, request, arg[, bound]): arg is an integer (passed by value) for requests that encode no
// argument, or bytes (passed by pointer) for those that do; `bound` describes a counted array.
// Returns the ioctl's non-negative result; failures throw with code/errno/syscall.
bool DoIoctl(const Napi::CallbackInfo& info, long* result) {
  Napi::Env env = info.Env();
  int fd;
  int64_t req;
  if (!ArgFd(info, 0, &fd) || !ArgInt(info, 1, &req) || req < 0 || req > UINT32_MAX) {
    ThrowType(env, "ioctl(fd, request, arg): fd and request must be non-negative integers");
    return false;
  }
  unsigned long request = static_cast<unsigned long>(req);
  Napi::Value arg = info.Length() > 2 ? info[2] : env.Undefined();
  // Every Linux ioctl number encodes its argument's size (asm-generic/ioctl.h, the same for all
  // drivers): one that encodes a size takes a pointer to that many bytes, never a plain number,
  // which the kernel would dereference as an address.
  bool takesPointer = _IOC_DIR(request) != _IOC_NONE && _IOC_SIZE(request) > 0;
  if (takesPointer && (arg.IsUndefined() || arg.IsNumber() || arg.IsBigInt())) {
    std::string msg = "ioctl: request 0x" + Hex(request) + " takes a pointer to " + std::to_string(_IOC_SIZE(request)) +
                      " bytes: pass a buffer, not a number";
    ThrowType(env, msg.c_str());
    return false;
  }
  if (arg.IsUndefined()) {
    *result = ::ioctl(fd, request, 0UL);
  } else if (arg.IsNumber()) {
    int64_t v;
    if (!ArgInt(info, 2, &v)) {
      ThrowType(env, "ioctl: an integer argument must be an integer");
      return false;
    }
    *result = ::ioctl(fd, request, static_cast<unsigned long>(v));
  } else if (arg.IsBigInt()) {
    bool lossless;
    uint64_t v = arg.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) {
      ThrowType(env, "ioctl: a bigint argument must fit in 64 unsigned bits");
      return false;
    }
    *result = ::ioctl(fd, request, static_cast<unsigned long>(v));
  } else {
    void* data;
    size_t len;
    if (!ArgBytes(arg, &data, &len)) {
      ThrowType(env, "ioctl: arg must be an integer, bigint, ArrayBuffer, typed array or DataView");
      return false;
    }
    // A shorter buffer would let the kernel read or write past its end.
    if (_IOC_DIR(request) != _IOC_NONE && len < _IOC_SIZE(request)) {
      std::string msg = "ioctl: request 0x" + Hex(request) + " takes " + std::to_string(_IOC_SIZE(request)) +
                        " bytes, the buffer holds " + std::to_string(len);
      ThrowType(env, msg.c_str());
      return false;
    }
    if (!CheckCountedEntries(env, info.Length() > 3 ? info[3] : env.Undefined(), request, data, len)) return false;
    *result = ::ioctl(fd, request, data);
  }
  if (*result < 0) *result = -errno;
  return true;
}

// Set-up ioctls (KVM_CREATE_VM, …) can be interrupted by any signal, e.g. a profiler's: retry.
Napi::Value Ioctl(const Napi::CallbackInfo& info) {
  long r;
  do {
    if (!DoIoctl(info, &r)) return info.Env().Undefined();
  } while (r == -EINTR);
  if (r < 0) {
    std::string detail = "request 0x" + Hex(static_cast<unsigned long>(info[1].As<Napi::Number>().Int64Value()));
    return Throw(info.Env(), static_cast<int>(-r), "ioctl", detail);
  }
  return Napi::Number::New(info.Env(), static_cast<double>(r));
}

// The same, returning -errno instead of throwing: for KVM_RUN, where EINTR is the normal way
// a kicked vCPU comes back and an exception per kick would be wasted work.
Napi::Value IoctlRaw(const Napi::CallbackInfo& info) {
  long r;
  if (!DoIoctl(info, &r)) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), static_cast<double>(r));
}

Napi::Value MapInto(Napi::Env env, Instance* inst, void* addr, size_t len) {
  Mapping* m = new Mapping{inst->mappings, addr, len};
  {
    std::lock_guard<std::mutex> g(inst->mappings->lock);
    inst->mappings->live[addr] = m;
  }
  return Napi::ArrayBuffer::New(env, addr, len, FinalizeMapping, m);
}

constexpr double kMaxMapping = 4.0 * 1024 * 1024 * 1024;  // V8's cap on one external ArrayBuffer

bool ArgLength(const Napi::CallbackInfo& info, size_t i, size_t* len) {
  int64_t v;
  if (!ArgInt(info, i, &v) || v <= 0 || static_cast<double>(v) > kMaxMapping) return false;
  long page = sysconf(_SC_PAGESIZE);
  if (v % page != 0) return false;
  *len = static_cast<size_t>(v);
  return true;
}

// Guest RAM: private, zero-filled, and not charged against the commit limit until touched.
Napi::Value MmapAnonymous(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t len;
  if (!ArgLength(info, 0, &len))
    return ThrowType(env, "mmapAnonymous(length): length must be a positive multiple of the page size, at most 4 GiB");
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return Throw(env, errno, "mmap");
  return MapInto(env, env.GetInstanceData<Instance>(), p, len);
}

// A shared mapping of a file descriptor from offset 0 (a vCPU's kvm_run area).
Napi::Value MmapShared(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  size_t len;
  if (!ArgFd(info, 0, &fd)) return ThrowType(env, "mmapShared(fd, length): fd must be a non-negative integer");
  if (!ArgLength(info, 1, &len))
    return ThrowType(env, "mmapShared(fd, length): length must be a positive multiple of the page size, at most 4 GiB");
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return Throw(env, errno, "mmap");
  return MapInto(env, env.GetInstanceData<Instance>(), p, len);
}

// Unmaps now and detaches the ArrayBuffer, so JavaScript can no longer reach the pages.
Napi::Value Munmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) return ThrowType(env, "munmap(buffer): buffer must be an ArrayBuffer from mmap");
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  if (ab.IsDetached()) return env.Undefined();
  void* addr = ab.Data();
  Instance* inst = env.GetInstanceData<Instance>();
  size_t len;
  {
    std::lock_guard<std::mutex> g(inst->mappings->lock);
    auto it = inst->mappings->live.find(addr);
    if (it == inst->mappings->live.end()) return ThrowType(env, "munmap(buffer): buffer was not mapped by this module");
    len = it->second->len;
    inst->mappings->live.erase(it);
  }
  // Outside the lock: detaching may run the finalizer, which takes it.
  ab.Detach();
  if (munmap(addr, len) < 0) return Throw(env, errno, "munmap");
  return env.Undefined();
}

// The host virtual address of a buffer's first byte (for KVM_SET_USER_MEMORY_REGION).
Napi::Value Address(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  void* data;
  size_t len;
  if (info.Length() < 1 || !ArgBytes(info[0], &data, &len)) return ThrowType(env, "address(bytes): bytes must be an ArrayBuffer or a view");
  return Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(data)));
}

Napi::Value Eventfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t init = 0;
  if (info.Length() > 0 && (!ArgInt(info, 0, &init) || init < 0 || init > UINT32_MAX))
    return ThrowType(env, "eventfd(initval): initval must be a 32-bit unsigned integer");
  int fd = eventfd(static_cast<unsigned>(init), EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return Throw(env, errno, "eventfd");
  return Napi::Number::New(env, fd);
}

// read(fd, bytes) / write(fd, bytes): byte count, or -EAGAIN on a non-blocking descriptor with
// nothing to do, or -EINTR when the thread was kicked; other failures throw.
Napi::Value ReadWrite(const Napi::CallbackInfo& info, bool write) {
  Napi::Env env = info.Env();
  int fd;
  void* data;
  size_t len;
  if (!ArgFd(info, 0, &fd) || info.Length() < 2 || !ArgBytes(info[1], &data, &len))
    return ThrowType(env, write ? "write(fd, bytes): bad arguments" : "read(fd, bytes): bad arguments");
  ssize_t r = write ? ::write(fd, data, len) : ::read(fd, data, len);
  if (r < 0 && (errno == EAGAIN || errno == EINTR)) return Napi::Number::New(env, -errno);
  if (r < 0) return Throw(env, errno, write ? "write" : "read");
  return Napi::Number::New(env, static_cast<double>(r));
}
Napi::Value Read(const Napi::CallbackInfo& info) { return ReadWrite(info, false); }
Napi::Value Write(const Napi::CallbackInfo& info) { return ReadWrite(info, true); }

// ioctlValue(fd, request, value): an integer passed by value to a request whose number encodes an
// argument size all the same. Linux's tun driver does this (TUNSETOFFLOAD, TUNSETPERSIST are _IOW
// of an int but read `arg` itself), which ioctl() refuses on purpose. Returns the result or -errno.
Napi::Value IoctlValue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t req, v;
  if (!ArgFd(info, 0, &fd) || !ArgInt(info, 1, &req) || req < 0 || req > UINT32_MAX || !ArgInt(info, 2, &v) || v < 0 || v > UINT32_MAX)
    return ThrowType(env, "ioctlValue(fd, request, value): non-negative integers, value at most 32 bits");
  long r;
  do r = ::ioctl(fd, static_cast<unsigned long>(req), static_cast<unsigned long>(v));
  while (r < 0 && errno == EINTR);
  return Napi::Number::New(env, r < 0 ? -errno : static_cast<double>(r));
}

// setNonBlocking(fd): O_NONBLOCK on, so read/write return -EAGAIN instead of waiting.
Napi::Value SetNonBlocking(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!ArgFd(info, 0, &fd)) return ThrowType(env, "setNonBlocking(fd): fd must be a non-negative integer");
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return Throw(env, errno, "fcntl", "F_SETFL O_NONBLOCK");
  return env.Undefined();
}

// socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC): [fd0, fd1], both blocking (Node's net.Socket
// makes its own end non-blocking; a child inherits the other through spawn's stdio, which dup2s it
// without close-on-exec). Node has no socketpair of its own.
Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return Throw(env, errno, "socketpair");
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, sv[0]));
  out.Set(1u, Napi::Number::New(env, sv[1]));
  return out;
}

void IgnoreKick(int) {}

// Makes the calling thread kickable and returns its kernel thread id. The handler is
// process-wide and installed once; the signal is unblocked in this thread only, because
// runtimes may start threads with signals blocked.
Napi::Value PrepareKick(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  static std::once_flag once;
  static int installErr = 0;
  std::call_once(once, [] {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = IgnoreKick;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: the blocking ioctl must return EINTR
    if (sigaction(KickSignal(), &sa, nullptr) < 0) installErr = errno;
  });
  if (installErr) return Throw(env, installErr, "sigaction");
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, KickSignal());
  int err = pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  if (err) return Throw(env, err, "pthread_sigmask");
  return Napi::Number::New(env, static_cast<double>(syscall(SYS_gettid)));
}

Napi::Value ThreadId(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(syscall(SYS_gettid)));
}

// Sends the kick signal to one thread of this process. tgkill, not pthread_kill: a thread that
// already ended yields ESRCH (reported as false) instead of undefined behaviour.
Napi::Value Kick(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t tid;
  if (!ArgInt(info, 0, &tid) || tid <= 0 || tid > INT32_MAX) return ThrowType(env, "kick(tid): tid must be a positive integer");
  if (syscall(SYS_tgkill, getpid(), static_cast<pid_t>(tid), KickSignal()) < 0) {
    if (errno == ESRCH) return Napi::Boolean::New(env, false);
    return Throw(env, errno, "tgkill");
  }
  return Napi::Boolean::New(env, true);
}

// getsockopt(fd, SOL_SOCKET, SO_PEERCRED): who is at the other end of a connected UNIX socket, as
// the kernel recorded it at connect() time (Node has no API for it). Returns { pid, uid, gid }.
Napi::Value PeerCredentials(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!ArgFd(info, 0, &fd)) return ThrowType(env, "peerCredentials(fd): fd must be a non-negative integer");
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return Throw(env, errno, "getsockopt", "SO_PEERCRED");
  if (len != sizeof cred) return Throw(env, EINVAL, "getsockopt", "SO_PEERCRED returned a short ucred");
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, static_cast<double>(cred.pid)));
  out.Set("uid", Napi::Number::New(env, static_cast<double>(cred.uid)));
  out.Set("gid", Napi::Number::New(env, static_cast<double>(cred.gid)));
  return out;
}

// lockFile(fd, exclusive): an open-file-description lock over the whole file (F_OFD_SETLK, the
// advisory lock QEMU takes on images): F_WRLCK when exclusive, else F_RDLCK. 0, or -errno
// (-EAGAIN / -EACCES: another open file description holds a conflicting lock).
Napi::Value LockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!ArgFd(info, 0, &fd) || info.Length() < 2 || !info[1].IsBoolean()) return ThrowType(env, "lockFile(fd, exclusive): bad arguments");
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = info[1].As<Napi::Boolean>().Value() ? F_WRLCK : F_RDLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0;  // to the end of the file, however it grows
  if (fcntl(fd, F_OFD_SETLK, &fl) < 0) return Napi::Number::New(env, -errno);
  return Napi::Number::New(env, 0);
}

// fallocate modes by name: the caller says what it wants, not Linux's flag values.
bool FallocMode(Napi::Value v, int* mode) {
  if (!v.IsString()) return false;
  std::string op = v.As<Napi::String>();
  if (op == "punch-hole") *mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
  else if (op == "zero-range") *mode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
  else return false;
  return true;
}

bool FallocArgs(const Napi::CallbackInfo& info, int* fd, int* mode, int64_t* off, int64_t* len) {
  return ArgFd(info, 0, fd) && info.Length() >= 4 && FallocMode(info[1], mode) && ArgInt(info, 2, off) && *off >= 0 &&
         ArgInt(info, 3, len) && *len > 0;
}

int DoFallocate(int fd, int mode, int64_t off, int64_t len) {
  int r;
  do r = fallocate(fd, mode, off, len);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

// fallocateSync(fd, 'punch-hole' | 'zero-range', offset, length): 0 or -errno. For probing at
// set-up, before the guest runs.
Napi::Value FallocateSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd, mode;
  int64_t off, len;
  if (!FallocArgs(info, &fd, &mode, &off, &len)) return ThrowType(env, "fallocateSync(fd, op, offset, length): bad arguments");
  return Napi::Number::New(env, DoFallocate(fd, mode, off, len));
}

// fallocate(fd, op, offset, length, callback(result)) on the libuv threadpool: result 0 or -errno.
class FallocateWorker : public Napi::AsyncWorker {
 public:
  FallocateWorker(Napi::Function cb, int fd, int mode, int64_t off, int64_t len)
      : Napi::AsyncWorker(cb, "kvm-ts:fallocate"), fd_(fd), mode_(mode), off_(off), len_(len) {}
  void Execute() override { result_ = DoFallocate(fd_, mode_, off_, len_); }
  void OnOK() override { Callback().Call({Napi::Number::New(Env(), result_)}); }

 private:
  int fd_, mode_;
  int64_t off_, len_;
  int result_ = 0;
};

Napi::Value Fallocate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd, mode;
  int64_t off, len;
  if (!FallocArgs(info, &fd, &mode, &off, &len) || info.Length() < 5 || !info[4].IsFunction())
    return ThrowType(env, "fallocate(fd, op, offset, length, callback): bad arguments");
  (new FallocateWorker(info[4].As<Napi::Function>(), fd, mode, off, len))->Queue();
  return env.Undefined();
}

// fd readiness on the event loop: new FdPoll(fd, callback) calls callback(events) whenever fd
// is readable (1) or hung up/errored (with the uv status as a second argument).
class FdPoll : public Napi::ObjectWrap<FdPoll> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FdPoll",
                       {InstanceMethod("close", &FdPoll::Close), InstanceMethod("ref", &FdPoll::LoopRef),
                        InstanceMethod("unref", &FdPoll::LoopUnref)});
  }

  FdPoll(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FdPoll>(info) {
    Napi::Env env = info.Env();
    int fd;
    if (!ArgFd(info, 0, &fd) || info.Length() < 2 || !info[1].IsFunction()) {
      ThrowType(env, "new FdPoll(fd, callback): bad arguments");
      return;
    }
    uv_loop_t* loop;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
      Napi::Error::New(env, "FdPoll: no event loop").ThrowAsJavaScriptException();
      return;
    }
    handle_ = new uv_poll_t;
    int r = uv_poll_init(loop, handle_, fd);
    if (r < 0) {
      delete handle_;
      handle_ = nullptr;
      Throw(env, -r, "uv_poll_init");
      return;
    }
    handle_->data = this;
    r = uv_poll_start(handle_, UV_READABLE | UV_DISCONNECT, OnReady);
    if (r < 0) {
      CloseHandle();
      Throw(env, -r, "uv_poll_start");
      return;
    }
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env, "kvm-ts:FdPoll");
    Napi::ObjectWrap<FdPoll>::Ref();  // the JS object lives while the handle is open, even if the caller drops it
  }

  ~FdPoll() override { CloseHandle(); }

 private:
  static void OnReady(uv_poll_t* h, int status, int events) {
    FdPoll* self = static_cast<FdPoll*>(h->data);
    if (!self || self->callback_.IsEmpty()) return;
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    self->callback_.MakeCallback(self->Value(), {Napi::Number::New(env, events), Napi::Number::New(env, status)},
                                 *self->context_);
    if (env.IsExceptionPending()) {
      Napi::Error e = env.GetAndClearPendingException();
      napi_fatal_exception(env, e.Value());
    }
  }

  void CloseHandle() {
    if (!handle_) return;
    uv_poll_stop(handle_);
    handle_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(handle_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    handle_ = nullptr;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (handle_) {
      CloseHandle();
      callback_.Reset();
      Napi::ObjectWrap<FdPoll>::Unref();
    }
    return info.Env().Undefined();
  }
  Napi::Value LoopRef(const Napi::CallbackInfo& info) {
    if (handle_) uv_ref(reinterpret_cast<uv_handle_t*>(handle_));
    return info.Env().Undefined();
  }
  Napi::Value LoopUnref(const Napi::CallbackInfo& info) {
    if (handle_) uv_unref(reinterpret_cast<uv_handle_t*>(handle_));
    return info.Env().Undefined();
  }

  uv_poll_t* handle_ = nullptr;
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> context_;
};

// The tun driver's requests, flags and struct ifreq layout, from the C headers this addon is built
// against (linux/if_tun.h, net/if.h): the tap backend writes none of them by hand.
Napi::Object TunConstants(Napi::Env env) {
  Napi::Object tun = Napi::Object::New(env);
  auto set = [&](const char* name, double value) { tun.Set(name, Napi::Number::New(env, value)); };
  set("TUNSETIFF", TUNSETIFF);
  set("TUNSETOFFLOAD", TUNSETOFFLOAD);
  set("TUNSETVNETHDRSZ", TUNSETVNETHDRSZ);
  set("IFF_TAP", IFF_TAP);
  set("IFF_NO_PI", IFF_NO_PI);
  set("IFF_VNET_HDR", IFF_VNET_HDR);
  set("TUN_F_CSUM", TUN_F_CSUM);
  set("IFNAMSIZ", IFNAMSIZ);
  set("ifreqSize", sizeof(struct ifreq));
  set("ifreqFlagsOffset", offsetof(struct ifreq, ifr_flags));
  return tun;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new Instance());
  exports.Set("open", Napi::Function::New(env, Open, "open"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("ioctl", Napi::Function::New(env, Ioctl, "ioctl"));
  exports.Set("ioctlRaw", Napi::Function::New(env, IoctlRaw, "ioctlRaw"));
  exports.Set("mmapAnonymous", Napi::Function::New(env, MmapAnonymous, "mmapAnonymous"));
  exports.Set("mmapShared", Napi::Function::New(env, MmapShared, "mmapShared"));
  exports.Set("munmap", Napi::Function::New(env, Munmap, "munmap"));
  exports.Set("address", Napi::Function::New(env, Address, "address"));
  exports.Set("eventfd", Napi::Function::New(env, Eventfd, "eventfd"));
  exports.Set("read", Napi::Function::New(env, Read, "read"));
  exports.Set("write", Napi::Function::New(env, Write, "write"));
  exports.Set("prepareKick", Napi::Function::New(env, PrepareKick, "prepareKick"));
  exports.Set("threadId", Napi::Function::New(env, ThreadId, "threadId"));
  exports.Set("kick", Napi::Function::New(env, Kick, "kick"));
  exports.Set("ioctlValue", Napi::Function::New(env, IoctlValue, "ioctlValue"));
  exports.Set("setNonBlocking", Napi::Function::New(env, SetNonBlocking, "setNonBlocking"));
  exports.Set("socketPair", Napi::Function::New(env, SocketPair, "socketPair"));
  exports.Set("peerCredentials", Napi::Function::New(env, PeerCredentials, "peerCredentials"));
  exports.Set("lockFile", Napi::Function::New(env, LockFile, "lockFile"));
  exports.Set("fallocateSync", Napi::Function::New(env, FallocateSync, "fallocateSync"));
  exports.Set("fallocate", Napi::Function::New(env, Fallocate, "fallocate"));
  exports.Set("FdPoll", FdPoll::Define(env));
  exports.Set("pageSize", Napi::Number::New(env, static_cast<double>(sysconf(_SC_PAGESIZE))));
  exports.Set("kickSignal", Napi::Number::New(env, KickSignal()));
  exports.Set("tun", TunConstants(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(kvm_shim, Init)
