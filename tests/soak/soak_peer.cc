#include "soak_peer.h"

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <random>
#include <sstream>
#include <vector>

#include "server_session.h"  // kStepTimeoutMs
#include "soak_ops.h"
#include "support/hex.h"
#include "support/pattern.h"
#include "tcpx/endpoint.h"

namespace tcpx::soak {
namespace {

class SoakPeer {
 public:
  SoakPeer(Endpoint* ep, ConnId conn, MrId mr, uint8_t* region) : ep_(ep), conn_(conn), mr_(mr), region_(region) {}

  Status run_op(const Op& op) {
    switch (op.kind) {
      case OpKind::kSend: return send(op);
      case OpKind::kRecv: return recv(op);
      case OpKind::kWrite:
      case OpKind::kWritev: return write(op);
      case OpKind::kRead:
      case OpKind::kReadv: return read(op);
      case OpKind::kNotify: return notify(op);
    }
    return Internal("unknown op");
  }

  Status say(const std::string& line) { return ep_->send_message(conn_, line.data(), line.size()); }

  Status hear(std::string* line) {
    std::vector<uint8_t> msg;
    TCPX_RETURN_IF_ERROR(ep_->recv_message(conn_, &msg, kStepTimeoutMs));
    line->assign(msg.begin(), msg.end());
    return Status::Ok();
  }

  // Set when the server's reply was "bad ..." or a check here failed.
  std::string bad_data;

 private:
  Status expect_ok() {
    std::string line;
    TCPX_RETURN_IF_ERROR(hear(&line));
    if (line.rfind("bad ", 0) == 0) bad_data = "server: " + line.substr(4);
    if (line != "ok") return ProtocolError("server answered '" + line + "'");
    return Status::Ok();
  }

  Status send(const Op& op) {
    test::fill_pattern(region_, op.sizes[0], op.seed);
    TCPX_RETURN_IF_ERROR(say(op.encode()));
    XferId x = 0;
    TCPX_RETURN_IF_ERROR(ep_->send_async(conn_, mr_, region_, op.sizes[0], &x));
    TCPX_RETURN_IF_ERROR(ep_->wait(x, kStepTimeoutMs));
    return expect_ok();
  }

  Status recv(const Op& op) {
    XferId x = 0;
    TCPX_RETURN_IF_ERROR(ep_->recv_async(conn_, mr_, region_, op.sizes[0], &x));
    TCPX_RETURN_IF_ERROR(say(op.encode()));
    TCPX_RETURN_IF_ERROR(ep_->wait(x, kStepTimeoutMs));
    TCPX_RETURN_IF_ERROR(check(region_, op.sizes[0], op.seed, "recv"));
    return expect_ok();
  }

  Status write(const Op& op) {
    std::vector<IoPiece> pieces;
    TCPX_RETURN_IF_ERROR(request_items(op, &pieces));
    for (auto& p : pieces) test::fill_pattern(p.data, p.size, op.seed + (&p - pieces.data()));
    XferId x = 0;
    if (op.kind == OpKind::kWrite) TCPX_RETURN_IF_ERROR(ep_->write_async(conn_, mr_, pieces[0].data, pieces[0].size, pieces[0].remote, &x));
    else TCPX_RETURN_IF_ERROR(ep_->writev_async(conn_, pieces, &x));
    TCPX_RETURN_IF_ERROR(ep_->wait(x, kStepTimeoutMs));
    TCPX_RETURN_IF_ERROR(say("written"));
    return expect_ok();
  }

  Status read(const Op& op) {
    std::vector<IoPiece> pieces;
    TCPX_RETURN_IF_ERROR(request_items(op, &pieces));
    for (auto& p : pieces) test::fill_pattern(p.data, p.size, ~op.seed);  // stale bytes must not pass
    XferId x = 0;
    if (op.kind == OpKind::kRead) TCPX_RETURN_IF_ERROR(ep_->read_async(conn_, mr_, pieces[0].data, pieces[0].size, pieces[0].remote, &x));
    else TCPX_RETURN_IF_ERROR(ep_->readv_async(conn_, pieces, &x));
    TCPX_RETURN_IF_ERROR(ep_->wait(x, kStepTimeoutMs));
    for (size_t i = 0; i < pieces.size(); ++i)
      TCPX_RETURN_IF_ERROR(check(pieces[i].data, pieces[i].size, op.seed + i, op_name(op.kind)));
    TCPX_RETURN_IF_ERROR(say("read"));
    return expect_ok();
  }

