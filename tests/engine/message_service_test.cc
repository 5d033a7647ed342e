// Endpoint::serve_messages: a connection's messages answered on the progress
// path (the C API's md/FIFO service runs so). Two endpoints in one process:
// replies leave from inside the service, messages that arrived before it was
// installed reach it first, an error from it fails the connection, on_closed
// is called once, and what the service must not do is refused, not deadlocked.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

using namespace tcpx;
using namespace tcpx::test;

namespace {

std::string text(const std::vector<uint8_t>& m) { return std::string(m.begin(), m.end()); }

// What a service saw, for the test thread to wait on.
struct Seen {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> messages;
  int closed = 0;
  Status why;

  void message(std::string m) {
    std::lock_guard<std::mutex> lk(mu);
    messages.push_back(std::move(m));
    cv.notify_all();
  }
  void close(const Status& s) {
    std::lock_guard<std::mutex> lk(mu);
    ++closed;
    why = s;
    cv.notify_all();
  }
  bool wait_closed(int ms) {
    std::unique_lock<std::mutex> lk(mu);
    return cv.wait_for(lk, std::chrono::milliseconds(ms), [&] { return closed > 0; });
  }
};

struct Pair {
  std::unique_ptr<Endpoint> a, b;
  ConnId ca = 0, cb = 0;  // a's id of the connection, b's id of it
  void open() {
    set_test_env(false);
    ASSERT_TRUE(make_endpoint(&a).ok());
    ASSERT_TRUE(make_endpoint(&b).ok());
    ASSERT_TRUE(b->connect(a->local_info(), &cb).ok());
    ASSERT_TRUE(a->accept(&ca, nullptr, 5000).ok());
  }
};

TEST(MessageService, RepliesFromTheServiceAndGetsWhatArrivedBefore) {
  Pair p;
  ASSERT_NO_FATAL_FAILURE(p.open());
  ASSERT_TRUE(p.b->send_message(p.cb, "early", 5).ok());
  // Let it arrive and queue before the service exists.
  std::vector<uint8_t> unused;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));

  Seen seen;
  std::vector<uint8_t> buf(64);
  MrId mr = 0;
  ASSERT_TRUE(p.a->reg(buf.data(), buf.size(), &mr).ok());
  Endpoint* a = p.a.get();
  ConnId ca = p.ca;
  std::atomic<int> refused{0};
  Endpoint::MessageService svc;
  svc.on_message = [&, a, ca](std::vector<uint8_t>&& m) {
    // What a service must not do is refused at once, never a self-deadlock.
    if (a->dereg(mr).code() == StatusCode::kBusy) ++refused;
    if (a->poll_async(987654).code() == StatusCode::kNotFound) ++refused;
    std::string reply = "re:" + text(m);
    seen.message(text(m));
    return a->send_message(ca, reply.data(), reply.size());
  };
  svc.on_closed = [&](const Status& s) { seen.close(s); };
  ASSERT_TRUE(p.a->serve_messages(p.ca, std::move(svc)).ok());

  for (int i = 0; i < 20; ++i) {
    std::string m = "m" + std::to_string(i);
    ASSERT_TRUE(p.b->send_message(p.cb, m.data(), m.size()).ok());
  }
  std::vector<uint8_t> m;
  ASSERT_TRUE(p.b->recv_message(p.cb, &m, 5000).ok());
  EXPECT_EQ(text(m), "re:early");
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(p.b->recv_message(p.cb, &m, 5000).ok());
    EXPECT_EQ(text(m), "re:m" + std::to_string(i));
  }
  // Served, not queued: nothing is left for recv_message on a's side.
  EXPECT_EQ(p.a->recv_message(p.ca, &unused, 0).code(), StatusCode::kTimedOut);
  EXPECT_EQ(refused.load(), 2 * 21);
  EXPECT_TRUE(p.a->dereg(mr).ok());  // allowed off the progress path

  Endpoint::MessageService again;
  again.on_message = [](std::vector<uint8_t>&&) { return Status::Ok(); };
  EXPECT_EQ(p.a->serve_messages(p.ca, again).code(), StatusCode::kBusy);
  EXPECT_EQ(p.a->serve_messages(4242, again).code(), StatusCode::kNotFound);
  EXPECT_EQ(p.a->serve_messages(p.ca, Endpoint::MessageService{}).code(), StatusCode::kInvalidArgument);

  // The peer goes: on_closed once, with PEER_CLOSED.
  ASSERT_TRUE(p.b->close_connection(p.cb).ok());
  ASSERT_TRUE(seen.wait_closed(5000));
  EXPECT_EQ(seen.why.code(), StatusCode::kPeerClosed);
  p.b.reset();
  p.a.reset();
  EXPECT_EQ(seen.closed, 1);
}

