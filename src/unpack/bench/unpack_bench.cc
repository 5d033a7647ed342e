// tcpx_unpack_bench: how fast the GPU unpack path scatters a received chunk,
// measured against cudaMemcpyAsync moving the same number of bytes from the
// same bounce buffer in the same run (the ceiling an unpack can hope for).
//
//   tcpx_unpack_bench [--gpu N] [--iters N] [--layout pages|mixed]
//                     [--bounce device|host] [--sizes 8,4K,512K,...]
//
// pages: 4 KiB fragments in shuffled bounce-buffer order (what devmem TCP
// delivers for full-size segments; a chunk that is not a multiple of 4 KiB
// ends with a short one); mixed: random 1..4096-byte fragments at random
// alignments (a worst case for vector widths). --bounce device is TCPX's
// bounce buffer (GPU memory); host is the built-in plugin's (pinned host
// memory mapped into the device), read by the kernel across PCIe.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cuda/cuda_ops.h"
#include "sizes.h"
#include "unpack/unpacker.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kSlots = NET_UNPACK_MAX_SLICES;

#define CHECK_CUDA(x)                                                                      \
  do {                                                                                     \
    cudaError_t e_ = (x);                                                                  \
    if (e_ != cudaSuccess) {                                                               \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                        \
    }                                                                                      \
  } while (0)

struct Options {
  int gpu = 0;
  int iters = 200;
  bool mixed = false;
  bool host_bounce = false;
  std::vector<uint64_t> chunks{512ull << 10, 1ull << 20, 4ull << 20};
};

// Fills slot `slot` with fragments covering [0, chunk) of the destination;
// their sources lie inside the slot's region of the bounce buffer.
void fill_slot(netUnpackMeta* meta, int slot, uint64_t chunk, uint64_t region, bool mixed, std::mt19937_64& rng) {
  loadMeta* m = meta->mem[slot];
  uint64_t n = 0;
  if (!mixed) {
    uint64_t pages = (chunk + NET_UNPACK_PAGE_SIZE - 1) / NET_UNPACK_PAGE_SIZE;
    std::vector<uint32_t> order(pages);
    for (uint64_t i = 0; i < pages; ++i) order[i] = static_cast<uint32_t>(i);
    std::shuffle(order.begin(), order.end(), rng);
    for (uint64_t i = 0; i < pages; ++i) {
      const uint64_t len = std::min<uint64_t>(NET_UNPACK_PAGE_SIZE, chunk - i * NET_UNPACK_PAGE_SIZE);
      m[n++] = loadMeta{static_cast<uint32_t>(slot * region + order[i] * uint64_t{NET_UNPACK_PAGE_SIZE}),
                        static_cast<uint32_t>(len), i * NET_UNPACK_PAGE_SIZE};
    }
  } else {
    // Random lengths, packed back to back in the bounce region behind a
    // random start offset, so both sides take every alignment.
    // Shortest length chosen so that 2048 fragments surely cover the chunk.
    const uint64_t lo = std::max<int64_t>(1, static_cast<int64_t>(2 * chunk / NET_UNPACK_MAX_SLICE_PAGES) -
                                                 NET_UNPACK_PAGE_SIZE + 512);
    uint64_t dst = 0, src = slot * region + (rng() % 16);
    while (dst < chunk && n < NET_UNPACK_MAX_SLICE_PAGES) {
      uint64_t len = std::min<uint64_t>(lo + rng() % (NET_UNPACK_PAGE_SIZE - lo + 1), chunk - dst);
      m[n++] = loadMeta{static_cast<uint32_t>(src), static_cast<uint32_t>(len), dst};
      dst += len;
      src += len;
    }
    if (dst < chunk) {
      std::fprintf(stderr, "layout does not cover the chunk (%llu of %llu bytes)\n",
                   static_cast<unsigned long long>(dst), static_cast<unsigned long long>(chunk));
      std::exit(1);
    }
  }
  meta->cnt[slot] = n;
}

