// Compile check: uccl_engine.h as NIXL's C++17 code includes it, with NIXL's
// own FIFO_ITEM_SIZE definition after it (an identical redefinition).
#include <vector>

#include "uccl_engine.h"
#define FIFO_ITEM_SIZE 64

static_assert(sizeof(notify_msg_t) == 128, "notify_msg_t is two 64-byte strings");
static_assert(sizeof(tx_msg_t) == 16, "tx_msg_t is data_ptr + data_size");

std::vector<notify_msg_t> header_cxx17_probe() { return uccl_engine_get_notifs(); }

// The call expressions of NIXL's uccl_backend.cpp, with its argument types
// (size_t indices and sizes, char[64] FIFO buffers, void* addresses, an int
// read from xfer_status), so a signature change that would break NIXL fails
// to compile here. Never called.
int nixl_shaped_calls(uccl_engine_t* engine, uccl_conn_t* conn, uccl_mr_t* mr, void* addr,
                      size_t len, size_t i, char (&fifo_data)[FIFO_ITEM_SIZE]) {
  size_t dev_idx = 0, num_cpus = 4;
  int in_python = 0;
  uccl_engine_t* e = uccl_engine_create(dev_idx, num_cpus, (in_python == 1));
  char* metadata = nullptr;
  int result = uccl_engine_get_metadata(e, &metadata);
  delete[] metadata;
  char ip_buf[256];
  int remote_gpu_idx;
  uccl_conn_t* c = uccl_engine_accept(engine, ip_buf, sizeof(ip_buf), &remote_gpu_idx);
  uccl_engine_start_listener(c);
  char* ip_addr = ip_buf;
  int port = 1, gpu_index = 0;
  c = uccl_engine_connect(engine, ip_addr, gpu_index, port);
  uccl_mr_t* m = uccl_engine_reg(engine, reinterpret_cast<uint64_t>(addr), len);
  std::vector<md_t> md_vector(1);
  result = uccl_engine_send_tx_md_vector(conn, md_vector.data(), md_vector.size());
  char fifo_item[FIFO_ITEM_SIZE];
  result = uccl_engine_get_fifo_item(conn, i, &fifo_item);
  uint64_t transfer_id = 0;
  result = uccl_engine_read(conn, mr, addr, len, fifo_data, &transfer_id);
  result = uccl_engine_write(conn, mr, addr, len, &transfer_id);
  int is_done = uccl_engine_xfer_status(conn, transfer_id);
  notify_msg_t notify_msg = {};
  result = uccl_engine_send_notif(conn, &notify_msg);
  std::vector<notify_msg_t> notify_msgs = uccl_engine_get_notifs();
  uccl_engine_mr_destroy(m);
  uccl_engine_conn_destroy(c);
  uccl_engine_destroy(e);
  return result + is_done + static_cast<int>(notify_msgs.size());
}
