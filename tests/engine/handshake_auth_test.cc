// Handshake authentication (Config::auth_key, engine/auth.h): the right key
// connects and moves checked data; a wrong or one-sided key is refused with
// the same specific reason on both sides and the acceptor goes on serving; a
// peer that has not proven the key gets no plugin comm and no thread.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "engine/auth.h"
#include "engine/control_channel.h"
#include "engine/handshake.h"
#include "engine/wire.h"
#include "process_usage.h"
#include "support/status_assert.h"
#include "test_util.h"

using namespace tcpx;
using namespace tcpx::test;

namespace {

const std::string kKey = "correct horse battery staple 42";
const std::string kOtherKey = "a different key, just as long";

Config with_key(const std::string& key) {
  Config c = loopback_config();
  c.auth_key = key;
  return c;
}

// One transfer of n pattern bytes from -> to, checked byte for byte.
void expect_checked_transfer(Endpoint& from, ConnId cf, Endpoint& to, ConnId ct, size_t n, uint64_t seed) {
  std::vector<uint8_t> out(n), in(n);
  fill_pattern(out.data(), n, seed);
  MrId mo, mi;
  ASSERT_TRUE(from.reg(out.data(), n, &mo).ok());
  ASSERT_TRUE(to.reg(in.data(), n, &mi).ok());
  XferId x;
  ASSERT_TRUE(to.recv_async(ct, mi, in.data(), n, &x).ok());
  Status s = from.send(cf, mo, out.data(), n);
  ASSERT_TRUE(s.ok()) << s.to_string();
  s = to.wait(x, 10000);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(check_pattern(in.data(), n, seed), SIZE_MAX);
  EXPECT_TRUE(from.dereg(mo).ok());
  EXPECT_TRUE(to.dereg(mi).ok());
}

// The acceptor records its failure when its state machine ends, which can
// be a moment after the connector has its answer.
std::string handshake_error_mentioning(const Endpoint& a, const std::string& text) {
  std::string last;
  for (int i = 0; i < 300; ++i) {
    last = a.last_handshake_error().to_string();
    if (last.find(text) != std::string::npos) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return last;
}

// A connect that must be refused for `reason`, on both sides, with nothing
// surfacing from accept() and no thread left behind.
void expect_refused(Endpoint& connector, Endpoint& acceptor, const std::string& reason) {
  long threads_before = ProcessUsage::now().threads;
  ConnId c;
  Status s = connector.connect(acceptor.local_info(), &c);
  EXPECT_EQ(s.code(), StatusCode::kProtocolError) << s.to_string();
  EXPECT_NE(s.message().find(reason), std::string::npos) << s.to_string();
  std::string hs = handshake_error_mentioning(acceptor, reason);
  EXPECT_NE(hs.find(reason), std::string::npos) << hs;
  EXPECT_EQ(hs.rfind("PROTOCOL_ERROR", 0), 0u) << hs;
  PeerInfo peer;
  EXPECT_EQ(acceptor.accept(&c, &peer, 200).code(), StatusCode::kTimedOut);
  EXPECT_EQ(ProcessUsage::now().threads, threads_before);
}

TEST(HandshakeAuth, RightKeyConnectsAndMovesCheckedData) {
  set_test_env(false);
  std::unique_ptr<Endpoint> a, b;
  ASSERT_TRUE(make_endpoint(&a, 0, with_key(kKey)).ok());
  ASSERT_TRUE(make_endpoint(&b, 0, with_key(kKey)).ok());
  ConnId cb, ca;
  Status s = b->connect(a->local_info(), &cb);
  ASSERT_TRUE(s.ok()) << s.to_string();
  ASSERT_TRUE(a->accept(&ca, nullptr, 5000).ok());
  expect_checked_transfer(*b, cb, *a, ca, 3u << 20, 11);  // several chunks on the plugin channels
  expect_checked_transfer(*a, ca, *b, cb, 1000, 12);      // inline on the control connection
  EXPECT_TRUE(a->last_handshake_error().ok()) << a->last_handshake_error().to_string();
}

TEST(HandshakeAuth, WrongKeyRefusedOnBothSidesThenAnHonestPeerIsServed) {
  set_test_env(false);
  std::unique_ptr<Endpoint> a, wrong, honest;
  ASSERT_TRUE(make_endpoint(&a, 0, with_key(kKey)).ok());
  ASSERT_TRUE(make_endpoint(&wrong, 0, with_key(kOtherKey)).ok());
  ASSERT_TRUE(make_endpoint(&honest, 0, with_key(kKey)).ok());
  expect_refused(*wrong, *a, "auth keys (TCPX_AUTH_KEY) differ");
  ConnId ch, ca;
  Status s = honest->connect(a->local_info(), &ch);
  ASSERT_TRUE(s.ok()) << s.to_string();
  ASSERT_TRUE(a->accept(&ca, nullptr, 5000).ok());
  expect_checked_transfer(*honest, ch, *a, ca, 1u << 20, 13);
  // And the refused one, once more, while a connection is live.
  expect_refused(*wrong, *a, "auth keys (TCPX_AUTH_KEY) differ");
  expect_checked_transfer(*a, ca, *honest, ch, 1u << 20, 14);
}

TEST(HandshakeAuth, KeyOnlyOnTheAcceptorRefusedOnBothSides) {
  set_test_env(false);
  std::unique_ptr<Endpoint> a, b;
  ASSERT_TRUE(make_endpoint(&a, 0, with_key(kKey)).ok());
  ASSERT_TRUE(make_endpoint(&b, 0, with_key("")).ok());
  expect_refused(*b, *a, "the accepting endpoint requires an auth key (TCPX_AUTH_KEY) and the connecting endpoint has none");
}

TEST(HandshakeAuth, KeyOnlyOnTheConnectorRefusedOnBothSides) {
  set_test_env(false);
  std::unique_ptr<Endpoint> a, b;
  ASSERT_TRUE(make_endpoint(&a, 0, with_key("")).ok());
  ASSERT_TRUE(make_endpoint(&b, 0, with_key(kKey)).ok());
  expect_refused(*b, *a, "the connecting endpoint has an auth key (TCPX_AUTH_KEY) and the accepting endpoint has none");
}

// The key from the environment, in a second process.
TEST(HandshakeAuth, WrongKeyFromTheEnvironmentAcrossProcesses) {
  set_test_env(false);
  std::unique_ptr<Endpoint> ep;
  ASSERT_TRUE(make_endpoint(&ep, 0, with_key(kKey)).ok());
  ChildProcess peer;
  ASSERT_OK(start_engine_peer(&peer, "accept_only", {}, {"TCPX_AUTH_KEY=" + kOtherKey}));
  uint16_t port = static_cast<uint16_t>(std::stoi(peer.expect("READY ")));
  ConnId c;
  Status s = ep->connect("127.0.0.1", 0, port, &c);
  EXPECT_EQ(s.code(), StatusCode::kProtocolError) << s.to_string();
  EXPECT_NE(s.message().find("auth keys (TCPX_AUTH_KEY) differ"), std::string::npos) << s.message();
  EXPECT_EQ(peer.expect("ACCEPT ").rfind("TIMED_OUT", 0), 0u);
  std::string hs = peer.expect("HS ");
  EXPECT_NE(hs.find("auth keys (TCPX_AUTH_KEY) differ"), std::string::npos) << hs;
}

// A hand-made connector stops after the challenge: the acceptor holds the
// accepted socket and nothing else (the built-in plugin's listen comms are
// sockets too, so one would show), and no thread. A wrong proof is refused.
TEST(HandshakeAuth, NothingIsAllocatedForAPeerBeforeItsProof) {
  using namespace tcpx::engine;
  set_test_env(false);
  std::unique_ptr<Endpoint> a;
  ASSERT_TRUE(make_endpoint(&a, 0, with_key(kKey)).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // threads settled
  ProcessUsage before = ProcessUsage::now();
  int fd = raw_connect(a->local_info().port);
  ASSERT_GE(fd, 0);
  ControlChannel c(fd);
  HelloPayload hello;
  hello.protocol_version = kProtocolVersion;
  hello.self.ip = "127.0.0.1";
  hello.channels = 2;
  hello.handles.resize(2);
  hello.auth = true;
  ASSERT_TRUE(auth::make_nonce(&hello.nonce).ok());
  std::vector<uint8_t> hello_bytes = encode_hello(hello);
  auto deadline = Clock::now() + std::chrono::seconds(5);
  ASSERT_TRUE(c.queue(FrameType::kHello, 0, hello_bytes).ok());
  ASSERT_TRUE(c.flush_until(deadline, nullptr).ok());
  Frame f;
  ASSERT_TRUE(c.read_frame_until(&f, deadline, nullptr).ok());
  ASSERT_EQ(f.type, FrameType::kAuthChallenge);
  auth::Nonce challenge;
  ASSERT_TRUE(decode_auth_bytes(f.payload, "AUTH_CHALLENGE", &challenge).ok());

  ProcessUsage waiting = ProcessUsage::now();
  EXPECT_EQ(waiting.fds, before.fds + 2) << "before: " << before.to_string() << "; waiting: " << waiting.to_string();
  EXPECT_EQ(waiting.threads, before.threads);

  auth::Proof wrong;
  ASSERT_TRUE(auth::prove(kOtherKey, auth::Role::kConnector, challenge, hello.nonce, hello_bytes, &wrong).ok());
  ASSERT_TRUE(c.queue(FrameType::kAuthProof, 0, encode_auth_bytes(wrong)).ok());
  ASSERT_TRUE(c.flush_until(deadline, nullptr).ok());
  ASSERT_TRUE(c.read_frame_until(&f, deadline, nullptr).ok());
  ASSERT_EQ(f.type, FrameType::kReject);
  RejectPayload rj;
  ASSERT_TRUE(decode_reject(f.payload, &rj).ok());
  EXPECT_NE(rj.reason.find("auth keys (TCPX_AUTH_KEY) differ"), std::string::npos) << rj.reason;
  EXPECT_EQ(c.read_frame_until(&f, deadline, nullptr).code(), StatusCode::kPeerClosed);
  EXPECT_EQ(ProcessUsage::now().threads, before.threads);
}

TEST(HandshakeAuth, ProofsDependOnKeyRoleNoncesAndHello) {
  using namespace tcpx::engine;
  auth::Nonce na{}, nc{};
  ASSERT_TRUE(auth::make_nonce(&na).ok());
  ASSERT_TRUE(auth::make_nonce(&nc).ok());
  EXPECT_NE(na, nc);
  std::vector<uint8_t> hello = {1, 2, 3};
  auth::Proof base, again, other;
  ASSERT_TRUE(auth::prove(kKey, auth::Role::kConnector, na, nc, hello, &base).ok());
  ASSERT_TRUE(auth::prove(kKey, auth::Role::kConnector, na, nc, hello, &again).ok());
  EXPECT_TRUE(auth::same_proof(base, again));
  ASSERT_TRUE(auth::prove(kOtherKey, auth::Role::kConnector, na, nc, hello, &other).ok());
  EXPECT_FALSE(auth::same_proof(base, other));
  ASSERT_TRUE(auth::prove(kKey, auth::Role::kAcceptor, na, nc, hello, &other).ok());
  EXPECT_FALSE(auth::same_proof(base, other));
  ASSERT_TRUE(auth::prove(kKey, auth::Role::kConnector, nc, na, hello, &other).ok());
  EXPECT_FALSE(auth::same_proof(base, other));
  ASSERT_TRUE(auth::prove(kKey, auth::Role::kConnector, na, nc, {1, 2, 4}, &other).ok());
  EXPECT_FALSE(auth::same_proof(base, other));
}

TEST(HandshakeAuth, ConfigTakesTheKeyFromTheEnvironmentAndNeverPrintsIt) {
  setenv("TCPX_AUTH_KEY", kKey.c_str(), 1);
  Config c;
  Status s = Config::from_env(&c);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(c.auth_key, kKey);
  EXPECT_EQ(c.describe().find(kKey), std::string::npos) << c.describe();
  EXPECT_NE(c.describe().find("auth_key=(set, 31 bytes)"), std::string::npos) << c.describe();
  setenv("TCPX_AUTH_KEY", "short", 1);
  s = Config::from_env(&c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("TCPX_AUTH_KEY"), std::string::npos) << s.to_string();
  EXPECT_EQ(s.message().find("short"), std::string::npos) << "the key leaked into " << s.to_string();
  unsetenv("TCPX_AUTH_KEY");
  ASSERT_TRUE(Config::from_env(&c).ok());
  EXPECT_TRUE(c.auth_key.empty());
  EXPECT_NE(c.describe().find("auth_key=(off)"), std::string::npos);
  setenv("TCPX_MAX_HANDSHAKES", "0", 1);
  EXPECT_EQ(Config::from_env(&c).code(), StatusCode::kInvalidArgument);
  unsetenv("TCPX_MAX_HANDSHAKES");
}

}  // namespace
