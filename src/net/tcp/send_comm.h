// SendComm: the sending end of a comm. isend only queues; test() moves bytes.
// Each socket walks the queue on its own cursor and writes as many queued
// requests per syscall as fit (header and payload of several small messages
// in one sendmsg), until the socket would block.
#ifndef TCPX_NET_TCP_SEND_COMM_H_
#define TCPX_NET_TCP_SEND_COMM_H_

#include <sys/uio.h>

#include <cstdint>

#include "net/tcp/mem_region.h"
#include "net/tcp/options.h"
#include "net/tcp/request.h"
#include "net/tcp/wire.h"

namespace tcpx::tcp {

class SendComm;

struct SendRequest : RequestHeader {
  SendComm* comm = nullptr;
  const uint8_t* data = nullptr;
  uint64_t size = 0;
  bool cuda = false;
  uint8_t header[kMsgHeaderBytes] = {};
  // Per socket: bytes of this request that socket carries (header included on
  // socket 0) and how many of them are written.
  uint64_t stream_len[kMaxSocketsPerComm] = {};
  uint64_t stream_sent[kMaxSocketsPerComm] = {};
  int sockets_left = 0;
};

class SendComm {
 public:
  static constexpr uint32_t kMagic = 0x53434f4d;  // "SCOM"
  // Takes ownership of the connected, tuned sockets.
  SendComm(int nsocks, const int* fds);
  ~SendComm();
  SendComm(const SendComm&) = delete;
  SendComm& operator=(const SendComm&) = delete;

  static SendComm* from(void* p) {
    auto* c = static_cast<SendComm*>(p);
    return (c != nullptr && c->magic_ == kMagic) ? c : nullptr;
  }

  ncclResult_t post(void* data, int size, const MemRegion& mr, void** request);
  ncclResult_t test(SendRequest* r, int* done);

 private:
  // Pinned host copies of CUDA payload, two per socket so the next chunk is
  // copied while the socket drains the previous one.
  struct StageChunk {
    uint8_t* mem = nullptr;
    uint64_t off = 0;  // message offset of mem[0]
    uint64_t len = 0;
    uint64_t sent = 0;
  };
  struct SocketStage {
    StageChunk chunk[2];
    int front = 0;
    int count = 0;
  };
  static constexpr uint64_t kStageChunkBytes = 512 * 1024;
  static constexpr int kMaxIov = 64;

  SendRequest& at(uint64_t seq) { return reqs_[seq % kMaxRequests]; }
  void progress();
  void progress_socket(int s);
  int build_iov(int s, iovec* iov, uint64_t* total);
  void advance(int s, uint64_t n);
  bool refill_stage(int s);
  bool ensure_stage_memory();
  // Breaks the comm: every outstanding request fails with the first error.
  void fail(ncclResult_t code, const char* why, int err);
  // The peer is gone (EOF, reset, socket error): fail(), except under strict
  // TCPX emulation, where the requests neither complete nor fail (Google's
  // plugin just ends its socket thread) and test() answers done=0 forever.
  void peer_lost(ncclResult_t code, const char* why, int err);

  uint32_t magic_ = kMagic;
  int nsocks_ = 0;
  int fds_[kMaxSocketsPerComm];
  SendRequest reqs_[kMaxRequests];
  uint64_t head_ = 0;  // oldest request not yet freed
  uint64_t tail_ = 0;  // next seq to hand out
  uint64_t cursor_[kMaxSocketsPerComm] = {};
  SocketStage stage_[kMaxSocketsPerComm];
  bool stage_allocated_ = false;
  ncclResult_t broken_ = ncclSuccess;
  bool stalled_ = false;  // peer lost under strict TCPX emulation
};

}  // namespace tcpx::tcp

#endif  // TCPX_NET_TCP_SEND_COMM_H_
