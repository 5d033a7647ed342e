// UcclEndpoint: the object behind uccl.p2p.Endpoint. UCCL's conventions on
// top of PyEndpoint: ok flags instead of exceptions (failures are logged on
// the "uccl.p2p" logger), one transfer id for a vector of two-sided
// transfers, and the port-per-GPU rule behind remote_port=-1.
#ifndef TCPX_PY_UCCL_ENDPOINT_H_
#define TCPX_PY_UCCL_ENDPOINT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "py_endpoint.h"

namespace tcpx_py {

class DescService;  // uccl_descs.cc: the newer register_memory/transfer calls

class UcclEndpoint {
 public:
  UcclEndpoint(int local_gpu_idx, int num_cpus);
  ~UcclEndpoint();

  PyEndpoint& ep() { return *ep_; }
  int local_gpu_idx() const { return local_gpu_idx_; }
  // TCPX_LISTEN_PORT when set: the endpoint listens on base + its GPU index
  // and connect(remote_port=-1) dials base + remote GPU index. 0 if unset.
  int base_port() const { return base_port_; }

  // Ids from sendv_async/recvv_async name a group of engine transfers. They
  // have the top bit set, which engine ids (a counter) never reach.
  static constexpr uint64_t kGroupBit = uint64_t{1} << 63;
  uint64_t add_group(std::vector<tcpx::XferId> ids);
  // UCCL's poll_async: (ok, is_done). A failed transfer is (false, true).
  std::pair<bool, bool> poll(uint64_t transfer_id);

  // Created on first use by the newer calls, or by start_passive_accept.
  DescService& descs();
  // Called for every connection this endpoint makes or accepts, so that the
  // peer's transfer() calls over it are answered.
  void on_new_connection(tcpx::ConnId conn);
  // add_remote_endpoint connects once per metadata blob.
  std::optional<tcpx::ConnId> remote_conn(const std::string& metadata);
  void remember_remote(const std::string& metadata, tcpx::ConnId conn);
  void close();

 private:
  struct Group {
    std::vector<tcpx::XferId> ids;
    size_t next = 0;  // ids before this one are final
    tcpx::Status first;
  };

  std::shared_ptr<PyEndpoint> ep_;
  int local_gpu_idx_;
  int base_port_ = 0;
  std::mutex mu_;
  uint64_t next_group_ = 1;
  std::map<uint64_t, Group> groups_;
  std::vector<tcpx::ConnId> conns_;
  std::map<std::string, tcpx::ConnId> remotes_;
  std::unique_ptr<DescService> descs_;
};

// Logs "<what> failed: <status>" on the uccl.p2p logger; returns s.ok().
bool ok_or_log(const char* what, const tcpx::Status& s);

}  // namespace tcpx_py

#endif  // TCPX_PY_UCCL_ENDPOINT_H_
