#include "engine/control_channel.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/socket_error.h"
#include "engine/byte_io.h"

namespace tcpx::engine {
namespace {

constexpr size_t kReadBytes = 64 * 1024;
// Bytes read_frames gathers before it decodes and returns frames, unless
// the frame at the front is larger. A stream of small frames (one-sided
// answers, eager sends) is handled as it comes: gathering up to a maximal
// frame (1 MiB) turned a window of 1,000 4 KiB reads into alternating
// batches of 250 answers and 250 requests, each side idle while the other
// worked (read 4 KiB at window 1,000: 1.7-2.2 GB/s, against 3.0-3.7 at 128).
constexpr size_t kReadBatchBytes = 128 * 1024;
// Buffers larger than this are released once empty again (a large frame or a
// burst must not pin its memory for the connection's life)...
constexpr size_t kKeepBufferBytes = 4u << 20;
// ... but the write buffer only once no burst (over kBurstBytes to write)
// came for kKeepLargeOutFor: bursts that recur (a C API vector of 1,000
// inline 4 KiB writes or read answers is 4 MiB) would otherwise grow it
// again from nothing every time, and each growth is fresh memory the kernel
// faults in page by page (1000x4K through the C API: write 0.54 -> 1.8
// GB/s, read 0.19 -> 1.1-1.7 when it was kept). An idle connection flushes
// at least its heartbeat, so it gives the memory back a few seconds after
// its last burst.
constexpr size_t kBurstBytes = 1u << 20;
constexpr auto kKeepLargeOutFor = std::chrono::seconds(1);
// The same for the read buffer, which holds at most one maximal frame plus
// one read: beyond a few eager frames' worth (after a 1 MiB message), it is
// released, but only once kQuietReadsBeforeRelease reads in a row needed no
// more. Releasing it at once made a stream of 64 KiB inline frames
// reallocate and zero-fill the buffer on every read (C API reads ran at a
// third of their speed).
constexpr size_t kKeepReadBytes = 256u << 10;
constexpr int kQuietReadsBeforeRelease = 256;
constexpr int kSlicesMs = 20;  // how often blocking helpers look at *cancel

int ms_until(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return static_cast<int>(std::min<long long>(left, kSlicesMs));
}

bool cancelled(const std::atomic<bool>* c) { return c != nullptr && c->load(std::memory_order_relaxed); }

}  // namespace

void configure_socket(int fd, int peer_timeout_ms) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  // idle + cnt * intvl ~= peer_timeout: start probing after a third of it,
  // then 4 probes spaced over the remaining two thirds.
  int total_s = std::max(3, peer_timeout_ms / 1000);
  int idle = std::max(1, total_s / 3);
  int cnt = 4;
  int intvl = std::max(1, (total_s - idle) / cnt);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
  unsigned int user_timeout = static_cast<unsigned int>(peer_timeout_ms);
  setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
}

Status tcp_connect(const std::string& ip, uint16_t port, Clock::time_point deadline,
                   const std::atomic<bool>* cancel, int* fd_out) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof *v4;
  } else if (inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof *v6;
  } else {
    return InvalidArgument("connect: '" + ip + "' is not an IPv4 or IPv6 address");
  }
  std::string where = ip + ":" + std::to_string(port);
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return socket_error("socket", errno, SocketStage::kSetup);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    return socket_error("connect to " + where, e, SocketStage::kSetup);
  }
  for (;;) {
    pollfd p{fd, POLLOUT, 0};
    int r = poll(&p, 1, ms_until(deadline));
    if (r < 0 && errno != EINTR) {
      int e = errno;
      close(fd);
      return socket_error("poll", e, SocketStage::kSetup);
    }
    if (r > 0) break;
    if (cancelled(cancel)) { close(fd); return Closed("connect cancelled: endpoint closing"); }
    if (Clock::now() >= deadline) { close(fd); return TimedOut("connect to " + where + " timed out"); }
  }
  int err = 0;
  socklen_t el = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
  if (err != 0) {
    close(fd);
    return socket_error("connect to " + where, err, SocketStage::kSetup);
  }
  *fd_out = fd;
  return Status::Ok();
}

ControlChannel::ControlChannel(int fd, size_t max_backlog) : fd_(fd), max_backlog_(max_backlog) {
  int flags = fcntl(fd_, F_GETFL, 0);
  fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
}

ControlChannel::~ControlChannel() {
  if (fd_ >= 0) close(fd_);
}

Status ControlChannel::fail(Status s) {
  if (error_.ok()) error_ = std::move(s);
  return error_;
}

Status ControlChannel::reserve(size_t payload_len) {
  if (!error_.ok()) return error_;
  // Drop what was already written before the buffer grows further, so a
  // long-lived connection does not accumulate sent bytes.
  if (out_off_ > 0 && out_off_ == out_.size()) {
    out_.clear();
    out_off_ = 0;
  }
  size_t backlog = out_.size() - out_off_;
  if (backlog + kFrameHeaderBytes + payload_len > max_backlog_)
    return fail(TransportError("peer is not reading its control connection: " + std::to_string(backlog) +
                               " bytes queued for it (TCPX_MAX_CONTROL_BACKLOG_BYTES=" +
                               std::to_string(max_backlog_) + ")"));
  return Status::Ok();
}

