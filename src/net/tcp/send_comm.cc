#include "net/tcp/send_comm.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "net/tcp/cuda_ops_loader.h"
#include "net/tcp/plugin_log.h"
#include "net/tcp/socket_ops.h"

namespace tcpx::tcp {

SendComm::SendComm(int nsocks, const int* fds) : nsocks_(nsocks) {
  for (int s = 0; s < kMaxSocketsPerComm; ++s) fds_[s] = s < nsocks ? fds[s] : -1;
  for (auto& r : reqs_) {
    r.kind = RequestKind::kSend;
    r.comm = this;
  }
}

SendComm::~SendComm() {
  magic_ = 0;
  for (int s = 0; s < nsocks_; ++s) close_fd(&fds_[s]);
  if (stage_allocated_) {
    const tcpxCudaOps_v1* ops = cuda_ops();
    for (int s = 0; s < nsocks_; ++s)
      for (auto& c : stage_[s].chunk)
        if (c.mem != nullptr) ops->host_free(c.mem);
  }
  for (auto& r : reqs_) r.magic = 0;
}

ncclResult_t SendComm::post(void* data, int size, const MemRegion& mr, void** request) {
  if (broken_ != ncclSuccess) return broken_;
  if (tail_ - head_ >= static_cast<uint64_t>(kMaxRequests)) {
    TCP_WARN("isend: %d requests already outstanding on this comm", kMaxRequests);
    return ncclInternalError;
  }
  bool cuda = mr.type == NCCL_PTR_CUDA;
  if (cuda && size > 0) {
    if (cuda_ops() == nullptr) {
      TCP_WARN("isend of CUDA memory, but this build has no CUDA (%s)", cuda_unavailable_reason());
      return ncclUnhandledCudaError;
    }
    if (!ensure_stage_memory()) return ncclUnhandledCudaError;
  }
  SendRequest& r = at(tail_);
  r.seq = tail_++;
  r.state = RequestState::kActive;
  r.error = ncclSuccess;
  r.data = static_cast<const uint8_t*>(data);
  r.size = static_cast<uint64_t>(size);
  r.cuda = cuda;
  encode_msg_header(r.size, r.header);
  r.sockets_left = 0;
  for (int s = 0; s < nsocks_; ++s) {
    r.stream_len[s] = stripe(r.size, nsocks_, s).size() + (s == 0 ? kMsgHeaderBytes : 0);
    r.stream_sent[s] = 0;
    if (r.stream_len[s] > 0) ++r.sockets_left;
  }
  *request = &r;
  return ncclSuccess;
}

ncclResult_t SendComm::test(SendRequest* r, int* done) {
  *done = 0;
  if (r->state == RequestState::kFree) return ncclInvalidUsage;
  if (r->seq != head_) return ncclInvalidUsage;  // only the oldest may be tested
  if (r->state == RequestState::kActive && broken_ == ncclSuccess) progress();
  if (r->state == RequestState::kDone) {  // written before any later failure
    r->state = RequestState::kFree;
    ++head_;
    *done = 1;
    return ncclSuccess;
  }
  if (r->state == RequestState::kFailed) return r->error;
  return broken_;
}

void SendComm::progress() {
  for (int s = 0; s < nsocks_ && broken_ == ncclSuccess && !stalled_; ++s) progress_socket(s);
}

void SendComm::progress_socket(int s) {
  // Bounded per call so one busy comm cannot starve the caller's others.
  for (int iter = 0; iter < 64; ++iter) {
    while (cursor_[s] < tail_ && at(cursor_[s]).stream_len[s] == at(cursor_[s]).stream_sent[s]) ++cursor_[s];
    if (cursor_[s] == tail_) return;
    if (at(cursor_[s]).cuda && !refill_stage(s)) return;
    iovec iov[kMaxIov];
    uint64_t total = 0;
    int n = build_iov(s, iov, &total);
    if (n == 0) return;
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(n);
    ssize_t rc = sendmsg(fds_[s], &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (rc < 0) {
      if (errno == EINTR) continue;
      if (would_block(errno)) return;
      peer_lost(errno_to_result(errno), "send", errno);
      return;
    }
    advance(s, static_cast<uint64_t>(rc));
    if (static_cast<uint64_t>(rc) < total) return;  // socket buffer is full
  }
}

int SendComm::build_iov(int s, iovec* iov, uint64_t* total) {
  constexpr uint64_t kMaxBytesPerCall = 8u << 20;
  int n = 0;
  const uint64_t hdr_len = s == 0 ? kMsgHeaderBytes : 0;
  for (uint64_t seq = cursor_[s]; seq < tail_ && n < kMaxIov - 2 && *total < kMaxBytesPerCall; ++seq) {
    SendRequest& r = at(seq);
    uint64_t pos = r.stream_sent[s];
    if (pos == r.stream_len[s]) continue;
    if (pos < hdr_len) {
      iov[n++] = {r.header + pos, hdr_len - pos};
      *total += hdr_len - pos;
      pos = hdr_len;
    }
    Piece piece = stripe(r.size, nsocks_, s);
    uint64_t from = piece.begin + (pos - hdr_len);
    if (from == piece.end) continue;
    if (!r.cuda) {
      iov[n++] = {const_cast<uint8_t*>(r.data) + from, piece.end - from};
      *total += piece.end - from;
      continue;
    }
    // CUDA payload goes out of the staged copies, which start exactly at
    // `from`; later requests wait until this one is written.
    SocketStage& st = stage_[s];
    for (int i = 0; i < st.count; ++i) {
      StageChunk& c = st.chunk[(st.front + i) % 2];
      iov[n++] = {c.mem + c.sent, c.len - c.sent};
      *total += c.len - c.sent;
    }
    break;
  }
  return n;
}

void SendComm::advance(int s, uint64_t n) {
  const uint64_t hdr_len = s == 0 ? kMsgHeaderBytes : 0;
  while (n > 0) {
    SendRequest& r = at(cursor_[s]);
    uint64_t pos = r.stream_sent[s];
    uint64_t take = std::min(n, r.stream_len[s] - pos);
    if (r.cuda) {
      uint64_t payload = take - (pos < hdr_len ? std::min(take, hdr_len - pos) : 0);
      SocketStage& st = stage_[s];
      while (payload > 0 && st.count > 0) {
        StageChunk& c = st.chunk[st.front];
        uint64_t t = std::min(payload, c.len - c.sent);
        c.sent += t;
        payload -= t;
        if (c.sent == c.len) {
          st.front = (st.front + 1) % 2;
          --st.count;
        }
      }
    }
    r.stream_sent[s] += take;
    n -= take;
    if (r.stream_sent[s] == r.stream_len[s]) {
      if (--r.sockets_left == 0) r.state = RequestState::kDone;
      ++cursor_[s];
    }
  }
}

bool SendComm::ensure_stage_memory() {
  if (stage_allocated_) return true;
  const tcpxCudaOps_v1* ops = cuda_ops();
  for (int s = 0; s < nsocks_; ++s) {
    for (auto& c : stage_[s].chunk) {
      void* dev = nullptr;
      void* host = nullptr;
      int e = ops->host_alloc_mapped(kStageChunkBytes, &host, &dev);
      if (e != 0) {
        TCP_WARN("cannot allocate pinned staging for CUDA sends: %s",
                 ops->error_string ? ops->error_string(e) : "CUDA error");
        for (int t = 0; t <= s; ++t)
          for (auto& d : stage_[t].chunk)
            if (d.mem != nullptr) { ops->host_free(d.mem); d.mem = nullptr; }
        return false;
      }
      c.mem = static_cast<uint8_t*>(host);
    }
  }
  stage_allocated_ = true;
  return true;
}

bool SendComm::refill_stage(int s) {
  SendRequest& r = at(cursor_[s]);
  const uint64_t hdr_len = s == 0 ? kMsgHeaderBytes : 0;
  Piece piece = stripe(r.size, nsocks_, s);
  SocketStage& st = stage_[s];
  uint64_t sent_payload = r.stream_sent[s] > hdr_len ? r.stream_sent[s] - hdr_len : 0;
  uint64_t next = piece.begin + sent_payload;
  if (st.count > 0) {
    const StageChunk& back = st.chunk[(st.front + st.count - 1) % 2];
    next = back.off + back.len;
  }
  while (st.count < 2 && next < piece.end) {
    StageChunk& c = st.chunk[(st.front + st.count) % 2];
    c.off = next;
    c.len = std::min(kStageChunkBytes, piece.end - next);
    c.sent = 0;
    int e = cuda_ops()->memcpy_d2h(c.mem, r.data + next, c.len);
    if (e != 0) {
      TCP_WARN("memcpy_d2h of %llu bytes failed: %s", static_cast<unsigned long long>(c.len),
               cuda_ops()->error_string ? cuda_ops()->error_string(e) : "CUDA error");
      fail(ncclUnhandledCudaError, "stage CUDA payload", 0);
      return false;
    }
    next += c.len;
    ++st.count;
  }
  return true;
}

void SendComm::fail(ncclResult_t code, const char* why, int err) {
  if (broken_ == ncclSuccess) {  // the first error is the one reported
    TCP_WARN("send comm broken: %s failed%s%s (code %d)", why, err ? ": " : "", err ? strerror(err) : "",
             static_cast<int>(code));
    broken_ = code;
  }
  for (uint64_t seq = head_; seq < tail_; ++seq) {
    SendRequest& r = at(seq);
    if (r.state == RequestState::kActive) {
      r.state = RequestState::kFailed;
      r.error = broken_;
    }
  }
}

void SendComm::peer_lost(ncclResult_t code, const char* why, int err) {
  if (!stall_on_peer_loss("send comm", &stalled_, why, err)) fail(code, why, err);
}

}  // namespace tcpx::tcp
