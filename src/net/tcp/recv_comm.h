// RecvComm: the receiving end of a comm. irecv only queues; test() reads.
//
// Direct mode (host memory): payload lands in the caller's buffer, and a
// message larger than the posted size fails the request and breaks the comm.
// Bounce mode (CUDA memory, or host with TCPX_P2P_TCP_BOUNCE_HOST=1): payload
// lands in the comm's bounce buffer, scattered as bounce.h describes, and the
// fragment list is published in netUnpackMeta slot seq % 16; the destination
// is never touched. Either way a done request keeps its slot until
// irecvConsumed.
//
// Each socket reads through a small staging buffer when the next bytes are a
// header or a small payload (one recv then serves many small messages), and
// straight into the destination (or bounce pages, with readv) for large ones.
#ifndef TCPX_NET_TCP_RECV_COMM_H_
#define TCPX_NET_TCP_RECV_COMM_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>

#include "net/tcp/bounce.h"
#include "net/tcp/mem_region.h"
#include "net/tcp/options.h"
#include "net/tcp/request.h"
#include "net/tcp/wire.h"

namespace tcpx::tcp {

class RecvComm;

struct RecvRequest : RequestHeader {
  RecvComm* comm = nullptr;
  uint8_t* data = nullptr;
  uint64_t posted = 0;
  bool bounce = false;
  bool have_size = false;
  uint64_t size = 0;  // the sender's, once the header is in
  uint8_t header[kMsgHeaderBytes] = {};
  uint32_t header_got = 0;
  Piece piece[kMaxSocketsPerComm];
  uint64_t got[kMaxSocketsPerComm] = {};
  int sockets_left = 0;
  FragmentLayout layout;
};

class RecvComm {
 public:
  static constexpr uint32_t kMagic = 0x52434f4d;  // "RCOM"
  // Takes ownership of the sockets; call init() before use.
  RecvComm(int nsocks, const int* fds, bool bounce_host);
  ~RecvComm();
  RecvComm(const RecvComm&) = delete;
  RecvComm& operator=(const RecvComm&) = delete;
  // Allocates buffers; false (logged) when memory cannot be had.
  bool init();

  static RecvComm* from(void* p) {
    auto* c = static_cast<RecvComm*>(p);
    return (c != nullptr && c->magic_ == kMagic) ? c : nullptr;
  }

  unpackNetDeviceHandle* device_handle() { return &dev_handle_; }
  ncclResult_t post(void* data, int size, const MemRegion& mr, void** request);
  ncclResult_t test(RecvRequest* r, int* done);
  ncclResult_t consumed(RecvRequest* r);

 private:
  struct Staging {
    std::unique_ptr<uint8_t[]> buf;
    uint32_t rd = 0;
    uint32_t wr = 0;
    uint32_t avail() const { return wr - rd; }
  };
  static constexpr uint32_t kStagingBytes = 64 * 1024;
  // Payload runs at least this long skip the staging copy.
  static constexpr uint64_t kDirectReadMin = 16 * 1024;
  // A receive posted at least this large reads its header alone (16 bytes,
  // one more recv) and every byte of its payload in place, however little is
  // left, never through staging: a staging fill takes up to 64 KiB, the
  // payload in it is copied again into the destination, and a fill for the
  // short tail of one message takes in the next one's header and payload
  // too, so one tail put every later message of a stream through staging.
  static constexpr uint64_t kHeaderAloneMin = 32 * 1024;
  static bool lands_in_place(const RecvRequest& r) { return r.posted >= kHeaderAloneMin; }
  // A direct read with at least lowat_ bytes still to come on its socket
  // waits until that much is queued: the socket carries SO_RCVLOWAT, and a
  // poll() (which takes no socket lock) says when. A receiver that reads
  // whatever arrived, spinning, read about 110 KiB per recv() at 5 GB/s;
  // 1 MiB sends went 5.2-5.3 -> 6.1-6.8 GB/s and both sides' CPU per GB fell
  // by a fifth with 128 KiB reads (Options::read_lowat; 32-96 KiB gave
  // nothing, 128-256 KiB about the same, 512 KiB-1 MiB less). 0: off.
  int lowat_ = 0;

  RecvRequest& at(uint64_t seq) { return reqs_[seq % kMaxRequests]; }
  void progress();
  void progress_socket(int s);
  // The outcome of one recv/recvmsg that returned rc: true with *got > 0
  // when bytes came; false when the socket has nothing now, or failed (the
  // comm is then broken, or stalled under strict TCPX emulation; eof_why
  // names an EOF).
  bool took(ssize_t rc, const char* eof_why, size_t* got);
  // One recv of up to n bytes into p, as took() reports it.
  bool recv_some(int s, void* p, size_t n, size_t* got);
  // One recv into staging; false when the socket has nothing (or failed).
  // *drained: the read was short, so the socket is empty for now.
  bool fill_staging(int s, bool* drained);
  // Reads what is missing of r's header, straight into it; false when the
  // socket has nothing (or failed).
  bool read_header(int s, RecvRequest& r, bool* drained);
  bool read_direct(int s, RecvRequest& r, uint64_t n, bool* drained);
  void on_header(RecvRequest& r);
  void deliver(RecvRequest& r, int s, const uint8_t* src, uint64_t n);
  void socket_finished(RecvRequest& r, int s);
  void complete(RecvRequest& r);
  // Breaks the comm: every outstanding request fails with the first error.
  void fail(ncclResult_t code, const char* why, int err);
  // The peer is gone (EOF, reset, socket error): fail(), except under strict
  // TCPX emulation, where the requests neither complete nor fail (Google's
  // plugin just ends its socket thread) and test() answers done=0 forever.
  void peer_lost(ncclResult_t code, const char* why, int err);

  uint32_t magic_ = kMagic;
  int nsocks_ = 0;
  int fds_[kMaxSocketsPerComm];
  bool bounce_host_ = false;
  RecvRequest reqs_[kMaxRequests];
  uint64_t head_ = 0;  // oldest not yet consumed
  uint64_t tail_ = 0;  // next seq; also k for the slot protocol
  uint64_t cursor_[kMaxSocketsPerComm] = {};
  Staging staging_[kMaxSocketsPerComm];
  BounceArea bounce_;
  unpackNetDeviceHandle dev_handle_{};
  ncclResult_t broken_ = ncclSuccess;
  bool stalled_ = false;  // peer lost under strict TCPX emulation
};

}  // namespace tcpx::tcp

#endif  // TCPX_NET_TCP_RECV_COMM_H_
