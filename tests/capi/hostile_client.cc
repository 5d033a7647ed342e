// Connects to a C API engine with a bare tcpx::Endpoint and sends one
// malformed C API message, then reports whether the target closed that
// connection ("CLOSED") or left it open ("OPEN") within 10 seconds.
// Usage: capi_hostile_client <ip:port?gpu> zero-count|huge-count|short|bad-magic|unknown-type|garbage
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tcpx/endpoint.h"

namespace {

void put32(std::vector<uint8_t>& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}

// Header as src/capi/wire.h lays it out: magic, version, type, reserved, seq,
// base, count.
std::vector<uint8_t> header(uint32_t magic, uint8_t type, uint32_t count) {
  std::vector<uint8_t> b;
  put32(b, magic);
  b.push_back(1);
  b.push_back(type);
  b.push_back(0);
  b.push_back(0);
  put32(b, 1);
  put32(b, 0);
  put32(b, count);
  return b;
}

std::vector<uint8_t> message_for(const std::string& mode) {
  const uint32_t kMagic = 0x55434150;
  if (mode == "zero-count") return header(kMagic, 1, 0);
  if (mode == "huge-count") {
    auto b = header(kMagic, 1, 0xFFFFFFFFu);
    b.resize(b.size() + 24, 0);  // one item's worth, claims four billion
    return b;
  }
  if (mode == "short") {
    auto b = header(kMagic, 1, 2);
    b.resize(b.size() + 24 + 5, 0);  // 1.2 items
    return b;
  }
  if (mode == "bad-magic") {
    auto b = header(0xDEADBEEF, 1, 1);
    b.resize(b.size() + 24, 0);
    return b;
  }
  if (mode == "unknown-type") {
    auto b = header(kMagic, 9, 1);
    b.resize(b.size() + 24, 0);
    return b;
  }
  return {1, 2, 3};  // garbage shorter than a header
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <ip:port?gpu> <mode>\n", argv[0]);
    return 2;
  }
  setenv("TCPX_LISTEN_ADDR", "127.0.0.1", 0);
  tcpx::Config config;
  tcpx::Status s = tcpx::Config::from_env(&config);
  std::unique_ptr<tcpx::Endpoint> ep;
  if (s.ok()) s = tcpx::Endpoint::create(0, config, &ep);
  tcpx::PeerInfo peer;
  if (s.ok()) s = tcpx::Endpoint::parse_metadata_string(argv[1], &peer);
  tcpx::ConnId conn = 0;
  if (s.ok()) s = ep->connect(peer, &conn);
  if (s.ok()) {
    auto msg = message_for(argv[2]);
    s = ep->send_message(conn, msg.data(), msg.size());
  }
  if (!s.ok()) {
    std::printf("ERROR %s\n", s.to_string().c_str());
    return 1;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::vector<uint8_t> reply;
  while (std::chrono::steady_clock::now() < deadline) {
    s = ep->recv_message(conn, &reply, 100);
    if (s.code() == tcpx::StatusCode::kTimedOut) continue;
    if (!s.ok()) {
      std::printf("CLOSED %s\n", s.to_string().c_str());
      return 0;
    }
    std::printf("REPLY %zu bytes\n", reply.size());  // must not happen
    return 1;
  }
  std::printf("OPEN\n");
  return 1;
}
