// DescService: what makes UCCL's newer descriptor calls (register_memory,
// get_serialized_descs, transfer) work over TCPX.
//
// UCCL's descriptors carry RDMA keys, so its initiator reads and writes a
// remote buffer without the target doing anything. A TCPX transfer needs a
// FIFO item that the target's engine made with advertise() for that very
// connection. So transfer() asks the peer for them in one round trip on the
// connection's message channel (Endpoint::send_message), and each side's
// message service on the connection (Endpoint::serve_messages: the engine
// runs it on its progress path, no thread per connection) answers such
// requests (find_mr + advertise) and routes the replies to the waiting
// transfer() call. The service touches no Python object and never takes the
// GIL: it runs on engine threads, or on any thread that drives progress.
#ifndef TCPX_PY_UCCL_DESCS_H_
#define TCPX_PY_UCCL_DESCS_H_

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "py_endpoint.h"

namespace tcpx_py {

class DescService {
 public:
  explicit DescService(std::shared_ptr<tcpx::Endpoint> ep);
  ~DescService();  // stop()
  // Joins the passive-accept thread; pending requests fail. The connections'
  // services keep answering the peers until the endpoint closes.
  void stop();

  // Answers the peer's requests on conn from now on (installs the message
  // service; requests that arrived before are answered first).
  void serve(tcpx::ConnId conn);
  // Accepts connections in the background; each is served and reported.
  void start_passive_accept(std::function<void(tcpx::ConnId)> on_conn);

  // With the GIL held: the peer's FIFO items for its regions, in order.
  // Interruptible; fails after timeout_ms.
  tcpx::Status request_fifos(tcpx::ConnId conn, const std::vector<Region>& remote,
                             int timeout_ms, std::vector<tcpx::FifoItem>* out);

 private:
  // The requests awaiting a reply (uccl_descs.cc). Shared with the
  // connections' services, which the engine owns and may run, and destroy,
  // after this object is gone.
  struct Pending;

  std::shared_ptr<tcpx::Endpoint> ep_;
  std::shared_ptr<Pending> pending_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;  // threads_
  std::vector<std::thread> threads_;  // passive accept (one per endpoint)
};

}  // namespace tcpx_py

#endif  // TCPX_PY_UCCL_DESCS_H_
