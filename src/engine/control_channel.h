// ControlChannel: the one TCP connection per peer pair that carries frames.
// Non-blocking socket; partial reads and writes are buffered here. The
// progress thread calls read_frames()/flush() when poll says so; the
// handshake uses the *_until() variants, which block in poll up to a deadline
// and also give up when *cancel becomes true.
//
// Errors are sticky: after EOF, RST, a keepalive timeout or a malformed frame
// every later call returns the same Status.
#ifndef TCPX_ENGINE_CONTROL_CHANNEL_H_
#define TCPX_ENGINE_CONTROL_CHANNEL_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/wire.h"
#include "tcpx/status.h"

namespace tcpx::engine {

using Clock = std::chrono::steady_clock;

// SO_KEEPALIVE with probes sized so a silent peer is declared dead within
// about peer_timeout_ms, plus TCP_USER_TIMEOUT for unacknowledged data, and
// TCP_NODELAY (frames are small and latency matters).
void configure_socket(int fd, int peer_timeout_ms);

// Connects to ip:port (IPv4 or IPv6) without blocking past the deadline.
// TRANSPORT_ERROR when refused/unreachable, TIMED_OUT at the deadline.
Status tcp_connect(const std::string& ip, uint16_t port, Clock::time_point deadline,
                   const std::atomic<bool>* cancel, int* fd_out);

// How soon a queued frame must leave.
enum class Urgency : uint8_t {
  kNow,      // someone waits on it: replies, CTS, DATA, heartbeats, messages
  kRequest,  // a new request of ours: Progress::submit may leave it for the
             // next pass while the peer owes replies (engine/owed_replies.h)
  kLazy,     // an acknowledgement: may wait one pass for company
};

class ControlChannel {
 public:
  // Takes ownership of fd and makes it non-blocking. max_backlog: queued
  // bytes not yet written past which queue() fails the channel (a peer that
  // stops reading must not make us buffer without limit).
  explicit ControlChannel(int fd, size_t max_backlog = 64u << 20);
  ~ControlChannel();
  ControlChannel(const ControlChannel&) = delete;
  ControlChannel& operator=(const ControlChannel&) = delete;

  int fd() const { return fd_; }
  const Status& error() const { return error_; }

  // Queues a frame; the bytes go out on the next flush(). A lazy frame (an
  // acknowledgement nobody's data waits for) may wait for the next urgent one
  // to share its send(): see has_urgent(). flags: the frame header's. A
  // frame that cannot be queued (the backlog cap, a payload over its type's
  // limit) fails the channel: the frames after it must not leave.
  Status queue(FrameType type, uint64_t id, std::span<const uint8_t> payload, Urgency u = Urgency::kNow,
               uint8_t flags = 0);
  // Payload = header bytes + raw data, copied once into the write buffer.
  Status queue2(FrameType type, uint64_t id, std::span<const uint8_t> header, const void* data, size_t len,
                Urgency u = Urgency::kNow);
  // Writes what the socket takes now. OK with bytes possibly left (see
  // wants_write()), or the sticky error.
  Status flush();
  bool wants_write() const { return out_off_ < out_.size(); }
  // Unsent bytes include a frame that is not lazy.
  bool has_urgent() const { return urgent_ && wants_write(); }
  // Unsent bytes include a kNow frame (not only requests and acks).
  bool has_pressing() const { return pressing_ && wants_write(); }
  // Bytes received so far (a partial frame counts: the peer is alive).
  uint64_t bytes_read() const { return bytes_read_; }
  // The peer closed its end in order (EOF, not a reset): what it sent before
  // is all here, and it will send nothing more.
  bool peer_finished() const { return peer_finished_; }
  // Memory the read buffer holds now: at most one maximal frame plus one
  // read while a frame is partial, small again once a large one is decoded.
  size_t read_buffer_bytes() const { return in_.size(); }
  size_t write_buffer_bytes() const { return out_.capacity(); }
  // Payload bytes kept for reuse by decoded frames and spare buffers.
  size_t kept_frame_bytes() const;
  // Reads everything available; *frames gets the complete frames, valid
  // until the next call. They live in this channel and are reused, payload
  // buffers included, so a stream of small frames costs no allocation (a
  // handler may still move a payload out). PEER_CLOSED on EOF/RST,
  // PROTOCOL_ERROR on a malformed frame; frames decoded before the error are
  // still returned.
  Status read_frames(std::span<Frame>* frames);
  // Hands back a payload buffer a handler moved out of a frame (an eager
  // send held until its receive was posted): the next frame to need one
  // reuses it instead of allocating.
  void recycle(std::vector<uint8_t>&& payload);

  // Handshake reading, non-blocking: receives at most what completes one
  // frame of at most max_payload bytes and decodes only that frame, so a
  // peer still in its handshake holds at most header + max_payload bytes of
  // ours, and bytes after the handshake's last frame stay buffered for
  // read_frames() (with the full limit). *got says whether *out is a frame.
  Status read_one_frame(Frame* out, size_t max_payload, bool* got);

  // Handshake helpers: block (in poll) until done, the deadline or *cancel.
  Status flush_until(Clock::time_point deadline, const std::atomic<bool>* cancel);
  Status read_frame_until(Frame* out, Clock::time_point deadline, const std::atomic<bool>* cancel,
                          size_t max_payload = kMaxPayloadBytes);

 private:
  Status fail(Status s);
  // How many undecoded bytes read_frames() gathers before decoding.
  size_t read_goal() const;
  void note_urgency(Urgency u);
  // Makes room for a frame of payload_len: drops what was already written,
  // or fails the channel when the unwritten bytes would pass max_backlog_.
  Status reserve(size_t payload_len);
  // Decodes the frame at the front of the buffer, if it is complete.
  Status decode_one(Frame* out, size_t max_payload, bool* got);
  void compact();
  int fd_;
  size_t max_backlog_;
  Status error_;
  std::vector<uint8_t> out_;
  size_t out_off_ = 0;
  Clock::time_point burst_at_{};  // when a flush last began with over kBurstBytes
  bool urgent_ = false;    // a non-lazy frame is among the unsent bytes
  bool pressing_ = false;  // a kNow frame is among the unsent bytes
  // read_frames()' frames, reused with their payload buffers. What they keep
  // between calls is bounded, as a peer chooses the frames: at most
  // kKeptFrames slots; the first kRoomyFrames keep a buffer of up to
  // kKeepFramePayloadBytes (a default-size eager send), the others up to
  // kKeepSmallPayloadBytes (acks, requests), and a larger one is given back
  // before its slot is reused. With the spare payloads: about 1 MiB at most.
  std::vector<Frame> frames_;
  static constexpr size_t kKeptFrames = 1024;
  static constexpr size_t kRoomyFrames = 32;
  static constexpr size_t kKeepFramePayloadBytes = (16u << 10) + 256;
  static constexpr size_t kKeepSmallPayloadBytes = 256;
  std::vector<std::vector<uint8_t>> spare_payloads_;  // recycle()d, at most kSparePayloads
  static constexpr size_t kSparePayloads = 16;
  std::vector<uint8_t> in_;  // [in_off_, in_len_) received, not yet decoded
  size_t in_len_ = 0;
  size_t in_off_ = 0;
  int quiet_reads_ = 0;  // reads in a row that left a large in_ unused
  uint64_t bytes_read_ = 0;
  bool peer_finished_ = false;
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_CONTROL_CHANNEL_H_
