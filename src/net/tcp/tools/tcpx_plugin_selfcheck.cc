// tcpx_plugin_selfcheck: the plugin author's quick check of the contract rows
// (docs/design.md section 2 and 9) in one process over loopback. The real
// conformance suite is tests/net; this exists to check the plugin while it is
// written, including its wire format (raw-socket peers that lie).
//
//   tcpx_plugin_selfcheck [PLUGIN_PATH]     exit status 0 when all pass
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "net/nccl_net_v7.h"

namespace {

const ncclNet_v7_t* net = nullptr;
int failures = 0;

#define EXPECT_EQ_INT(a, b)                                                               \
  do {                                                                                    \
    long a_ = static_cast<long>(a), b_ = static_cast<long>(b);                            \
    if (a_ != b_) {                                                                       \
      fprintf(stderr, "FAIL line %d: %s == %ld, expected %s == %ld\n", __LINE__, #a, a_, #b, b_); \
      ++failures;                                                                         \
    }                                                                                     \
  } while (0)
#define EXPECT_TRUE(c)                                                   \
  do {                                                                   \
    if (!(c)) {                                                          \
      fprintf(stderr, "FAIL line %d: %s\n", __LINE__, #c);              \
      ++failures;                                                        \
    }                                                                    \
  } while (0)

double now_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Pair {
  void* lc = nullptr;
  void* sc = nullptr;
  void* rc = nullptr;
  ncclNetDeviceHandle_v7_t dev{};
  uint8_t handle[NCCL_NET_HANDLE_MAXSIZE] = {};
};

bool make_pair(Pair* p) {
  if (net->listen(0, p->handle, &p->lc) != ncclSuccess) return false;
  ncclNetDeviceHandle_v7_t* sdev = nullptr;
  ncclNetDeviceHandle_v7_t* rdev = &p->dev;
  double deadline = now_s() + 5;
  while ((p->sc == nullptr || p->rc == nullptr) && now_s() < deadline) {
    if (p->sc == nullptr && net->connect(0, p->handle, &p->sc, &sdev) != ncclSuccess) return false;
    if (p->rc == nullptr && net->accept(p->lc, &p->rc, &rdev) != ncclSuccess) return false;
  }
  return p->sc != nullptr && p->rc != nullptr;
}

void close_pair(Pair* p) {
  if (p->sc) EXPECT_EQ_INT(net->closeSend(p->sc), 0);
  if (p->rc) EXPECT_EQ_INT(net->closeRecv(p->rc), 0);
  if (p->lc) EXPECT_EQ_INT(net->closeListen(p->lc), 0);
}

// Tests `req` until done or an error; returns the last code.
ncclResult_t wait(void* req, double seconds = 5) {
  double deadline = now_s() + seconds;
  int done = 0;
  while (now_s() < deadline) {
    ncclResult_t r = net->test(req, &done, nullptr);
    if (r != ncclSuccess || done) return r;
  }
  return ncclInProgress;
}

void check_properties() {
  int ndev = 0;
  EXPECT_EQ_INT(net->devices(&ndev), 0);
  EXPECT_TRUE(ndev >= 1);
  ncclNetProperties_v7_t p{};
  EXPECT_EQ_INT(net->getProperties(0, &p), 0);
  EXPECT_EQ_INT(p.maxRecvs, 1);
  EXPECT_EQ_INT(p.netDeviceType, NCCL_NET_DEVICE_UNPACK);
  EXPECT_EQ_INT(p.netDeviceVersion, 0x7);
  EXPECT_EQ_INT(p.ptrSupport, NCCL_PTR_HOST | NCCL_PTR_CUDA);
  EXPECT_TRUE(p.name != nullptr && p.pciPath != nullptr && p.maxComms > 1000);
  EXPECT_EQ_INT(net->getProperties(ndev, &p), 4);
  EXPECT_EQ_INT(net->getProperties(-1, &p), 4);
  EXPECT_EQ_INT(net->getProperties(0, nullptr), 4);
  EXPECT_EQ_INT(net->devices(nullptr), 4);
}

void check_basic_rows() {
  Pair p;
  EXPECT_TRUE(make_pair(&p));
  EXPECT_EQ_INT(p.dev.netDeviceType, NCCL_NET_DEVICE_UNPACK);
  EXPECT_EQ_INT(p.dev.netDeviceVersion, 7);
  EXPECT_EQ_INT(p.dev.size, sizeof(unpackNetDeviceHandle));
  EXPECT_EQ_INT(p.dev.needsProxyProgress, 1);
  EXPECT_TRUE(p.dev.handle != nullptr);
  std::vector<uint8_t> sbuf(1 << 20), rbuf(1 << 20);
  for (size_t i = 0; i < sbuf.size(); ++i) sbuf[i] = static_cast<uint8_t>(i * 7 + 3);
  void *smh = nullptr, *rmh = nullptr;
  EXPECT_EQ_INT(net->regMr(p.sc, sbuf.data(), static_cast<int>(sbuf.size()), NCCL_PTR_HOST, &smh), 0);
  EXPECT_EQ_INT(net->regMr(p.rc, rbuf.data(), static_cast<int>(rbuf.size()), NCCL_PTR_HOST, &rmh), 0);
  // regMr argument checks.
  void* mh = nullptr;
  EXPECT_EQ_INT(net->regMr(p.sc, nullptr, 10, NCCL_PTR_HOST, &mh), 4);
  EXPECT_EQ_INT(net->regMr(p.sc, sbuf.data(), 0, NCCL_PTR_HOST, &mh), 4);
  EXPECT_EQ_INT(net->regMr(p.sc, sbuf.data(), -5, NCCL_PTR_HOST, &mh), 4);
  EXPECT_EQ_INT(net->regMr(p.sc, sbuf.data(), 10, 3, &mh), 4);
  EXPECT_EQ_INT(net->regMr(nullptr, sbuf.data(), 10, NCCL_PTR_HOST, &mh), 4);
  void* aligned = nullptr;
  EXPECT_EQ_INT(posix_memalign(&aligned, 4096, 8192), 0);
  EXPECT_EQ_INT(net->regMr(p.sc, static_cast<uint8_t*>(aligned) + 16, 4096, NCCL_PTR_CUDA, &mh), 4);
  EXPECT_EQ_INT(net->regMr(p.sc, aligned, 8192, NCCL_PTR_CUDA, &mh), 0);
  void* req = nullptr;
  if (getenv("TCPX_CUDA_LIB") == nullptr) EXPECT_EQ_INT(net->isend(p.sc, aligned, 100, 0, mh, &req), 1);
  EXPECT_EQ_INT(net->deregMr(p.sc, mh), 0);
  free(aligned);
  EXPECT_EQ_INT(net->deregMr(p.sc, nullptr), 4);
  // isend/irecv argument checks.
  EXPECT_EQ_INT(net->isend(p.sc, sbuf.data(), -1, 0, smh, &req), 4);
  EXPECT_EQ_INT(net->isend(p.sc, sbuf.data(), 10, 0, nullptr, &req), 4);
  EXPECT_EQ_INT(net->isend(nullptr, sbuf.data(), 10, 0, smh, &req), 4);
  EXPECT_EQ_INT(net->isend(p.sc, sbuf.data(), 10, 0, smh, nullptr), 4);
  void* d = rbuf.data();
  int sz = 100, tag = 0;
  void* ds[2] = {d, d};
  int szs[2] = {100, 100}, tags[2] = {0, 0};
  void* mhs[2] = {rmh, rmh};
  EXPECT_EQ_INT(net->irecv(p.rc, 2, ds, szs, tags, mhs, &req), 4);
  int neg = -1;
  EXPECT_EQ_INT(net->irecv(p.rc, 1, &d, &neg, &tag, &rmh, &req), 4);
  EXPECT_EQ_INT(net->irecv(p.rc, 1, &d, &sz, &tag, nullptr, &req), 4);
  EXPECT_EQ_INT(net->test(nullptr, nullptr, nullptr), 4);
  void* freq = reinterpret_cast<void*>(0x1);
  EXPECT_EQ_INT(net->iflush(p.rc, 1, &d, &sz, &rmh, &freq), 0);
  EXPECT_TRUE(freq == nullptr);
  void* dptr = reinterpret_cast<void*>(0x1);
  EXPECT_EQ_INT(net->getDeviceMr(p.sc, smh, &dptr), 0);
  EXPECT_TRUE(dptr == nullptr);

  // 16 outstanding, the 17th refused with 3; non-oldest test refused with 5.
  std::vector<void*> sreq(16), rreq(16);
  for (int i = 0; i < 16; ++i) EXPECT_EQ_INT(net->isend(p.sc, sbuf.data() + i * 1000, 1000, i, smh, &sreq[i]), 0);
  EXPECT_EQ_INT(net->isend(p.sc, sbuf.data(), 1000, 0, smh, &req), 3);
  for (int i = 0; i < 16; ++i) {
    void* dd = rbuf.data() + i * 4096;
    int s = 4096, t = 100 - i;  // bigger than sent, different tags
    EXPECT_EQ_INT(net->irecv(p.rc, 1, &dd, &s, &t, &rmh, &rreq[i]), 0);
  }
  EXPECT_EQ_INT(net->irecv(p.rc, 1, &d, &sz, &tag, &rmh, &req), 3);
  int done = 0;
  EXPECT_EQ_INT(net->test(sreq[1], &done, nullptr), 5);
  EXPECT_EQ_INT(net->test(rreq[1], &done, nullptr), 5);
  for (int i = 0; i < 16; ++i) EXPECT_EQ_INT(wait(sreq[i]), 0);
  EXPECT_EQ_INT(net->irecvConsumed(p.rc, 1, rreq[0]), 5);  // not done yet
  for (int i = 0; i < 16; ++i) EXPECT_EQ_INT(wait(rreq[i]), 0);
  EXPECT_EQ_INT(net->test(rreq[3], &done, nullptr), 0);  // done stays testable
  EXPECT_EQ_INT(done, 1);
  EXPECT_EQ_INT(net->irecvConsumed(p.rc, 1, rreq[1]), 5);  // out of order
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ_INT(memcmp(rbuf.data() + i * 4096, sbuf.data() + i * 1000, 1000), 0);
    EXPECT_EQ_INT(net->irecvConsumed(p.rc, 1, rreq[i]), 0);
  }
  EXPECT_EQ_INT(net->test(rreq[0], &done, nullptr), 5);  // freed

  // Direct receive smaller than the message: fails, comm broken.
  EXPECT_EQ_INT(net->isend(p.sc, sbuf.data(), 5000, 0, smh, &req), 0);
  EXPECT_EQ_INT(wait(req), 0);
  sz = 100;
  EXPECT_EQ_INT(net->irecv(p.rc, 1, &d, &sz, &tag, &rmh, &req), 0);
  ncclResult_t r = wait(req);
  EXPECT_TRUE(r == 3 || r == 6);
  EXPECT_TRUE(net->irecv(p.rc, 1, &d, &sz, &tag, &rmh, &req) != 0);
  EXPECT_EQ_INT(net->deregMr(p.sc, smh), 0);
  EXPECT_EQ_INT(net->deregMr(p.rc, rmh), 0);
  close_pair(&p);
}

// Connects a raw TCP socket to the listener in `handle` (IPv4 only here).
int raw_connect(const uint8_t* handle) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  memcpy(&a.sin_port, handle + 10, 2);
  memcpy(&a.sin_addr, handle + 12, 4);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void put_be(uint8_t* p, uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i) { p[i] = static_cast<uint8_t>(v); v >>= 8; }
}

// A raw socket pretending to be a one-socket connector; returns its fd and
// the accepted comm.
int fake_peer(Pair* p) {
  int fd = raw_connect(p->handle);
  uint8_t hello[16] = {};
  put_be(hello, 0x54435048, 4);
  put_be(hello + 4, 1, 2);
  hello[6] = 1;
  hello[7] = 0;
  put_be(hello + 8, 0x1234567890ULL + static_cast<uint64_t>(fd), 8);
  // Written in two halves: the listener must cope with partial hellos.
  EXPECT_EQ_INT(write(fd, hello, 7), 7);
  ncclNetDeviceHandle_v7_t* rdev = &p->dev;
  EXPECT_EQ_INT(net->accept(p->lc, &p->rc, &rdev), 0);
  EXPECT_TRUE(p->rc == nullptr);
  EXPECT_EQ_INT(write(fd, hello + 7, 9), 9);
  double deadline = now_s() + 5;
  while (p->rc == nullptr && now_s() < deadline) EXPECT_EQ_INT(net->accept(p->lc, &p->rc, &rdev), 0);
  EXPECT_TRUE(p->rc != nullptr);
  return fd;
}

void check_hostile_peers() {
  Pair p;
  EXPECT_EQ_INT(net->listen(0, p.handle, &p.lc), 0);
  // Junk to the listener: rejected, listener keeps serving.
  int junk = raw_connect(p.handle);
  EXPECT_EQ_INT(write(junk, "GET / HTTP/1.0\r\n\r\n", 18), 18);
  ncclNetDeviceHandle_v7_t* rdev = &p.dev;
  for (int i = 0; i < 100; ++i) EXPECT_EQ_INT(net->accept(p.lc, &p.rc, &rdev), 0);
  EXPECT_TRUE(p.rc == nullptr);
  close(junk);

  // Peer that dies mid-message.
  std::vector<uint8_t> rbuf(1 << 20);
  int fd = fake_peer(&p);
  void* rmh = nullptr;
  EXPECT_EQ_INT(net->regMr(p.rc, rbuf.data(), static_cast<int>(rbuf.size()), NCCL_PTR_HOST, &rmh), 0);
  uint8_t hdr[16] = {};
  put_be(hdr, 0x5443504d, 4);
  put_be(hdr + 8, 1 << 20, 8);
  EXPECT_EQ_INT(write(fd, hdr, 16), 16);
  EXPECT_EQ_INT(write(fd, "0123456789", 10), 10);
  void* d = rbuf.data();
  int sz = 1 << 20, tag = 0;
  void* req = nullptr;
  EXPECT_EQ_INT(net->irecv(p.rc, 1, &d, &sz, &tag, &rmh, &req), 0);
  int done = 0;
  EXPECT_EQ_INT(net->test(req, &done, nullptr), 0);
  EXPECT_EQ_INT(done, 0);
  close(fd);
  EXPECT_EQ_INT(wait(req), 6);
  EXPECT_EQ_INT(memcmp(rbuf.data(), "0123456789", 10), 0);
  EXPECT_EQ_INT(net->deregMr(p.rc, rmh), 0);
  EXPECT_EQ_INT(net->closeRecv(p.rc), 0);  // with the failed request outstanding
  p.rc = nullptr;

  // Garbage where a message header belongs.
  fd = fake_peer(&p);
  EXPECT_EQ_INT(net->regMr(p.rc, rbuf.data(), static_cast<int>(rbuf.size()), NCCL_PTR_HOST, &rmh), 0);
  EXPECT_EQ_INT(write(fd, "garbage garbage garbage", 23), 23);
  EXPECT_EQ_INT(net->irecv(p.rc, 1, &d, &sz, &tag, &rmh, &req), 0);
  EXPECT_EQ_INT(wait(req), 6);
  close(fd);
  EXPECT_EQ_INT(net->deregMr(p.rc, rmh), 0);
  EXPECT_EQ_INT(net->closeRecv(p.rc), 0);
  p.rc = nullptr;

  // A proper connection on the same listener still works.
  ncclNetDeviceHandle_v7_t* sdev = nullptr;
  double deadline = now_s() + 5;
  while ((p.sc == nullptr || p.rc == nullptr) && now_s() < deadline) {
    if (p.sc == nullptr) EXPECT_EQ_INT(net->connect(0, p.handle, &p.sc, &sdev), 0);
    if (p.rc == nullptr) EXPECT_EQ_INT(net->accept(p.lc, &p.rc, &rdev), 0);
  }
  EXPECT_TRUE(p.sc != nullptr && p.rc != nullptr);
  void* smh = nullptr;
  std::vector<uint8_t> sbuf(3000, 0x5a);
  EXPECT_EQ_INT(net->regMr(p.sc, sbuf.data(), 3000, NCCL_PTR_HOST, &smh), 0);
  EXPECT_EQ_INT(net->regMr(p.rc, rbuf.data(), static_cast<int>(rbuf.size()), NCCL_PTR_HOST, &rmh), 0);
  void* sreq = nullptr;
  EXPECT_EQ_INT(net->isend(p.sc, sbuf.data(), 3000, 0, smh, &sreq), 0);
  EXPECT_EQ_INT(net->irecv(p.rc, 1, &d, &sz, &tag, &rmh, &req), 0);
  EXPECT_EQ_INT(wait(sreq), 0);
  EXPECT_EQ_INT(wait(req), 0);
  EXPECT_EQ_INT(rbuf[2999], 0x5a);
  EXPECT_EQ_INT(net->irecvConsumed(p.rc, 1, req), 0);
  // Close the receiver, then keep sending: the sender fails, never SIGPIPEs.
  EXPECT_EQ_INT(net->closeRecv(p.rc), 0);
  p.rc = nullptr;
  ncclResult_t r = ncclSuccess;
  for (int i = 0; i < 2000 && r == ncclSuccess; ++i) {
    r = net->isend(p.sc, sbuf.data(), 3000, 0, smh, &sreq);
    if (r == ncclSuccess) r = wait(sreq);
  }
  EXPECT_TRUE(r == 6 || r == 2);
  EXPECT_EQ_INT(net->deregMr(p.sc, smh), 0);
  EXPECT_EQ_INT(net->deregMr(p.sc, rmh), 0);
  close_pair(&p);
}

// Bounce mode: run with TCPX_P2P_TCP_BOUNCE_HOST=1.
void check_bounce() {
  Pair p;
  EXPECT_TRUE(make_pair(&p));
  auto* h = static_cast<unpackNetDeviceHandle*>(p.dev.handle);
  const int kMax = 300000;
  std::vector<uint8_t> sbuf(kMax), rbuf(kMax), out(kMax);
  void *smh = nullptr, *rmh = nullptr;
  EXPECT_EQ_INT(net->regMr(p.sc, sbuf.data(), kMax, NCCL_PTR_HOST, &smh), 0);
  EXPECT_EQ_INT(net->regMr(p.rc, rbuf.data(), kMax, NCCL_PTR_HOST, &rmh), 0);
  unsigned seed = 12345;
  for (int k = 0; k < 45; ++k) {
    int size = k == 0 ? 0 : static_cast<int>(rand_r(&seed) % kMax);
    for (int i = 0; i < size; ++i) sbuf[i] = static_cast<uint8_t>(rand_r(&seed));
    memset(rbuf.data(), 0xee, kMax);
    void* sreq = nullptr;
    void* rreq = nullptr;
    void* d = rbuf.data();
    int sz = 10, tag = 0;  // smaller than sent: bounce mode does not care
    EXPECT_EQ_INT(net->isend(p.sc, sbuf.data(), size, 0, smh, &sreq), 0);
    EXPECT_EQ_INT(net->irecv(p.rc, 1, &d, &sz, &tag, &rmh, &rreq), 0);
    EXPECT_EQ_INT(wait(sreq), 0);
    EXPECT_EQ_INT(wait(rreq), 0);
    EXPECT_TRUE(rbuf[0] == 0xee && rbuf[kMax - 1] == 0xee);  // destination untouched
    int slot = k % 16;
    uint64_t covered = 0;
    std::vector<uint8_t> seen(static_cast<size_t>(size), 0);
    for (uint64_t i = 0; i < h->meta->cnt[slot]; ++i) {
      const loadMeta& m = h->meta->mem[slot][i];
      EXPECT_TRUE(m.len > 0 && m.len <= 4096 && m.dst_off + m.len <= static_cast<uint64_t>(size));
      memcpy(out.data() + m.dst_off, static_cast<uint8_t*>(h->bounce_buf) + m.src_off, m.len);
      for (uint32_t j = 0; j < m.len; ++j) seen[m.dst_off + j]++;
      covered += m.len;
    }
    EXPECT_EQ_INT(covered, size);
    for (int i = 0; i < size; ++i)
      if (seen[i] != 1) { EXPECT_EQ_INT(seen[i], 1); break; }
    EXPECT_EQ_INT(memcmp(out.data(), sbuf.data(), static_cast<size_t>(size)), 0);
    EXPECT_EQ_INT(net->irecvConsumed(p.rc, 1, rreq), 0);
  }
  EXPECT_EQ_INT(net->deregMr(p.sc, smh), 0);
  EXPECT_EQ_INT(net->deregMr(p.rc, rmh), 0);
  close_pair(&p);
}

// CUDA-type memory through a CUDA-ops library (real, or the host fake from
// this folder): sends stage through pinned memory, receives always bounce.
void check_cuda_types() {
  Pair p;
  EXPECT_TRUE(make_pair(&p));
  auto* h = static_cast<unpackNetDeviceHandle*>(p.dev.handle);
  const size_t kMax = 6 << 20;
  void* sraw = nullptr;
  void* rraw = nullptr;
  EXPECT_EQ_INT(posix_memalign(&sraw, 4096, kMax), 0);
  EXPECT_EQ_INT(posix_memalign(&rraw, 4096, kMax), 0);
  auto* sbuf = static_cast<uint8_t*>(sraw);
  auto* rbuf = static_cast<uint8_t*>(rraw);
  std::vector<uint8_t> out(kMax);
  void *smh = nullptr, *rmh = nullptr;
  EXPECT_EQ_INT(net->regMr(p.sc, sbuf, static_cast<int>(kMax), NCCL_PTR_CUDA, &smh), 0);
  EXPECT_EQ_INT(net->regMr(p.rc, rbuf, static_cast<int>(kMax), NCCL_PTR_CUDA, &rmh), 0);
  unsigned seed = 777;
  const int sizes[] = {0, 1, 4097, 524288, 524289, (1 << 20) + 3, 5 << 20, 100, 6 << 20};
  int k = 0;
  for (int size : sizes) {
    for (int i = 0; i < size; ++i) sbuf[i] = static_cast<uint8_t>(rand_r(&seed));
    memset(rbuf, 0xee, 16);
    void *sreq = nullptr, *rreq = nullptr;
    void* d = rbuf;
    int sz = static_cast<int>(kMax), tag = 0;
    EXPECT_EQ_INT(net->isend(p.sc, sbuf, size, 0, smh, &sreq), 0);
    EXPECT_EQ_INT(net->irecv(p.rc, 1, &d, &sz, &tag, &rmh, &rreq), 0);
    EXPECT_EQ_INT(wait(sreq), 0);
    EXPECT_EQ_INT(wait(rreq), 0);
    EXPECT_EQ_INT(rbuf[0], 0xee);
    int slot = k % 16;
    uint64_t covered = 0;
    for (uint64_t i = 0; i < h->meta->cnt[slot]; ++i) {
      const loadMeta& m = h->meta->mem[slot][i];
      memcpy(out.data() + m.dst_off, static_cast<uint8_t*>(h->bounce_buf) + m.src_off, m.len);
      covered += m.len;
    }
    EXPECT_EQ_INT(covered, size);
    EXPECT_EQ_INT(memcmp(out.data(), sbuf, static_cast<size_t>(size)), 0);
    EXPECT_EQ_INT(net->irecvConsumed(p.rc, 1, rreq), 0);
    ++k;
  }
  // A window of CUDA sends interleaved with host sends on the same comm.
  std::vector<uint8_t> hbuf(1 << 20, 0x42);
  void* hmh = nullptr;
  EXPECT_EQ_INT(net->regMr(p.sc, hbuf.data(), 1 << 20, NCCL_PTR_HOST, &hmh), 0);
  std::vector<void*> sreqs, rreqs;
  for (int i = 0; i < 8; ++i) {
    void* r = nullptr;
    int size = 700000 + i;
    if (i % 2) EXPECT_EQ_INT(net->isend(p.sc, sbuf + i, size, 0, smh, &r), 0);
    else EXPECT_EQ_INT(net->isend(p.sc, hbuf.data(), size - 300000, 0, hmh, &r), 0);
    sreqs.push_back(r);
    void* d = rbuf;
    int sz = 10, tag = 0;
    EXPECT_EQ_INT(net->irecv(p.rc, 1, &d, &sz, &tag, &rmh, &r), 0);
    rreqs.push_back(r);
  }
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ_INT(wait(sreqs[i]), 0);
    EXPECT_EQ_INT(wait(rreqs[i]), 0);
    int slot = k % 16;
    uint64_t covered = 0;
    for (uint64_t j = 0; j < h->meta->cnt[slot]; ++j) {
      const loadMeta& m = h->meta->mem[slot][j];
      memcpy(out.data() + m.dst_off, static_cast<uint8_t*>(h->bounce_buf) + m.src_off, m.len);
      covered += m.len;
    }
    int size = i % 2 ? 700000 + i : 400000 + i;
    EXPECT_EQ_INT(covered, size);
    EXPECT_EQ_INT(memcmp(out.data(), i % 2 ? sbuf + i : hbuf.data(), static_cast<size_t>(size)), 0);
    EXPECT_EQ_INT(net->irecvConsumed(p.rc, 1, rreqs[i]), 0);
    ++k;
  }
  EXPECT_EQ_INT(net->deregMr(p.sc, hmh), 0);
  EXPECT_EQ_INT(net->deregMr(p.sc, smh), 0);
  EXPECT_EQ_INT(net->deregMr(p.rc, rmh), 0);
  close_pair(&p);
  free(sraw);
  free(rraw);
}

}  // namespace

