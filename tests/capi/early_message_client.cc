// Connects to a C API engine the way the engine's own connector does, except
// that its READY frame and a first C API message (one READ md item) leave in
// ONE send(): the target's handshake then reads both at once, which is what a
// fast initiator does by chance under load (it may send as soon as it has the
// target's READY). Prints "REPLY <status>" when the target answers the READ
// item within the deadline, "NO_REPLY <why>" otherwise.
//
//   capi_early_message_client <ip:port?gpu> <remote_addr> <size> [timeout_ms=5000]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "capi/wire.h"
#include "engine/control_channel.h"
#include "engine/handshake.h"
#include "engine/wire.h"
#include "net/transport.h"
#include "tcpx/endpoint.h"

namespace {

using tcpx::Status;
using namespace tcpx::engine;  // NOLINT: a small helper binary

int fail(const std::string& why) {
  std::printf("NO_REPLY %s\n", why.c_str());
  return 1;
}

// Both plugin directions up (non-blocking steps, driven until done).
Status bring_up(tcpx::net::Transport& t, tcpx::net::ListenComm& lc, tcpx::net::NetHandle peer_handle,
                Clock::time_point deadline, ChannelComms* out) {
  while (!out->send || !out->recv) {
    if (!out->send) {
      Status s = t.connect_step(0, &peer_handle, 1, &out->send);
      if (!s.ok() && !s.in_progress()) return s;
    }
    if (!out->recv) {
      Status s = t.accept_step(lc, &out->recv, &out->recv_dev);
      if (!s.ok() && !s.in_progress()) return s;
    }
    if (Clock::now() > deadline) return tcpx::TimedOut("plugin channel not up");
    usleep(200);  // the steps are non-blocking: do not spin
  }
  return Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s <ip:port?gpu> <remote_addr> <size> [timeout_ms]\n", argv[0]);
    return 2;
  }
  tcpx::PeerInfo peer;
  if (!tcpx::Endpoint::parse_metadata_string(argv[1], &peer).ok()) return fail("bad metadata");
  uint64_t remote = std::strtoull(argv[2], nullptr, 10);
  uint64_t size = std::strtoull(argv[3], nullptr, 10);
  int timeout_ms = argc > 4 ? std::atoi(argv[4]) : 5000;
  auto deadline = Clock::now() + std::chrono::seconds(30);

  std::shared_ptr<tcpx::net::Transport> t;
  Status s = tcpx::net::Transport::load("", &t);
  if (!s.ok()) return fail("plugin: " + s.to_string());
  int fd = -1;
  s = tcp_connect(peer.ip, peer.port, deadline, nullptr, &fd);
  if (!s.ok()) return fail("connect: " + s.to_string());
  configure_socket(fd, 5000);
  ControlChannel c(fd);

  // HELLO with one channel, as the engine's connector sends it.
  HelloPayload hello;
  hello.protocol_version = announced_protocol_version();
  hello.self.ip = "127.0.0.1";
  hello.self.gpu_idx = 0;
  hello.expected_peer_gpu = peer.gpu_idx;
  hello.channels = 1;
  hello.handles.resize(1);
  tcpx::net::ListenComm lc;
  s = t->listen(0, &hello.handles[0], &lc);
  if (s.ok()) s = c.queue(FrameType::kHello, 0, encode_hello(hello));
  if (s.ok()) s = c.flush_until(deadline, nullptr);
  Frame f;
  if (s.ok()) s = c.read_frame_until(&f, deadline, nullptr);
  if (!s.ok() || f.type != FrameType::kHelloReply) return fail("no HELLO_REPLY: " + s.to_string());
  HelloPayload reply;
  s = decode_hello(f.payload, &reply);
  if (!s.ok() || reply.handles.size() != 1) return fail("bad HELLO_REPLY");
  ChannelComms comms;
  s = bring_up(*t, lc, reply.handles[0], deadline, &comms);
  if (!s.ok()) return fail("channels: " + s.to_string());

  // READY and the first message in one send().
  tcpx::capi::RequestItem item;
  item.op = tcpx::capi::ItemOp::kRead;
  item.data_ptr = remote;
  item.size = size;
  std::vector<uint8_t> md = tcpx::capi::encode_requests(1, 0, &item, 1);
  s = c.queue(FrameType::kReady, 0, {});
  if (s.ok()) s = c.queue(FrameType::kMessage, 0, md);
  if (s.ok()) s = c.flush_until(deadline, nullptr);
  if (!s.ok()) return fail("send: " + s.to_string());

  // The target's READY, then its answer (nothing else is expected).
  auto answer_by = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    s = c.read_frame_until(&f, answer_by, nullptr);
    if (!s.ok()) return fail(s.to_string());
    if (f.type == FrameType::kReady) continue;
    if (f.type != FrameType::kMessage) return fail(std::string("unexpected ") + frame_type_name(f.type));
    tcpx::capi::Batch b;
    s = tcpx::capi::decode(f.payload, &b);
    if (!s.ok() || b.type != tcpx::capi::MsgType::kReplies || b.replies.size() != 1)
      return fail("malformed answer: " + s.to_string());
    std::printf("REPLY %u\n", static_cast<unsigned>(b.replies[0].status));
    return 0;
  }
}
