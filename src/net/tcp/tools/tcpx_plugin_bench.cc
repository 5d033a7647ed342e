// tcpx_plugin_bench: a receiver and a sender process over loopback, talking
// only through an ncclNet v7 plugin's table. For each size it first checks a
// few messages byte for byte (applying loadMeta itself in bounce mode), then
// streams with a window of outstanding requests and prints the throughput.
//
//   tcpx_plugin_bench [--plugin PATH] [--sizes 4k,64k,1m,16m] [--window 8]
//                     [--mib-per-size N] [--dev D] [--yield]
// --yield gives the CPU away after each test() that found nothing done: on a
// host shared with other work, two busy-polling processes otherwise wait for
// each other's time slices.
// Environment as the plugin reads it (TCPX_P2P_TCP_NSOCKS,
// TCPX_P2P_TCP_BOUNCE_HOST, TCPX_P2P_TCP_IFNAME). Exit status 0 when every
// check passed.
#include <dlfcn.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <string>
#include <vector>

#include "net/nccl_net_v7.h"

namespace {

struct Args {
  std::string plugin;
  std::vector<long> sizes{4096, 65536, 1 << 20, 16 << 20};
  int window = 8;
  long mib_per_size = 1024;
  int dev = 0;
  bool yield = false;  // sched_yield() after a test that found nothing done
};

const ncclNet_v7_t* g_net = nullptr;

void die(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "tcpx_plugin_bench[%d]: ", getpid());
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  _exit(1);
}

#define CHECK_NCCL(call)                                                   \
  do {                                                                     \
    ncclResult_t r_ = (call);                                              \
    if (r_ != ncclSuccess) die("%s failed: %d (line %d)", #call, r_, __LINE__); \
  } while (0)

double now_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

long parse_size(const std::string& s) {
  char* end = nullptr;
  long v = strtol(s.c_str(), &end, 10);
  if (*end == 'k' || *end == 'K') v <<= 10;
  else if (*end == 'm' || *end == 'M') v <<= 20;
  return v;
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die("%s needs a value", k.c_str());
      return argv[++i];
    };
    if (k == "--plugin") a.plugin = next();
    else if (k == "--window") a.window = atoi(next().c_str());
    else if (k == "--mib-per-size") a.mib_per_size = atol(next().c_str());
    else if (k == "--dev") a.dev = atoi(next().c_str());
    else if (k == "--yield") a.yield = true;
    else if (k == "--sizes") {
      a.sizes.clear();
      std::string v = next();
      size_t start = 0;
      while (start < v.size()) {
        size_t c = v.find(',', start);
        if (c == std::string::npos) c = v.size();
        a.sizes.push_back(parse_size(v.substr(start, c - start)));
        start = c + 1;
      }
    } else {
      die("unknown argument %s", k.c_str());
    }
  }
  if (a.window < 1 || a.window > 16) die("--window must be 1..16");
  // A bounced receive is at most one slot of loadMeta entries (2048 fragments
  // of 4 KiB: TCPX's limit too); larger messages would break the comm midway.
  const char* bounce = getenv("TCPX_P2P_TCP_BOUNCE_HOST");
  constexpr long kMaxBounced = static_cast<long>(NET_UNPACK_MAX_SLICE_PAGES) * NET_UNPACK_PAGE_SIZE;
  if (bounce != nullptr && strcmp(bounce, "1") == 0)
    for (long s : a.sizes)
      if (s > kMaxBounced)
        die("size %ld exceeds the %ld bytes one bounce-mode receive can hold (2048 fragments of 4 KiB, as on "
            "TCPX): pass --sizes of at most 8m with TCPX_P2P_TCP_BOUNCE_HOST=1", s, kMaxBounced);
  if (a.plugin.empty()) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) die("cannot find own path");
    exe[n] = '\0';
    std::string dir(exe);
    dir = dir.substr(0, dir.rfind('/'));
    a.plugin = dir + "/../lib/libtcpx_net_tcp.so";
  }
  return a;
}

void load_plugin(const std::string& path) {
  void* dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (dl == nullptr) die("dlopen %s: %s", path.c_str(), dlerror());
  g_net = static_cast<const ncclNet_v7_t*>(dlsym(dl, "ncclNetPlugin_v7"));
  if (g_net == nullptr) die("%s has no ncclNetPlugin_v7", path.c_str());
  CHECK_NCCL(g_net->init(nullptr));
}