int main(int argc, char** argv) {
  std::string path = argc > 1 ? argv[1] : "";
  if (path.empty()) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 0] = '\0';
    path = std::string(exe).substr(0, std::string(exe).rfind('/')) + "/../lib/libtcpx_net_tcp.so";
  }
  void* dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (dl == nullptr) {
    fprintf(stderr, "dlopen %s: %s\n", path.c_str(), dlerror());
    return 2;
  }
  net = static_cast<const ncclNet_v7_t*>(dlsym(dl, "ncclNetPlugin_v7"));
  if (net == nullptr || net->init(nullptr) != ncclSuccess) return 2;
  bool bounce = getenv("TCPX_P2P_TCP_BOUNCE_HOST") && strcmp(getenv("TCPX_P2P_TCP_BOUNCE_HOST"), "1") == 0;
  check_properties();
  if (getenv("TCPX_CUDA_LIB") != nullptr) {
    check_cuda_types();
  } else if (bounce) {
    check_bounce();
  } else {
    check_basic_rows();
    check_hostile_peers();
  }
  printf("selfcheck (%s): %s, %d failures\n", getenv("TCPX_CUDA_LIB") ? "cuda types" : bounce ? "bounce" : "direct", failures ? "FAIL" : "PASS", failures);
  return failures ? 1 : 0;
}