TEST(MessageService, AnErrorFromTheServiceFailsOnlyThatConnection) {
  Pair p;
  ASSERT_NO_FATAL_FAILURE(p.open());
  ConnId other_b = 0, other_a = 0;
  ASSERT_TRUE(p.b->connect(p.a->local_info(), &other_b).ok());
  ASSERT_TRUE(p.a->accept(&other_a, nullptr, 5000).ok());

  Seen seen;
  Endpoint::MessageService svc;
  svc.on_message = [&](std::vector<uint8_t>&& m) {
    seen.message(text(m));
    return text(m) == "bad" ? ProtocolError("service refuses 'bad'") : Status::Ok();
  };
  svc.on_closed = [&](const Status& s) { seen.close(s); };
  ASSERT_TRUE(p.a->serve_messages(p.ca, std::move(svc)).ok());
  ASSERT_TRUE(p.b->send_message(p.cb, "good", 4).ok());
  ASSERT_TRUE(p.b->send_message(p.cb, "bad", 3).ok());
  // The peer may already have closed after "bad": then this send says so.
  Status never = p.b->send_message(p.cb, "never", 5);
  EXPECT_TRUE(never.ok() || never.code() == StatusCode::kPeerClosed) << never.to_string();
  ASSERT_TRUE(seen.wait_closed(5000));
  EXPECT_EQ(seen.why.code(), StatusCode::kProtocolError);
  EXPECT_NE(seen.why.message().find("service refuses"), std::string::npos) << seen.why.to_string();
  {
    std::lock_guard<std::mutex> lk(seen.mu);
    EXPECT_EQ(seen.messages, (std::vector<std::string>{"good", "bad"}));
  }
  // The peer sees the connection end; the other connection still works.
  std::vector<uint8_t> m;
  EXPECT_EQ(p.b->recv_message(p.cb, &m, 5000).code(), StatusCode::kPeerClosed);
  EXPECT_EQ(p.a->send_message(p.ca, "x", 1).code(), StatusCode::kProtocolError);
  ASSERT_TRUE(p.b->send_message(other_b, "still", 5).ok());
  ASSERT_TRUE(p.a->recv_message(other_a, &m, 5000).ok());
  EXPECT_EQ(text(m), "still");
}

TEST(MessageService, ClosingFromTheServiceIsDeferredAndAFailedConnectionIsToldAtOnce) {
  Pair p;
  ASSERT_NO_FATAL_FAILURE(p.open());
  Seen seen;
  Endpoint* a = p.a.get();
  ConnId ca = p.ca;
  Endpoint::MessageService svc;
  svc.on_message = [&, a, ca](std::vector<uint8_t>&& m) {
    seen.message(text(m));
    return a->close_connection(ca);  // inside the pass reading ca
  };
  svc.on_closed = [&](const Status& s) { seen.close(s); };
  ASSERT_TRUE(p.a->serve_messages(p.ca, std::move(svc)).ok());
  ASSERT_TRUE(p.b->send_message(p.cb, "bye", 3).ok());
  ASSERT_TRUE(seen.wait_closed(5000));
  EXPECT_EQ(seen.why.code(), StatusCode::kClosed);  // a closed it itself
  std::vector<uint8_t> m;
  EXPECT_EQ(p.b->recv_message(p.cb, &m, 5000).code(), StatusCode::kPeerClosed);

  // A service installed on a connection that already failed hears so at once.
  ConnId cb2 = 0, ca2 = 0;
  ASSERT_TRUE(p.b->connect(p.a->local_info(), &cb2).ok());
  ASSERT_TRUE(p.a->accept(&ca2, nullptr, 5000).ok());
  ASSERT_TRUE(p.b->close_connection(cb2).ok());
  EXPECT_EQ(p.a->recv_message(ca2, &m, 5000).code(), StatusCode::kPeerClosed);
  Seen late;
  Endpoint::MessageService svc2;
  svc2.on_message = [](std::vector<uint8_t>&&) { return Status::Ok(); };
  svc2.on_closed = [&](const Status& s) { late.close(s); };
  ASSERT_TRUE(p.a->serve_messages(ca2, std::move(svc2)).ok());
  EXPECT_EQ(late.closed, 1);
  EXPECT_EQ(late.why.code(), StatusCode::kPeerClosed);
}

}  // namespace