uint8_t pattern(uint64_t msg, uint64_t i) { return static_cast<uint8_t>((i * 131 + msg * 7 + (i >> 12)) ^ (msg >> 3)); }

void fill(uint8_t* p, long n, uint64_t msg) {
  for (long i = 0; i < n; ++i) p[i] = pattern(msg, static_cast<uint64_t>(i));
}

// Messages sent per size: the first kChecked of each size are verified.
constexpr int kChecked = 20;
long count_for(const Args& a, long size) {
  long total = a.mib_per_size << 20;
  long n = size > 0 ? total / size : 1000;
  if (n < kChecked + 16) n = kChecked + 16;
  if (n > 500000) n = 500000;
  return n;
}

int run_sender(const Args& a, int handle_fd) {
  load_plugin(a.plugin);
  uint8_t handle[NCCL_NET_HANDLE_MAXSIZE];
  size_t got = 0;
  while (got < sizeof(handle)) {
    ssize_t r = read(handle_fd, handle + got, sizeof(handle) - got);
    if (r <= 0) die("reading the handle from the receiver");
    got += static_cast<size_t>(r);
  }
  void* sc = nullptr;
  ncclNetDeviceHandle_v7_t* dh = nullptr;
  double deadline = now_s() + 10;
  while (sc == nullptr) {
    CHECK_NCCL(g_net->connect(a.dev, handle, &sc, &dh));
    if (now_s() > deadline) die("connect timed out");
  }
  long max_size = 0;
  for (long s : a.sizes) max_size = std::max(max_size, s);
  std::vector<uint8_t> buf(static_cast<size_t>(max_size) * kChecked + 1);
  void* mh = nullptr;
  CHECK_NCCL(g_net->regMr(sc, buf.data(), static_cast<int>(buf.size()), NCCL_PTR_HOST, &mh));
  for (long size : a.sizes) {
    for (int m = 0; m < kChecked; ++m) fill(buf.data() + m * size, size, static_cast<uint64_t>(m));
    long count = count_for(a, size);
    std::vector<void*> reqs(static_cast<size_t>(count), nullptr);
    long posted = 0, done_count = 0;
    while (done_count < count) {
      while (posted < count && posted - done_count < a.window) {
        uint8_t* p = buf.data() + (posted % kChecked) * size;
        CHECK_NCCL(g_net->isend(sc, p, static_cast<int>(size), 0, mh, &reqs[static_cast<size_t>(posted)]));
        ++posted;
      }
      int done = 0;
      CHECK_NCCL(g_net->test(reqs[static_cast<size_t>(done_count)], &done, nullptr));
      if (done) ++done_count;
      else if (a.yield) sched_yield();
    }
  }
  CHECK_NCCL(g_net->deregMr(sc, mh));
  // Wait for the receiver to finish before closing, so it never sees EOF early.
  char ack;
  if (read(handle_fd, &ack, 1) != 1) die("receiver vanished");
  CHECK_NCCL(g_net->closeSend(sc));
  return 0;
}

bool verify(const uint8_t* p, long n, uint64_t msg, long size) {
  for (long i = 0; i < n; ++i)
    if (p[i] != pattern(msg, static_cast<uint64_t>(i))) {
      fprintf(stderr, "size %ld message %llu: byte %ld is %u, expected %u\n", size,
              static_cast<unsigned long long>(msg), i, p[i], pattern(msg, static_cast<uint64_t>(i)));
      return false;
    }
  return true;
}

// Applies loadMeta like an unpack kernel would, checking each entry's bounds.
bool unpack(const unpackNetDeviceHandle* h, uint64_t k, uint8_t* dst, long size) {
  int slot = static_cast<int>(k % NET_UNPACK_MAX_SLICES);
  uint64_t cnt = h->meta->cnt[slot];
  uint64_t covered = 0;
  bool contiguous = true;
  for (uint64_t i = 0; i < cnt; ++i) {
    const loadMeta& m = h->meta->mem[slot][i];
    if (m.len == 0 || m.len > 4096 || m.dst_off + m.len > static_cast<uint64_t>(size)) {
      fprintf(stderr, "bad loadMeta entry %llu\n", static_cast<unsigned long long>(i));
      return false;
    }
    if (i > 0 && m.src_off != h->meta->mem[slot][i - 1].src_off + h->meta->mem[slot][i - 1].len) contiguous = false;
    memcpy(dst + m.dst_off, static_cast<const uint8_t*>(h->bounce_buf) + m.src_off, m.len);
    covered += m.len;
  }
  if (covered != static_cast<uint64_t>(size)) {
    fprintf(stderr, "loadMeta covers %llu of %ld bytes\n", static_cast<unsigned long long>(covered), size);
    return false;
  }
  if (cnt > 2 && contiguous) fprintf(stderr, "note: fragments were contiguous\n");
  return true;
}

