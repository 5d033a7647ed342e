// Replays NIXL's UCCL backend (ai-dynamo/nixl src/plugins/uccl, the era of
// uccl_engine_create(gpu, cpus, in_python)) call for call: prepXfer sends one
// md vector and, for READ, polls get_fifo_item(conn, i) 5 times 1 ms apart
// per item; postXfer issues read/write per descriptor in order; checkXfer
// polls xfer_status per id in order, and sends the notification once all are
// done. The only deliberate difference: the FIFO item is kept per descriptor
// (NIXL keeps one per local registration, which aliases when several
// descriptors share a registration).
#ifndef TCPX_TESTS_CAPI_NIXL_SEQUENCE_H_
#define TCPX_TESTS_CAPI_NIXL_SEQUENCE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "uccl_engine.h"

namespace capi_test {

struct Descriptor {
  uccl_mr_t* local_mr = nullptr;
  void* local = nullptr;     // inside local_mr
  uint64_t remote = 0;       // address inside a buffer the peer registered
  size_t size = 0;
};

struct SequenceResult {
  bool ok = false;
  std::string error;          // what went wrong, for the test's message
  int failed_fifo_item = -1;  // index whose FIFO item did not come in 5 tries
  int fifo_rc = 0;
  std::vector<uint64_t> transfer_ids;
};

// Runs prepXfer + postXfer + checkXfer (+ notification when notif_msg is
// non-empty). timeout_ms bounds the checkXfer polling.
SequenceResult run_nixl_sequence(uccl_conn_t* conn, bool is_read,
                                 const std::vector<Descriptor>& descs,
                                 const std::string& agent_name,
                                 const std::string& notif_msg, int timeout_ms);

}  // namespace capi_test

#endif  // TCPX_TESTS_CAPI_NIXL_SEQUENCE_H_
