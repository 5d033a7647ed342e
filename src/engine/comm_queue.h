// SendQueue / RecvQueue: the FIFO of plugin requests on one comm. Every
// transfer on the comm shares it, so requests are posted in exactly the order
// they were pushed (the order the DATA frames fixed) and only the head is
// tested, as TCPX requires. At most kWindow requests are outstanding at the
// plugin (for receives this counts those completed but not yet consumed);
// the rest wait here, never as an error to the user.
//
// Receives in bounce mode go through an Unpacker; irecvConsumed is called in
// post order, only after that receive's unpack finished (plugins without
// irecvConsumed, such as aws-ofi-nccl, free the slot when test() says done).
#ifndef TCPX_ENGINE_COMM_QUEUE_H_
#define TCPX_ENGINE_COMM_QUEUE_H_

#include <atomic>
#include <cstdint>
#include <vector>

#include "engine/vector_queue.h"
#include "net/transport.h"
#include "unpack/unpacker.h"

namespace tcpx::engine {

inline constexpr size_t kWindow = 16;

// How receives really landed, counted per endpoint: what describe_path()
// reports, rather than what the configuration suggests.
struct RecvPathStats {
  std::atomic<uint64_t> in_place{0};  // the plugin put the bytes at the destination
  std::atomic<uint64_t> unpacked{0};  // bounce buffer, then an unpack job
};

// One plugin request: a chunk of some transfer. `owner` is told (through the
// done list) when the chunk's bytes are sent, or are in the destination.
// Entries move within their queue (VectorQueue): the plugin keeps no pointer
// into one, as irecv's arrays are the caller's to reuse once it returns
// (NCCL passes stack arrays).
struct ChunkReq {
  void* owner = nullptr;
  void* data = nullptr;
  int size = 0;
  void* mh = nullptr;
  bool dst_cuda = false;  // receive into CUDA memory: always unpacked
  // Filled by the queue.
  void* request = nullptr;
  int slot = 0;
  bool received = false;  // test() reported it done (its unpack may wait for room)
  bool unpacking = false;
  bool in_place = false;
  unpack::Unpacker* unpacker = nullptr;
  uint64_t ticket = 0;
};

class SendQueue {
 public:
  SendQueue(net::Transport* t, void* comm) : t_(t), comm_(comm) {}
  void push(const ChunkReq& r) { q_.push_back(r); }
  // Posts up to the window, tests the head (repeatedly while it completes) and
  // appends owners of finished chunks to *done. Sets *progressed when anything
  // moved. An error means the comm is broken.
  Status progress(std::vector<void*>* done, bool* progressed);
  bool idle() const { return q_.empty(); }
  size_t in_flight() const { return posted_; }

 private:
  net::Transport* t_;
  void* comm_;
  VectorQueue<ChunkReq> q_;  // [0, posted_) posted at the plugin, rest waiting
  size_t posted_ = 0;
};

class RecvQueue {
 public:
  // dev: the accept device handle (UNPACK type when the plugin bounces).
  // stats may be null.
  RecvQueue(net::Transport* t, void* comm, const ncclNetDeviceHandle_v7_t& dev,
            unpack::Unpacker* cpu, unpack::Unpacker* cuda, RecvPathStats* stats);
  ~RecvQueue();
  RecvQueue(const RecvQueue&) = delete;
  RecvQueue& operator=(const RecvQueue&) = delete;
  void push(const ChunkReq& r) { q_.push_back(r); }
  Status progress(std::vector<void*>* done, bool* progressed);
  bool idle() const { return q_.empty(); }
  bool bounce_capable() const { return unpack_meta_ != nullptr; }

 private:
  Status finish_test(ChunkReq& r);
  net::Transport* t_;
  void* comm_;
  const netUnpackMeta* unpack_meta_ = nullptr;
  const void* bounce_buf_ = nullptr;
  unpack::Unpacker* cpu_;
  unpack::Unpacker* cuda_;
  RecvPathStats* stats_;
  VectorQueue<ChunkReq> q_;  // [0, tested_) done at the plugin, awaiting unpack/consume;
                             // [tested_, posted_) posted; rest waiting
  size_t tested_ = 0;
  size_t posted_ = 0;
  uint64_t recv_count_ = 0;  // irecvs posted so far: slot = count % 16
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_COMM_QUEUE_H_
