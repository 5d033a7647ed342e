// DescService: what makes UCCL's newer descriptor calls (register_memory,
// get_serialized_descs, transfer) work over TCPX.
//
// UCCL's descriptors carry RDMA keys, so its initiator reads and writes a
// remote buffer without the target doing anything. A TCPX transfer needs a
// FIFO item that the target's engine made with advertise() for that very
// connection. So transfer() asks the peer for them in one round trip on the
// connection's message channel (Endpoint::send_message), and a thread per
// connection on each side answers such requests (find_mr + advertise) and
// routes the replies to the waiting transfer() call.
#ifndef TCPX_PY_UCCL_DESCS_H_
#define TCPX_PY_UCCL_DESCS_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "py_endpoint.h"

namespace tcpx_py {

class DescService {
 public:
  explicit DescService(std::shared_ptr<tcpx::Endpoint> ep);
  ~DescService();  // stop()
  // Stops and joins every thread; pending requests fail.
  void stop();

  // Answers the peer's requests on conn from now on.
  void serve(tcpx::ConnId conn);
  // Accepts connections in the background; each is served and reported.
  void start_passive_accept(std::function<void(tcpx::ConnId)> on_conn);

  // With the GIL held: the peer's FIFO items for its regions, in order.
  // Interruptible; fails after timeout_ms.
  tcpx::Status request_fifos(tcpx::ConnId conn, const std::vector<Region>& remote,
                             int timeout_ms, std::vector<tcpx::FifoItem>* out);

 private:
  struct Reply {
    tcpx::ConnId conn = 0;
    bool done = false;
    tcpx::Status status;
    std::vector<tcpx::FifoItem> items;
  };
  void serve_loop(tcpx::ConnId conn);
  void answer(tcpx::ConnId conn, const std::vector<uint8_t>& request);
  void deliver(const std::vector<uint8_t>& reply);
  // Every pending request, or those on one connection.
  void fail_pending(std::optional<tcpx::ConnId> conn, const tcpx::Status& why);

  std::shared_ptr<tcpx::Endpoint> ep_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t next_request_ = 1;
  std::map<uint64_t, Reply> pending_;
  std::vector<std::thread> threads_;
};

}  // namespace tcpx_py

#endif  // TCPX_PY_UCCL_DESCS_H_