  Status notify(const Op& op) {
    TCPX_RETURN_IF_ERROR(ep_->send_notification(conn_, "soak", notification_text(op.seed, op.sizes[0])));
    TCPX_RETURN_IF_ERROR(say(op.encode()));
    return expect_ok();
  }

  // Sends the request and turns the server's "items <hex>..." into pieces
  // laid out one after another in our region.
  Status request_items(const Op& op, std::vector<IoPiece>* pieces) {
    TCPX_RETURN_IF_ERROR(say(op.encode()));
    std::string line;
    TCPX_RETURN_IF_ERROR(hear(&line));
    std::istringstream in(line);
    std::string word;
    in >> word;
    if (word != "items") return ProtocolError("expected items, got '" + line + "'");
    size_t off = 0;
    for (size_t size : op.sizes) {
      IoPiece p;
      p.mr = mr_;
      p.data = region_ + off;
      p.size = size;
      if (!(in >> word) || !test::from_hex(word, p.remote.bytes, sizeof(p.remote.bytes)))
        return ProtocolError("bad items line '" + line + "'");
      pieces->push_back(p);
      off += size;
    }
    return Status::Ok();
  }

  Status check(const void* p, size_t n, uint64_t seed, const char* what) {
    size_t bad = test::check_pattern(p, n, seed);
    if (bad == test::kPatternMatches) return Status::Ok();
    bad_data = std::string(what) + " of " + std::to_string(n) + " bytes: first bad byte at " + std::to_string(bad);
    return ProtocolError(bad_data);
  }

  Endpoint* ep_;
  ConnId conn_;
  MrId mr_;
  uint8_t* region_;
};

Config peer_config() {
  Config cfg;
  if (!Config::from_env(&cfg).ok()) cfg = Config();
  cfg.listen_addr = "127.0.0.1";
  return cfg;
}

int fail(const char* step, const Status& s) {
  std::fprintf(stderr, "soak peer %d: %s: %s\n", static_cast<int>(getpid()), step, s.to_string().c_str());
  return 1;
}

}  // namespace

int run_peer(uint16_t server_port, uint64_t seed, uint64_t ops) {
  // Declared before the endpoint so that it outlives every transfer.
  std::vector<uint8_t> region(kRegionBytes);
  std::unique_ptr<Endpoint> ep;
  Status s = Endpoint::create(0, peer_config(), &ep);
  if (!s.ok()) return fail("create", s);
  // The server ties our connection to this process by this port.
  std::printf("READY %u\n", static_cast<unsigned>(ep->local_info().port));
  std::fflush(stdout);
  ConnId conn = 0;
  s = ep->connect("127.0.0.1", 0, server_port, &conn);
  if (!s.ok()) return fail("connect", s);
  MrId mr = 0;
  s = ep->reg(region.data(), region.size(), &mr);
  if (!s.ok()) return fail("reg", s);
  SoakPeer peer(ep.get(), conn, mr, region.data());
  std::mt19937_64 rng(seed);
  for (uint64_t i = 0; i < ops; ++i) {
    Op op = random_op(rng);
    s = peer.run_op(op);
    if (!s.ok()) {
      if (!peer.bad_data.empty()) (void)peer.say("fail " + peer.bad_data);
      return fail(op.encode().c_str(), s);
    }
  }
  std::string line;
  s = peer.say("bye");
  if (s.ok()) s = peer.hear(&line);
  if (s.ok() && line != "bye") s = ProtocolError("server answered '" + line + "' to bye");
  if (!s.ok()) return fail("bye", s);
  (void)ep->dereg(mr);
  return 0;
}

}  // namespace tcpx::soak
