#include "agent_fixture.h"

#include <cstdlib>
#include <cstring>
#include <sstream>

#include "support/status_assert.h"

namespace capi_test {

Layout make_layout(const std::vector<size_t>& sizes, int regs) {
  Layout l;
  l.sizes = sizes;
  l.reg_sizes.assign(static_cast<size_t>(regs), 0);
  for (size_t i = 0; i < sizes.size(); ++i) {
    int r = static_cast<int>(i % static_cast<size_t>(regs));
    size_t& end = l.reg_sizes[static_cast<size_t>(r)];
    end += 64 + (i % 3) * 8;  // gaps and odd alignments between descriptors
    l.reg_of.push_back(r);
    l.offsets.push_back(end);
    end += sizes[i];
  }
  for (auto& s : l.reg_sizes) s += 64;
  return l;
}

namespace {

void accept_loop(uccl_engine_t* engine, std::mutex* mu, std::vector<uccl_conn_t*>* out) {
  for (;;) {
    char ip[256];
    int gpu = -1;
    uccl_conn_t* conn = uccl_engine_accept(engine, ip, sizeof(ip), &gpu);
    if (conn == nullptr) continue;
    uccl_engine_start_listener(conn);
    std::lock_guard<std::mutex> lk(*mu);
    out->push_back(conn);
  }
}

bool split_meta(const std::string& m, std::string* ip, int* port, int* gpu) {
  size_t colon = m.find(':'), q = m.find('?', colon == std::string::npos ? 0 : colon);
  if (colon == std::string::npos || q == std::string::npos) return false;
  *ip = m.substr(0, colon);
  *port = std::atoi(m.substr(colon + 1, q - colon - 1).c_str());
  *gpu = std::atoi(m.substr(q + 1).c_str());
  return true;
}

}  // namespace

std::string helper_path(const char* name) { return std::string(CAPI_TEST_BIN_DIR) + "/" + name; }

void AgentFixture::SetUp() {
  setenv("TCPX_LISTEN_ADDR", "127.0.0.1", 0);
  ASSERT_OK(peer_.spawn({helper_path("capi_peer")}, tcpx::test::ChildOptions::line_protocol()));
  std::string line;
  ASSERT_OK(peer_.expect_line("META ", &line, 30000)) << "peer did not start";
  peer_meta_ = line.substr(5);
  engine_ = uccl_engine_create(0, 4, false);
  ASSERT_NE(engine_, nullptr);
  // Detached like NIXL's listener thread: it parks when the engine dies.
  std::thread(accept_loop, engine_, &accepted_mu_, &accepted_).detach();
  conn_ = connect_to_peer();
  ASSERT_NE(conn_, nullptr);
}

uccl_conn_t* AgentFixture::connect_to_peer() {
  std::string ip;
  int port = 0, gpu = 0;
  if (!split_meta(peer_meta_, &ip, &port, &gpu)) return nullptr;
  uccl_conn_t* c = uccl_engine_connect(engine_, ip.c_str(), gpu, port);
  if (c != nullptr) uccl_engine_start_listener(c);
  return c;
}

void AgentFixture::TearDown() {
  if (peer_.running()) {
    (void)peer_.write_line("EXIT");
    EXPECT_EQ(peer_.wait_exit(20000), 0) << "peer did not exit cleanly";
  }
  for (auto* c : extra_conns_) uccl_engine_conn_destroy(c);
  if (conn_ != nullptr) uccl_engine_conn_destroy(conn_);
  {
    std::lock_guard<std::mutex> lk(accepted_mu_);
    for (auto* c : accepted_) uccl_engine_conn_destroy(c);
    accepted_.clear();
  }
  for (auto& b : locals_) {
    uccl_engine_mr_destroy(b->mr);
    free(b->data);
  }
  locals_.clear();
  // The accept thread is parked on the destroyed engine (compatibility rule).
  uccl_engine_destroy(engine_);
}

LocalBuffer* AgentFixture::local_buffer(size_t size, int64_t seed) {
  auto b = std::make_unique<LocalBuffer>();
  b->size = size;
  b->data = static_cast<uint8_t*>(aligned_alloc(4096, (size + 4095) / 4096 * 4096));
  if (seed < 0)
    std::memset(b->data, 0xEE, size);
  else
    fill_pattern(b->data, size, static_cast<uint32_t>(seed));
  b->mr = uccl_engine_reg(engine_, reinterpret_cast<uintptr_t>(b->data), size);
  EXPECT_NE(b->mr, nullptr);
  locals_.push_back(std::move(b));
  return locals_.back().get();
}

uint64_t AgentFixture::peer_buffer(int k, size_t size, uint32_t seed) {
  (void)peer_.write_line("REG " + std::to_string(k) + " " + std::to_string(size) + " " +
             std::to_string(seed));
  std::string line;
  if (!peer_.expect_line("BUF ", &line, 30000).ok()) return 0;
  std::istringstream in(line.substr(4));
  int kk;
  uint64_t addr;
  in >> kk >> addr;
  return kk == k ? addr : 0;
}

bool AgentFixture::peer_checks(const std::vector<std::string>& lines, std::string* verdict) {
  std::string cmd = "CHECKS " + std::to_string(lines.size());
  for (const auto& l : lines) cmd += "\n" + l;
  (void)peer_.write_line(cmd);
  std::string line;
  if (!peer_.read_line(&line, 60000).ok()) {
    *verdict = "no answer";
    return false;
  }
  *verdict = line;
  return line == "OK";
}

std::vector<std::string> AgentFixture::peer_notifs(size_t n, int ms) {
  (void)peer_.write_line("NOTIFS " + std::to_string(n) + " " + std::to_string(ms));
  std::vector<std::string> out;
  std::string line;
  while (peer_.read_line(&line, ms + 10000).ok()) {
    if (line.rfind("NOTIFS_END", 0) == 0) break;
    if (line.rfind("NOTIF ", 0) == 0) out.push_back(line.substr(6));
  }
  return out;
}

}  // namespace capi_test
