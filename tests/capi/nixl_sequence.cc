#include "nixl_sequence.h"

#include <chrono>
#include <cstring>
#include <thread>

namespace capi_test {

SequenceResult run_nixl_sequence(uccl_conn_t* conn, bool is_read,
                                 const std::vector<Descriptor>& descs,
                                 const std::string& agent_name,
                                 const std::string& notif_msg, int timeout_ms) {
  SequenceResult r;
  // ---- prepXfer -------------------------------------------------------------
  std::vector<md_t> mds;
  for (const auto& d : descs) {
    md_t md;
    std::memset(&md, 0, sizeof(md));
    md.op = is_read ? UCCL_READ : UCCL_WRITE;
    md.data.tx_data.data_ptr = d.remote;
    md.data.tx_data.data_size = d.size;
    mds.push_back(md);
  }
  int rc = uccl_engine_send_tx_md_vector(conn, mds.data(), mds.size());
  if (rc < 0) {
    r.error = "send_tx_md_vector returned " + std::to_string(rc);
    return r;
  }
  std::vector<std::vector<char>> fifo(descs.size(), std::vector<char>(FIFO_ITEM_SIZE));
  if (is_read) {
    for (size_t i = 0; i < descs.size(); i++) {
      char fifo_item[FIFO_ITEM_SIZE];
      int retry_count = 0;
      const int max_retries = 5;
      do {
        rc = uccl_engine_get_fifo_item(conn, static_cast<int>(i), &fifo_item);
        if (rc == 0) {
          std::memcpy(fifo[i].data(), fifo_item, FIFO_ITEM_SIZE);
          break;
        }
        retry_count++;
        if (retry_count < max_retries) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      } while (retry_count < max_retries);
      if (rc != 0) {
        r.failed_fifo_item = static_cast<int>(i);
        r.fifo_rc = rc;
        r.error = "FIFO item " + std::to_string(i) + " not available after 5 tries (rc " +
                  std::to_string(rc) + ")";
        return r;
      }
    }
  }
  // ---- postXfer -------------------------------------------------------------
  for (size_t i = 0; i < descs.size(); i++) {
    uint64_t transfer_id = 0;
    if (is_read)
      rc = uccl_engine_read(conn, descs[i].local_mr, descs[i].local, descs[i].size,
                            fifo[i].data(), &transfer_id);
    else
      rc = uccl_engine_write(conn, descs[i].local_mr, descs[i].local, descs[i].size,
                             &transfer_id);
    if (rc != 0) {
      r.error = std::string(is_read ? "read" : "write") + " of descriptor " + std::to_string(i) +
                " returned " + std::to_string(rc);
      return r;
    }
    r.transfer_ids.push_back(transfer_id);
  }
  // ---- checkXfer (polled like NIXL's progress loop) ---------------------------
  std::vector<uint64_t> completed;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    bool all_done = true;
    for (uint64_t id : r.transfer_ids) {
      bool seen = false;
      for (uint64_t c : completed) seen = seen || c == id;
      if (seen) continue;
      int is_done = uccl_engine_xfer_status(conn, id);
      if (is_done) {
        completed.push_back(id);
      } else {
        all_done = false;
        break;
      }
    }
    if (all_done) break;
    if (std::chrono::steady_clock::now() > deadline) {
      for (uint64_t id : r.transfer_ids) {
        char msg[256];
        int res = uccl_engine_xfer_result(conn, id, msg, sizeof(msg));
        if (res != 0) {
          r.error = "transfer " + std::to_string(id) + " not done: " + std::to_string(res) +
                    " " + msg;
          return r;
        }
      }
      r.error = "checkXfer timed out";
      return r;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  if (!notif_msg.empty()) {
    notify_msg_t notify_msg = {};
    std::strncpy(notify_msg.name, agent_name.c_str(), sizeof(notify_msg.name) - 1);
    std::strncpy(notify_msg.msg, notif_msg.c_str(), sizeof(notify_msg.msg) - 1);
    rc = uccl_engine_send_notif(conn, &notify_msg);
    if (rc < 0) {
      r.error = "send_notif returned " + std::to_string(rc);
      return r;
    }
  }
  r.ok = true;
  return r;
}

}  // namespace capi_test