int run_receiver(const Args& a, int handle_fd) {
  load_plugin(a.plugin);
  uint8_t handle[NCCL_NET_HANDLE_MAXSIZE] = {};
  void* lc = nullptr;
  CHECK_NCCL(g_net->listen(a.dev, handle, &lc));
  if (write(handle_fd, handle, sizeof(handle)) != static_cast<ssize_t>(sizeof(handle))) die("writing handle");
  void* rc = nullptr;
  ncclNetDeviceHandle_v7_t dev{};
  ncclNetDeviceHandle_v7_t* devp = &dev;
  double deadline = now_s() + 10;
  while (rc == nullptr) {
    CHECK_NCCL(g_net->accept(lc, &rc, &devp));
    if (now_s() > deadline) die("accept timed out");
  }
  auto* uh = static_cast<const unpackNetDeviceHandle*>(dev.handle);
  bool bounce_host = getenv("TCPX_P2P_TCP_BOUNCE_HOST") && strcmp(getenv("TCPX_P2P_TCP_BOUNCE_HOST"), "1") == 0;
  long max_size = 0;
  for (long s : a.sizes) max_size = std::max(max_size, s);
  std::vector<uint8_t> buf(static_cast<size_t>(max_size) * 16 + 1);
  void* mh = nullptr;
  CHECK_NCCL(g_net->regMr(rc, buf.data(), static_cast<int>(buf.size()), NCCL_PTR_HOST, &mh));
  uint64_t k = 0;  // receives on this comm, for the slot protocol
  bool ok = true;
  const char* nsocks = getenv("TCPX_P2P_TCP_NSOCKS");
  printf("# plugin %s, nsocks %s, window %d, %s receives\n", g_net->name, nsocks ? nsocks : "1", a.window,
         bounce_host ? "bounce" : "direct");
  printf("%10s %10s %10s %10s\n", "size", "messages", "seconds", "GB/s");
  for (long size : a.sizes) {
    long count = count_for(a, size);
    std::vector<void*> reqs(static_cast<size_t>(count), nullptr);
    long posted = 0, done_count = 0;
    double t0 = 0;
    while (done_count < count) {
      while (posted < count && posted - done_count < a.window) {
        void* d = buf.data() + (posted % 16) * size;
        int sz = static_cast<int>(size);
        int tag = 0;
        CHECK_NCCL(g_net->irecv(rc, 1, &d, &sz, &tag, &mh, &reqs[static_cast<size_t>(posted)]));
        ++posted;
      }
      int done = 0;
      CHECK_NCCL(g_net->test(reqs[static_cast<size_t>(done_count)], &done, nullptr));
      if (!done) {
        if (a.yield) sched_yield();
        continue;
      }
      uint8_t* d = buf.data() + (done_count % 16) * size;
      if (done_count < kChecked) {
        if (bounce_host && !unpack(uh, k, d, size)) ok = false;
        if (!verify(d, size, static_cast<uint64_t>(done_count), size)) ok = false;
      }
      CHECK_NCCL(g_net->irecvConsumed(rc, 1, reqs[static_cast<size_t>(done_count)]));
      ++k;
      ++done_count;
      // Timing starts once the checked messages are through (warm sockets).
      if (done_count == kChecked) t0 = now_s();
    }
    double secs = now_s() - t0;
    double bytes = static_cast<double>(size) * static_cast<double>(count - kChecked);
    printf("%10ld %10ld %10.3f %10.3f\n", size, count - kChecked, secs, bytes / secs / 1e9);
    fflush(stdout);
  }
  CHECK_NCCL(g_net->deregMr(rc, mh));
  char ack = 1;
  if (write(handle_fd, &ack, 1) != 1) die("ack");
  CHECK_NCCL(g_net->closeRecv(rc));
  CHECK_NCCL(g_net->closeListen(lc));
  printf("# data check: %s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse_args(argc, argv);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) die("socketpair");
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    close(sv[0]);
    _exit(run_sender(a, sv[1]));
  }
  close(sv[1]);
  alarm(300);  // a hang is a failure
  int rc = run_receiver(a, sv[0]);
  int status = 0;
  waitpid(child, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "sender failed (status %d)\n", status);
    rc = 1;
  }
  return rc;
}
