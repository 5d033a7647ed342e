#include "net/tcp/recv_comm.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "net/tcp/options.h"
#include "net/tcp/plugin_log.h"
#include "net/tcp/socket_ops.h"

namespace tcpx::tcp {

RecvComm::RecvComm(int nsocks, const int* fds, bool bounce_host)
    : nsocks_(nsocks), bounce_host_(bounce_host) {
  for (int s = 0; s < kMaxSocketsPerComm; ++s) fds_[s] = s < nsocks ? fds[s] : -1;
  for (auto& r : reqs_) {
    r.kind = RequestKind::kRecv;
    r.comm = this;
  }
}

RecvComm::~RecvComm() {
  magic_ = 0;
  for (int s = 0; s < nsocks_; ++s) close_fd(&fds_[s]);
  for (auto& r : reqs_) r.magic = 0;
}

bool RecvComm::init() {
  for (int s = 0; s < nsocks_; ++s) staging_[s].buf.reset(new (std::nothrow) uint8_t[kStagingBytes]);
  for (int s = 0; s < nsocks_; ++s)
    if (!staging_[s].buf) return false;
  if (!bounce_.allocate()) return false;
  // Best effort: without SO_RCVLOWAT a socket reads whatever arrived.
  lowat_ = read_lowat();
  for (int s = 0; s < nsocks_ && lowat_ > 0; ++s)
    if (setsockopt(fds_[s], SOL_SOCKET, SO_RCVLOWAT, &lowat_, sizeof lowat_) != 0) lowat_ = 0;
  dev_handle_.meta = bounce_.meta();
  dev_handle_.bounce_buf = bounce_.base();
  dev_handle_.head = 0;  // callers count their own receives (k % 16)
  return true;
}

ncclResult_t RecvComm::post(void* data, int size, const MemRegion& mr, void** request) {
  if (broken_ != ncclSuccess) return broken_;
  if (tail_ - head_ >= static_cast<uint64_t>(kMaxRequests)) {
    TCP_WARN("irecv: %d requests already outstanding (done but not consumed count too)", kMaxRequests);
    return ncclInternalError;
  }
  RecvRequest& r = at(tail_);
  r.seq = tail_++;
  r.state = RequestState::kActive;
  r.error = ncclSuccess;
  r.data = static_cast<uint8_t*>(data);
  r.posted = static_cast<uint64_t>(size);
  r.bounce = mr.type == NCCL_PTR_CUDA || bounce_host_;
  r.have_size = false;
  r.size = 0;
  r.header_got = 0;
  r.sockets_left = 0;
  for (int s = 0; s < nsocks_; ++s) {
    r.piece[s] = Piece{};
    r.got[s] = 0;
  }
  *request = &r;
  return ncclSuccess;
}

ncclResult_t RecvComm::test(RecvRequest* r, int* done) {
  *done = 0;
  switch (r->state) {
    case RequestState::kFree: return ncclInvalidUsage;
    case RequestState::kDone: *done = 1; return ncclSuccess;
    case RequestState::kFailed: return r->error;
    case RequestState::kActive: break;
  }
  if (broken_ != ncclSuccess) return broken_;
  // Only the oldest request not yet done may be tested.
  for (uint64_t seq = head_; seq < r->seq; ++seq)
    if (at(seq).state == RequestState::kActive) return ncclInvalidUsage;
  progress();
  if (r->state == RequestState::kFailed) return r->error;
  if (broken_ != ncclSuccess) return broken_;
  *done = r->state == RequestState::kDone ? 1 : 0;
  return ncclSuccess;
}

ncclResult_t RecvComm::consumed(RecvRequest* r) {
  if (r->state == RequestState::kFree || r->seq != head_) return ncclInvalidUsage;
  if (r->state == RequestState::kActive) return ncclInvalidUsage;
  r->state = RequestState::kFree;
  ++head_;
  return ncclSuccess;
}

void RecvComm::progress() {
  for (int s = 0; s < nsocks_ && broken_ == ncclSuccess && !stalled_; ++s) progress_socket(s);
}

void RecvComm::progress_socket(int s) {
  Staging& st = staging_[s];
  // After a short read the socket is empty: another recv would only say so.
  bool drained = false;
  for (int iter = 0; iter < 64 && broken_ == ncclSuccess && !stalled_; ++iter) {
    // Sockets other than 0 carry nothing for small messages: skip those.
    while (cursor_[s] < tail_ && s != 0 && at(cursor_[s]).have_size && at(cursor_[s]).piece[s].size() == 0)
      ++cursor_[s];
    if (cursor_[s] == tail_) return;
    RecvRequest& r = at(cursor_[s]);
    if (!r.have_size) {
      if (s != 0) return;  // the size comes on socket 0
      if (st.avail() == 0 && lands_in_place(r)) {
        if (drained || !read_header(s, r, &drained)) return;
        continue;
      }
      if (st.avail() == 0 && (drained || !fill_staging(s, &drained))) return;
      uint32_t n = std::min<uint32_t>(st.avail(), kMsgHeaderBytes - r.header_got);
      memcpy(r.header + r.header_got, st.buf.get() + st.rd, n);
      st.rd += n;
      r.header_got += n;
      if (r.header_got == kMsgHeaderBytes) on_header(r);
      continue;
    }
    uint64_t remaining = r.piece[s].size() - r.got[s];
    if (st.avail() > 0) {
      uint64_t n = std::min<uint64_t>(st.avail(), remaining);
      deliver(r, s, st.buf.get() + st.rd, n);
      st.rd += static_cast<uint32_t>(n);
      continue;
    }
    if (drained) return;
    if (remaining >= kDirectReadMin || lands_in_place(r)) {
      if (lowat_ > 0 && remaining >= static_cast<uint64_t>(lowat_)) {
        pollfd p{fds_[s], POLLIN, 0};
        if (poll(&p, 1, 0) == 0) return;  // less than lowat_ queued (errors and EOF do report)
      }
      if (!read_direct(s, r, remaining, &drained)) return;
    } else if (!fill_staging(s, &drained)) {
      return;
    }
  }
}

bool RecvComm::took(ssize_t rc, const char* eof_why, size_t* got) {
  if (rc > 0) {
    *got = static_cast<size_t>(rc);
    return true;
  }
  if (rc == 0) peer_lost(ncclRemoteError, eof_why, 0);
  else if (!would_block(errno)) peer_lost(errno_to_result(errno), "recv", errno);
  return false;
}

bool RecvComm::recv_some(int s, void* p, size_t n, size_t* got) {
  ssize_t rc;
  do {
    rc = recv(fds_[s], p, n, MSG_DONTWAIT);
  } while (rc < 0 && errno == EINTR);
  return took(rc, "peer closed the connection mid-stream", got);
}

bool RecvComm::fill_staging(int s, bool* drained) {
  Staging& st = staging_[s];
  st.rd = st.wr = 0;
  size_t got = 0;
  if (!recv_some(s, st.buf.get(), kStagingBytes, &got)) return false;
  st.wr = static_cast<uint32_t>(got);
  *drained = got < kStagingBytes;
  return true;
}

bool RecvComm::read_header(int s, RecvRequest& r, bool* drained) {
  const size_t want = kMsgHeaderBytes - r.header_got;
  size_t got = 0;
  if (!recv_some(s, r.header + r.header_got, want, &got)) return false;
  *drained = got < want;
  r.header_got += static_cast<uint32_t>(got);
  if (r.header_got == kMsgHeaderBytes) on_header(r);
  return true;
}

bool RecvComm::read_direct(int s, RecvRequest& r, uint64_t n, bool* drained) {
  uint64_t off = r.piece[s].begin + r.got[s];
  ssize_t rc;
  do {
    if (!r.bounce) {
      rc = recv(fds_[s], r.data + off, n, MSG_DONTWAIT);
    } else {
      iovec iov[IOV_MAX];
      int cnt = bounce_.iovecs(r.layout, off, n, iov, IOV_MAX);
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<size_t>(cnt);
      rc = recvmsg(fds_[s], &msg, MSG_DONTWAIT);
    }
  } while (rc < 0 && errno == EINTR);
  size_t got = 0;
  if (!took(rc, "peer closed the connection mid-message", &got)) return false;
  *drained = got < n;
  r.got[s] += got;
  if (r.got[s] == r.piece[s].size()) socket_finished(r, s);
  return true;
}

void RecvComm::on_header(RecvRequest& r) {
  uint64_t size = 0;
  if (!decode_msg_header(r.header, &size)) {
    fail(ncclRemoteError, "bad message header from peer (garbage on the stream)", 0);
    return;
  }
  if (!r.bounce && size > r.posted) {
    TCP_WARN("irecv posted %llu bytes but the sender sent %llu; failing the receive",
             static_cast<unsigned long long>(r.posted), static_cast<unsigned long long>(size));
    fail(ncclInternalError, "receive larger than the posted buffer", 0);
    return;
  }
  if (r.bounce && size > kMaxBounceMessage) {
    TCP_WARN("a %llu-byte message exceeds the %llu-byte bounce slot (2048 fragments of 4 KiB); "
             "send chunks of at most 8 MiB",
             static_cast<unsigned long long>(size), static_cast<unsigned long long>(kMaxBounceMessage));
    fail(ncclInternalError, "bounce receive too large", 0);
    return;
  }
  r.size = size;
  r.have_size = true;
  r.sockets_left = 0;
  for (int s = 0; s < nsocks_; ++s) {
    r.piece[s] = stripe(size, nsocks_, s);
    if (r.piece[s].size() > 0) ++r.sockets_left;
  }
  if (r.bounce) {
    r.layout = FragmentLayout(r.seq, size);
    r.layout.fill_meta(bounce_.meta()->mem[r.layout.slot()]);
  }
  if (r.sockets_left == 0) {  // empty message: the header was all of it
    ++cursor_[0];
    complete(r);
  }
}

void RecvComm::deliver(RecvRequest& r, int s, const uint8_t* src, uint64_t n) {
  uint64_t off = r.piece[s].begin + r.got[s];
  if (r.bounce) bounce_.scatter(r.layout, off, src, n);
  else memcpy(r.data + off, src, n);
  r.got[s] += n;
  if (r.got[s] == r.piece[s].size()) socket_finished(r, s);
}

void RecvComm::socket_finished(RecvRequest& r, int s) {
  ++cursor_[s];
  if (--r.sockets_left == 0) complete(r);
}

void RecvComm::complete(RecvRequest& r) {
  int slot = static_cast<int>(r.seq % NET_UNPACK_MAX_SLICES);
  bounce_.meta()->cnt[slot] = r.bounce ? r.layout.count() : 0;
  // The caller may hand the metadata to a GPU; make the entries visible first.
  std::atomic_thread_fence(std::memory_order_release);
  r.state = RequestState::kDone;
}

void RecvComm::fail(ncclResult_t code, const char* why, int err) {
  if (broken_ == ncclSuccess) {  // the first error is the one reported
    TCP_WARN("recv comm broken: %s%s%s (code %d)", why, err ? ": " : "", err ? strerror(err) : "",
             static_cast<int>(code));
    broken_ = code;
  }
  for (uint64_t seq = head_; seq < tail_; ++seq) {
    RecvRequest& r = at(seq);
    if (r.state == RequestState::kActive) {
      r.state = RequestState::kFailed;
      r.error = broken_;
    }
  }
}

void RecvComm::peer_lost(ncclResult_t code, const char* why, int err) {
  if (!stall_on_peer_loss("recv comm", &stalled_, why, err)) fail(code, why, err);
}

}  // namespace tcpx::tcp