void ControlChannel::note_urgency(Urgency u) {
  if (u != Urgency::kLazy) urgent_ = true;
  if (u == Urgency::kNow) pressing_ = true;
}

Status ControlChannel::queue(FrameType type, uint64_t id, std::span<const uint8_t> payload, Urgency u,
                             uint8_t flags) {
  TCPX_RETURN_IF_ERROR(reserve(payload.size()));
  note_urgency(u);
  Status s = append_frame(type, id, payload, &out_, flags);
  return s.ok() ? s : fail(std::move(s));  // sticky: the frames after it must not leave
}

Status ControlChannel::queue2(FrameType type, uint64_t id, std::span<const uint8_t> header, const void* data,
                              size_t len, Urgency u) {
  TCPX_RETURN_IF_ERROR(reserve(header.size() + len));
  note_urgency(u);
  Status s = append_frame2(type, id, header.data(), header.size(), static_cast<const uint8_t*>(data), len, &out_);
  return s.ok() ? s : fail(std::move(s));
}

Status ControlChannel::flush() {
  if (!error_.ok()) return error_;
  if (out_.size() - out_off_ > kBurstBytes) burst_at_ = Clock::now();
  while (out_off_ < out_.size()) {
    ssize_t n = send(fd_, out_.data() + out_off_, out_.size() - out_off_, MSG_NOSIGNAL);
    if (n > 0) {
      out_off_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    int e = errno;
    return fail(socket_error("control connection write failed", e, SocketStage::kConnected));
  }
  if (out_off_ == out_.size()) {
    // After bursts (a backlog to a slow peer), give the memory back once
    // they stopped (kKeepLargeOutFor).
    if (out_.capacity() > kKeepBufferBytes && Clock::now() - burst_at_ > kKeepLargeOutFor)
      std::vector<uint8_t>().swap(out_);
    out_.clear();
    out_off_ = 0;
    urgent_ = false;
    pressing_ = false;
  } else if (out_off_ > (1u << 20)) {
    out_.erase(out_.begin(), out_.begin() + static_cast<long>(out_off_));
    out_off_ = 0;
  }
  return Status::Ok();
}

size_t ControlChannel::read_goal() const {
  const size_t have = in_len_ - in_off_;
  if (have < kFrameHeaderBytes) return kReadBatchBytes;
  // The frame at the front must be read whole, up to the largest a frame
  // may be (a longer one fails in decode_frame).
  ByteReader r(in_.data() + in_off_ + kFrameLengthOffset, 4);
  uint32_t len = 0;
  (void)r.u32(&len);
  return std::max(kReadBatchBytes, kFrameHeaderBytes + std::min<size_t>(len, kMaxPayloadBytes));
}

Status ControlChannel::read_frames(std::span<Frame>* frames) {
  *frames = {};
  if (!error_.ok()) return error_;
  // The frames handed out last time may view these bytes (Frame::view):
  // they are dropped only now.
  compact();
  bool eof = false;
  int err = 0;
  // Undecoded bytes stay below one maximal frame plus one read: what is
  // left in the socket is read on the next call (poll still reports it), so
  // a peer that sends without pause cannot make this buffer grow.
  while (in_len_ - in_off_ < read_goal()) {
    // in_ grows only up to that: resizing it per read would zero-fill 64 KiB
    // each time (microseconds per small message).
    if (in_.size() < in_len_ + kReadBytes) in_.resize(in_len_ + kReadBytes);
    ssize_t n = recv(fd_, in_.data() + in_len_, kReadBytes, 0);
    if (n > 0) {
      in_len_ += static_cast<size_t>(n);
      bytes_read_ += static_cast<uint64_t>(n);
      if (in_len_ > kKeepReadBytes) quiet_reads_ = 0;  // the large buffer is in use
      if (static_cast<size_t>(n) < kReadBytes) break;
      continue;
    }
    if (n == 0) { eof = true; break; }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    err = errno;
    break;
  }
  // Decode everything complete, even when the socket just died: frames that
  // arrived before the EOF are real (e.g. a REJECT followed by close).
  if (frames_.size() > kKeptFrames) frames_.resize(kKeptFrames);
  size_t n = 0;
  for (;;) {
    if (n == frames_.size()) frames_.emplace_back();
    Frame& f = frames_[n];
    if (f.payload.capacity() > (n < kRoomyFrames ? kKeepFramePayloadBytes : kKeepSmallPayloadBytes)) {
      std::vector<uint8_t>().swap(f.payload);
    } else if (f.payload.capacity() == 0 && !spare_payloads_.empty()) {  // moved out by a handler
      f.payload = std::move(spare_payloads_.back());
      spare_payloads_.pop_back();
    }
    size_t used = 0;
    Status s = decode_frame(in_.data() + in_off_, in_len_ - in_off_, &f, &used, kMaxPayloadBytes,
                            /*view_data=*/true);
    if (!s.ok()) {
      *frames = {frames_.data(), n};
      return fail(Status(s.code(), "control connection: " + s.message()));
    }
    if (used == 0) break;
    in_off_ += used;
    ++n;
  }
  *frames = {frames_.data(), n};
  // RST, or ETIMEDOUT from keepalive / TCP_USER_TIMEOUT.
  if (err != 0) return fail(socket_error("control connection failed", err, SocketStage::kConnected));
  if (eof) {
    peer_finished_ = true;
    return fail(PeerClosed("control connection closed by peer"));
  }
  return Status::Ok();
}

size_t ControlChannel::kept_frame_bytes() const {
  size_t n = 0;
  for (const auto& f : frames_) n += f.payload.capacity();
  for (const auto& p : spare_payloads_) n += p.capacity();
  return n;
}

void ControlChannel::recycle(std::vector<uint8_t>&& payload) {
  if (payload.capacity() == 0 || payload.capacity() > kKeepFramePayloadBytes) return;
  if (spare_payloads_.size() >= kSparePayloads) return;
  if (spare_payloads_.capacity() == 0) spare_payloads_.reserve(kSparePayloads);
  spare_payloads_.push_back(std::move(payload));
}

void ControlChannel::compact() {
  if (in_off_ == in_len_) {
    in_len_ = 0;
    in_off_ = 0;
    // A large frame's buffer goes back once the traffic that needed it
    // stopped.
    if (in_.size() > kKeepReadBytes && ++quiet_reads_ >= kQuietReadsBeforeRelease) {
      std::vector<uint8_t>().swap(in_);
      quiet_reads_ = 0;
    }
  } else if (in_off_ > 0) {
    std::memmove(in_.data(), in_.data() + in_off_, in_len_ - in_off_);
    in_len_ -= in_off_;
    in_off_ = 0;
  }
}

Status ControlChannel::decode_one(Frame* out, size_t max_payload, bool* got) {
  size_t used = 0;
  Status s = decode_frame(in_.data() + in_off_, in_len_ - in_off_, out, &used, max_payload);
  if (!s.ok()) return fail(Status(s.code(), "control connection: " + s.message()));
  in_off_ += used;
  *got = used > 0;
  return Status::Ok();
}

Status ControlChannel::read_one_frame(Frame* out, size_t max_payload, bool* got) {
  *got = false;
  if (!error_.ok()) return error_;
  TCPX_RETURN_IF_ERROR(decode_one(out, max_payload, got));
  if (*got) return Status::Ok();
  compact();
  // What is buffered is a strict prefix of one frame of at most
  // header + max_payload bytes (decode_one checked its header), so there is
  // always room for at least one more byte.
  size_t room = std::min(kReadBytes, kFrameHeaderBytes + max_payload - in_len_);
  if (in_.size() < in_len_ + room) in_.resize(in_len_ + room);
  ssize_t n;
  do {
    n = recv(fd_, in_.data() + in_len_, room, 0);
  } while (n < 0 && errno == EINTR);
  int err = n < 0 && errno != EAGAIN && errno != EWOULDBLOCK ? errno : 0;
  if (n > 0) {
    in_len_ += static_cast<size_t>(n);
    bytes_read_ += static_cast<uint64_t>(n);
  }
  // A frame that arrived before an EOF is real (a REJECT, then close); the
  // EOF shows on the next call.
  TCPX_RETURN_IF_ERROR(decode_one(out, max_payload, got));
  if (*got) return Status::Ok();
  if (err != 0) return fail(socket_error("control connection failed", err, SocketStage::kConnected));
  if (n == 0) {
    peer_finished_ = true;
    return fail(PeerClosed("control connection closed by peer"));
  }
  return Status::Ok();
}

Status ControlChannel::flush_until(Clock::time_point deadline, const std::atomic<bool>* cancel) {
  for (;;) {
    TCPX_RETURN_IF_ERROR(flush());
    if (!wants_write()) return Status::Ok();
    if (cancelled(cancel)) return fail(Closed("endpoint closing"));
    if (Clock::now() >= deadline) return TimedOut("control connection: write timed out");
    pollfd p{fd_, POLLOUT, 0};
    poll(&p, 1, ms_until(deadline));
  }
}

Status ControlChannel::read_frame_until(Frame* out, Clock::time_point deadline, const std::atomic<bool>* cancel,
                                        size_t max_payload) {
  for (;;) {
    bool got = false;
    Status s = read_one_frame(out, max_payload, &got);
    if (got) return Status::Ok();
    if (!s.ok()) return s;
    if (cancelled(cancel)) return fail(Closed("endpoint closing"));
    if (Clock::now() >= deadline) return TimedOut("control connection: no frame before the deadline");
    pollfd p{fd_, POLLIN, 0};
    poll(&p, 1, ms_until(deadline));
  }
}

}  // namespace tcpx::engine
