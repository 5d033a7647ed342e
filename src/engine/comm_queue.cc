#include "engine/comm_queue.h"

#include <string>

#include "common/log.h"

namespace tcpx::engine {

// Completions one progress() call may harvest before returning. Without a
// bound a fast peer keeps a queue busy for a whole large transfer and the
// progress thread never gets back to the control sockets (NIXL expects a FIFO
// answer within ~4 ms even while bulk data moves).
constexpr int kMaxCompletionsPerCall = 16;

Status SendQueue::progress(std::vector<void*>* done, bool* progressed) {
  const ncclNet_v7_t& v = t_->v();
  while (posted_ < q_.size() && posted_ < kWindow) {
    ChunkReq& r = q_[posted_];
    void* req = nullptr;
    ncclResult_t rc = v.isend(comm_, r.data, r.size, 0, r.mh, &req);
    if (rc != ncclSuccess) return net::from_nccl(rc, "isend");
    if (req == nullptr) break;  // plugin busy: retry on the next pass
    r.request = req;
    ++posted_;
    *progressed = true;
  }
  for (int completions = 0; posted_ > 0 && completions < kMaxCompletionsPerCall; ++completions) {
    int finished = 0;
    ncclResult_t rc = v.test(q_.front().request, &finished, nullptr);
    if (rc != ncclSuccess) return net::from_nccl(rc, "test(isend)");
    if (!finished) break;
    done->push_back(q_.front().owner);
    q_.pop_front();
    --posted_;
    *progressed = true;
    // Refill the window at once: keeps the socket busy between tests.
    if (posted_ < q_.size()) {
      ChunkReq& r = q_[posted_];
      void* req = nullptr;
      rc = v.isend(comm_, r.data, r.size, 0, r.mh, &req);
      if (rc != ncclSuccess) return net::from_nccl(rc, "isend");
      if (req != nullptr) {
        r.request = req;
        ++posted_;
      }
    }
  }
  return Status::Ok();
}

RecvQueue::RecvQueue(net::Transport* t, void* comm, const ncclNetDeviceHandle_v7_t& dev,
                     unpack::Unpacker* cpu, unpack::Unpacker* cuda, RecvPathStats* stats)
    : t_(t), comm_(comm), cpu_(cpu), cuda_(cuda), stats_(stats) {
  if (dev.netDeviceType == NCCL_NET_DEVICE_UNPACK && dev.handle != nullptr) {
    const auto* h = static_cast<const unpackNetDeviceHandle*>(dev.handle);
    unpack_meta_ = h->meta;
    bounce_buf_ = h->bounce_buf;
  }
}

// Decides, once test() said done, whether the bytes still sit in the bounce
// buffer (start an unpack) or already landed in place.
Status RecvQueue::finish_test(ChunkReq& r) {
  bool bounce = unpack_meta_ != nullptr && (r.dst_cuda || unpack_meta_->cnt[r.slot] > 0);
  if (!bounce) {
    r.in_place = true;
    if (stats_ != nullptr) stats_->in_place.fetch_add(1, std::memory_order_relaxed);
    return Status::Ok();
  }
  unpack::Unpacker* u = r.dst_cuda ? cuda_ : cpu_;
  if (u == nullptr)
    return Unsupported(r.dst_cuda ? "bounce receive into CUDA memory but no CUDA unpacker is available"
                                  : "bounce receive but no CPU unpacker is available");
  unpack::UnpackJob job;
  job.meta = unpack_meta_;
  job.slot = r.slot;
  job.bounce_buf = bounce_buf_;
  job.dst = r.data;
  job.dst_capacity = static_cast<uint64_t>(r.size);
  job.dst_is_device = r.dst_cuda;
  TCPX_TRACE("unpack recv slot %d: %llu fragments via %s", r.slot,
             static_cast<unsigned long long>(unpack_meta_->cnt[r.slot]), u->name());
  TCPX_RETURN_IF_ERROR(u->submit(job, &r.ticket));
  r.unpacker = u;
  r.unpacking = true;
  if (stats_ != nullptr) stats_->unpacked.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

RecvQueue::~RecvQueue() {
  // Receives abandoned with their comm: nobody will query their unpack jobs.
  for (size_t i = 0; i < tested_; ++i)
    if (q_[i].unpacking) q_[i].unpacker->release(q_[i].ticket);
}

Status RecvQueue::progress(std::vector<void*>* done, bool* progressed) {
  const ncclNet_v7_t& v = t_->v();
  int completions = 0;
  for (;;) {
    bool moved = false;
    // Post while the window (posted + awaiting consume) has room.
    while (posted_ < q_.size() && posted_ < kWindow) {
      ChunkReq& r = q_[posted_];
      void* req = nullptr;
      int tag = 0;
      ncclResult_t rc = v.irecv(comm_, 1, &r.data, &r.size, &tag, &r.mh, &req);
      if (rc != ncclSuccess) return net::from_nccl(rc, "irecv");
      if (req == nullptr) break;
      r.request = req;
      r.slot = static_cast<int>(recv_count_ % NET_UNPACK_MAX_SLICES);
      ++recv_count_;
      ++posted_;
      moved = true;
    }
    // Test only the oldest request the plugin has not reported done.
    while (tested_ < posted_) {
      ChunkReq& r = q_[tested_];
      if (!r.received) {
        int finished = 0;
        ncclResult_t rc = v.test(r.request, &finished, nullptr);
        if (rc != ncclSuccess) return net::from_nccl(rc, "test(irecv)");
        if (!finished) break;
        r.received = true;
      }
      Status s = finish_test(r);
      // The GPU unpacker holds as many jobs as it can (running, or done
      // but not yet collected by their owners): start this one on a later
      // pass, once the consumes below or other comms collected some.
      if (s.code() == StatusCode::kBusy) break;
      TCPX_RETURN_IF_ERROR(s);
      ++tested_;
      moved = true;
    }
    // Consume in post order once the data is in place.
    while (tested_ > 0) {
      ChunkReq& r = q_.front();
      if (r.unpacking) {
        Status s = r.unpacker->query(r.ticket);
        if (s.in_progress()) break;
        TCPX_RETURN_IF_ERROR(s);
      }
      if (v.irecvConsumed != nullptr) {
        ncclResult_t rc = v.irecvConsumed(comm_, 1, r.request);
        if (rc != ncclSuccess) return net::from_nccl(rc, "irecvConsumed");
      }
      done->push_back(r.owner);
      q_.pop_front();
      --tested_;
      --posted_;
      moved = true;
      ++completions;
    }
    if (!moved) return Status::Ok();
    *progressed = true;
    if (completions >= kMaxCompletionsPerCall) return Status::Ok();
  }
}

}  // namespace tcpx::engine