// "8,4K,1M" -> bytes; false on anything else.
bool parse_sizes(const std::string& text, std::vector<uint64_t>* out) {
  out->clear();
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find(',', pos);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(pos, end - pos);
    const uint64_t v = tcpx::bench::parse_size(item);
    if (v == 0 || v > NET_UNPACK_MAX_SLICE_PAGES * uint64_t{NET_UNPACK_PAGE_SIZE}) return false;
    out->push_back(v);
    pos = end + 1;
  }
  return !out->empty();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

void wait_done(tcpx::unpack::Unpacker& u, uint64_t t) {
  for (;;) {
    tcpx::Status s = u.query(t);
    if (s.ok()) return;
    if (!s.in_progress()) {
      std::fprintf(stderr, "unpack failed: %s\n", s.to_string().c_str());
      std::exit(1);
    }
  }
}

void bench_chunk(const Options& o, tcpx::unpack::Unpacker& u, uint64_t chunk) {
  std::mt19937_64 rng(chunk);
  // Room for the mixed layout's start offset, and for whole pages.
  const uint64_t region = (chunk + NET_UNPACK_PAGE_SIZE - 1) / NET_UNPACK_PAGE_SIZE * NET_UNPACK_PAGE_SIZE + 64;
  void* bounce = nullptr;
  void* meta_v = nullptr;
  std::vector<void*> dst(kSlots);
  if (o.host_bounce)
    CHECK_CUDA(cudaHostAlloc(&bounce, region * kSlots, cudaHostAllocMapped | cudaHostAllocPortable));
  else
    CHECK_CUDA(cudaMalloc(&bounce, region * kSlots));
  for (auto& d : dst) CHECK_CUDA(cudaMalloc(&d, chunk));
  CHECK_CUDA(cudaHostAlloc(&meta_v, sizeof(netUnpackMeta), cudaHostAllocMapped | cudaHostAllocPortable));
  auto* meta = static_cast<netUnpackMeta*>(meta_v);
  std::memset(meta, 0, sizeof(*meta));
  for (int s = 0; s < kSlots; ++s) fill_slot(meta, s, chunk, region, o.mixed, rng);
  if (o.host_bounce)
    std::memset(bounce, 0x5a, region * kSlots);
  else
    CHECK_CUDA(cudaMemset(bounce, 0x5a, region * kSlots));

  auto job_for = [&](int s) {
    tcpx::unpack::UnpackJob j;
    j.meta = meta;
    j.slot = s;
    j.bounce_buf = bounce;
    j.bounce_capacity = region * kSlots;
    j.dst = dst[s];
    j.dst_capacity = chunk;
    j.dst_is_device = true;
    return j;
  };
  auto submit = [&](int s) {
    uint64_t t = 0;
    tcpx::Status st = u.submit(job_for(s), &t);
    if (!st.ok()) {
      std::fprintf(stderr, "submit failed: %s\n", st.to_string().c_str());
      std::exit(1);
    }
    return t;
  };

  // Throughput: keep 16 jobs in flight, as the engine does per comm.
  for (int s = 0; s < kSlots; ++s) wait_done(u, submit(s));  // warm-up
  std::vector<uint64_t> inflight;
  auto t0 = Clock::now();
  for (int i = 0; i < o.iters; ++i) {
    if (inflight.size() == kSlots) {
      wait_done(u, inflight.front());
      inflight.erase(inflight.begin());
    }
    inflight.push_back(submit(i % kSlots));
  }
  for (uint64_t t : inflight) wait_done(u, t);
  double unpack_s = std::chrono::duration<double>(Clock::now() - t0).count();

  // Latency: one job at a time, submit to observed completion.
  std::vector<double> unpack_lat;
  for (int i = 0; i < std::min(o.iters, 200); ++i) {
    auto a = Clock::now();
    wait_done(u, submit(i % kSlots));
    unpack_lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
  }

  // Baseline: the same bytes with cudaMemcpyAsync from the bounce buffer.
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  auto* b = static_cast<char*>(bounce);
  CHECK_CUDA(cudaMemcpyAsync(dst[0], b, chunk, cudaMemcpyDefault, stream));
  CHECK_CUDA(cudaStreamSynchronize(stream));
  t0 = Clock::now();
  for (int i = 0; i < o.iters; ++i)
    CHECK_CUDA(cudaMemcpyAsync(dst[i % kSlots], b + (i % kSlots) * region, chunk, cudaMemcpyDefault, stream));
  CHECK_CUDA(cudaStreamSynchronize(stream));
  double copy_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<double> copy_lat;
  for (int i = 0; i < std::min(o.iters, 200); ++i) {
    auto a = Clock::now();
    CHECK_CUDA(cudaMemcpyAsync(dst[i % kSlots], b, chunk, cudaMemcpyDefault, stream));
    CHECK_CUDA(cudaStreamSynchronize(stream));
    copy_lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
  }

  // Correctness of the last layout against a host reference for slot 0.
  std::vector<uint8_t> host_bounce(region * kSlots), want(chunk, 0), got(chunk);
  CHECK_CUDA(cudaMemcpy(host_bounce.data(), bounce, host_bounce.size(), cudaMemcpyDefault));
  wait_done(u, submit(0));
  CHECK_CUDA(cudaMemcpy(got.data(), dst[0], chunk, cudaMemcpyDeviceToHost));
  for (uint64_t i = 0; i < meta->cnt[0]; ++i) {
    const loadMeta& m = meta->mem[0][i];
    std::memcpy(want.data() + m.dst_off, host_bounce.data() + m.src_off, m.len);
  }
  bool ok = want == got;

  const double bytes = static_cast<double>(chunk) * o.iters;
  std::printf("%8s %6llu frags  unpack %7.2f GB/s  memcpy %7.2f GB/s  ratio %5.2f  "
              "p50 latency unpack %8.1f us  memcpy %8.1f us  %s\n",
              tcpx::bench::format_size(chunk).c_str(), static_cast<unsigned long long>(meta->cnt[0]),
              bytes / unpack_s / 1e9, bytes / copy_s / 1e9, copy_s / unpack_s, median(unpack_lat),
              median(copy_lat), ok ? "verified" : "MISMATCH");
  CHECK_CUDA(cudaStreamDestroy(stream));
  for (auto d : dst) CHECK_CUDA(cudaFree(d));
  if (o.host_bounce)
    CHECK_CUDA(cudaFreeHost(bounce));
  else
    CHECK_CUDA(cudaFree(bounce));
  CHECK_CUDA(cudaFreeHost(meta_v));
  if (!ok) std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--gpu" && i + 1 < argc) o.gpu = std::atoi(argv[++i]);
    else if (a == "--iters" && i + 1 < argc) o.iters = std::max(1, std::atoi(argv[++i]));
    else if (a == "--layout" && i + 1 < argc) o.mixed = std::string(argv[++i]) == "mixed";
    else if (a == "--bounce" && i + 1 < argc) o.host_bounce = std::string(argv[++i]) == "host";
    else if (a == "--sizes" && i + 1 < argc && parse_sizes(argv[i + 1], &o.chunks)) ++i;
    else {
      std::fprintf(stderr,
                   "usage: %s [--gpu N] [--iters N] [--layout pages|mixed] [--bounce device|host] "
                   "[--sizes 8,4K,1M,...]\n",
                   argv[0]);
      return 2;
    }
  }
  std::unique_ptr<tcpx::unpack::Unpacker> u;
  tcpx::Status s = tcpx::unpack::make_cuda_unpacker(o.gpu, &u);
  if (!s.ok()) {
    std::fprintf(stderr, "tcpx_unpack_bench: %s\n", s.to_string().c_str());
    return 1;
  }
  CHECK_CUDA(cudaSetDevice(o.gpu));
  std::printf("GPU %d, layout %s, bounce buffer in %s memory, %d iterations per size, 16 jobs in flight\n", o.gpu,
              o.mixed ? "mixed" : "pages", o.host_bounce ? "mapped host" : "device", o.iters);
  for (uint64_t chunk : o.chunks) bench_chunk(o, *u, chunk);
  return 0;
}
