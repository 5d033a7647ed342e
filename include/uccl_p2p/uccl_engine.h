// uccl_engine.h of the newer UCCL engine API (libuccl_p2p.so), implemented
// over tcpx::Endpoint. Signatures are UCCL's p2p/uccl_engine.h as NIXL's
// current UCCL backend calls them: C++ functions (mangled names, std::vector
// by value), uccl_mr_t an integer id, FifoItems by value. The Oct-2025 C API
// (libuccl_engine.so, <prefix>/include/uccl_engine.h) is a separate flavour;
// this header installs to <prefix>/include/uccl_p2p/ so both can coexist.
//
// Return codes: 0 success; negative values are enum uccl_p2p_status errors
// (UCCL's "-1 on failure" callers read any nonzero as failure).
//
// Threading: every function is thread-safe. Each connection's grant service,
// installed by connect/accept (uccl_engine_start_listener is accepted and
// does nothing more), answers the peer's requests, so the target application
// never calls anything for a peer's read or write. The engine runs it on its
// progress path: a connection costs no thread.
//
// What differs from UCCL, on purpose (docs/nixl.md):
//  - FifoItems are capabilities checked by the target (see common.h): a
//    forged, out-of-range or stale item fails that transfer with
//    UCCL_P2P_E_REJECTED; the target never touches memory for it.
//  - No IPC path: uccl_engine_conn_is_local() is false, the IPC calls return
//    -1 (UCCL_P2P_E_UNSUPPORTED) with has_ipc false; every transfer, also to
//    the engine's own address (same_process), goes over the network plugin.
//  - uccl_engine_xfer_status() is a boolean "done": it is true only once the
//    data is in place and false while running AND after a failure (which is
//    logged once); uccl_engine_xfer_result() tells the failure apart.
//  - Handles: connections are owned by their engine; uccl_engine_destroy()
//    closes the ones not destroyed yet, after which they are invalid.
#ifndef UCCL_P2P_UCCL_ENGINE_H_
#define UCCL_P2P_UCCL_ENGINE_H_

#include <stddef.h>
#include <stdint.h>

#include <string>
#include <vector>

#include "common.h"

#define MSG_SIZE 256
#define FIFO_SIZE 64
#define IPC_INFO_SIZE 128

typedef struct uccl_engine uccl_engine_t;
typedef struct uccl_conn uccl_conn_t;
// A registration of one engine; 0 is never a valid id.
typedef uint64_t uccl_mr_t;

enum uccl_p2p_status {
  UCCL_P2P_OK = 0,
  UCCL_P2P_IN_PROGRESS = 1,     // uccl_engine_xfer_result(): not finished yet
  UCCL_P2P_E_INVALID = -1,      // bad argument (null, unknown id, out of range)
  UCCL_P2P_E_TIMEOUT = -2,      // a deadline passed
  UCCL_P2P_E_PEER_CLOSED = -3,  // the remote side went away
  UCCL_P2P_E_PROTOCOL = -4,     // the peer sent something malformed
  UCCL_P2P_E_TRANSPORT = -5,    // network plugin or socket failure
  UCCL_P2P_E_NOT_FOUND = -6,    // unknown transfer id / region / connection
  UCCL_P2P_E_UNSUPPORTED = -7,  // not available here (IPC, two-sided send)
  UCCL_P2P_E_INTERNAL = -8,     // a bug in this library
  UCCL_P2P_E_REJECTED = -9,     // the target refused the FifoItem
  UCCL_P2P_E_CLOSED = -10,      // accept stopped / connection closed locally
  UCCL_P2P_E_CANCELLED = -11    // cancelled by this side
};

// Fixed-size notification: name is a C string, msg a MSG_SIZE-byte blob
// (all MSG_SIZE bytes travel).
typedef struct notify_msg {
  char name[MSG_SIZE];
  char msg[MSG_SIZE];
} notify_msg_t;

// Variable-length notification (each field at most 4096 bytes here).
typedef struct notify_msg_v {
  std::string name;
  std::string msg;
} notify_msg_v_t;

typedef struct md {
  notify_msg_t notify_data;
} md_t;

// ---- Engine ----------------------------------------------------------------
// num_cpus and in_python are accepted and unused. The engine serves GPU index
// 0 (host memory works on any host); settings come from the TCPX_* variables
// (README "Configuration"). NULL on failure, with the reason logged.
uccl_engine_t* uccl_engine_create(int num_cpus, bool in_python);
// Stops accepting, closes every connection still open, frees the engine.
// Call it once no thread is inside uccl_engine_accept() on it any more
// (NIXL main: stop_accept, then join its accept thread, then destroy).
void uccl_engine_destroy(uccl_engine_t* engine);
// "ip:port?gpu" in a new char[] (free with delete[]).
int uccl_engine_get_metadata(uccl_engine_t* engine, char** metadata_str);

// ---- Connections -------------------------------------------------------------
// Synchronous. remote_gpu is the peer's GPU index as a decimal string (the
// part after '?' of its metadata); PCI bus ids are refused. same_process may
// name this engine's own address: the connection then loops back through the
// network plugin like any other.
uccl_conn_t* uccl_engine_connect(uccl_engine_t* engine, char const* ip_addr,
                                 char const* remote_gpu, int remote_port,
                                 bool same_process = false);
// Blocks for the next incoming connection; NULL once uccl_engine_stop_accept()
// was called (also for a call already waiting: it returns within ~20 ms).
uccl_conn_t* uccl_engine_accept(uccl_engine_t* engine, char* ip_addr_buf,
                                size_t ip_addr_buf_len, int* remote_gpu_idx);
void uccl_engine_stop_accept(uccl_engine_t* engine);
// The grant service already runs; kept for UCCL's call sequence. Returns 0.
int uccl_engine_start_listener(uccl_conn_t* conn);
// Closes the connection (its transfers fail) and frees the handle.
void uccl_engine_conn_destroy(uccl_conn_t* conn);
// Always false: there is no same-host shortcut (see above).
bool uccl_engine_conn_is_local(uccl_conn_t* conn);

// ---- Memory ------------------------------------------------------------------
int uccl_engine_reg(uccl_engine_t* engine, uintptr_t data, size_t size,
                    uccl_mr_t& mr_id);
// Deregisters and revokes every FifoItem prepared on it (later requests that
// name them are rejected as stale).
void uccl_engine_mr_destroy(uccl_engine_t* engine, uccl_mr_t mr);
// Makes the FifoItem (64 bytes into fifo_buf) a peer needs to read or write
// [data, data+size), which must lie inside registration mr.
int uccl_engine_prepare_fifo(uccl_engine_t* engine, uccl_mr_t mr,
                             void const* data, size_t size, char* fifo_buf);
// Points an item at [remote_addr, remote_addr+size); the target validates it.
int uccl_engine_update_fifo(FifoItem& fifo_item, uint64_t remote_addr,
                            uint32_t size);
// No IPC: zero the buffer, set *has_ipc false, return UCCL_P2P_E_UNSUPPORTED.
int uccl_engine_get_ipc_info(uccl_engine_t* engine, uintptr_t addr,
                             char* ipc_buf, bool* has_ipc);
int uccl_engine_update_ipc_info(char* ipc_buf, uintptr_t addr,
                                uintptr_t base_addr, size_t size);

// ---- One-sided transfers (non-blocking) ---------------------------------------
// Piece i moves size_v[i] bytes between local [addr_v[i], +size_v[i]) inside
// registration mr_ids[i] and the peer region named by fifo_items[i]. One
// transfer id for all pieces; it fails if any piece fails. ipc_bufs must be
// empty (no IPC path).
int uccl_engine_read(uccl_conn_t* conn, uccl_mr_t mr, void const* data,
                     size_t size, FifoItem fifo_item, uint64_t* transfer_id);
int uccl_engine_write(uccl_conn_t* conn, uccl_mr_t mr, void const* data,
                      size_t size, FifoItem fifo_item, uint64_t* transfer_id);
int uccl_engine_read_vector(uccl_conn_t* conn, std::vector<uccl_mr_t> mr_ids,
                            std::vector<void*> dst_v,
                            std::vector<size_t> size_v,
                            std::vector<FifoItem> fifo_items, int num_iovs,
                            uint64_t* transfer_id,
                            std::vector<char*> ipc_bufs = {});
int uccl_engine_write_vector(uccl_conn_t* conn, std::vector<uccl_mr_t> mr_ids,
                             std::vector<void*> dst_v,
                             std::vector<size_t> size_v,
                             std::vector<FifoItem> fifo_items, int num_iovs,
                             uint64_t* transfer_id,
                             std::vector<char*> ipc_bufs = {});
// True only once the transfer succeeded (the id is then retired).
bool uccl_engine_xfer_status(uccl_conn_t* conn, uint64_t transfer_id);
// Extension: 0 succeeded, UCCL_P2P_IN_PROGRESS, or the negative error. A final
// answer retires the id. why (may be NULL) receives the reason, NUL-terminated.
int uccl_engine_xfer_result(uccl_conn_t* conn, uint64_t transfer_id, char* why,
                            size_t why_len);

// Two-sided send/recv: disabled in UCCL too; always -1.
int uccl_engine_send(uccl_conn_t* conn, uccl_mr_t mr, void const* data,
                     size_t size, uint64_t* transfer_id);
int uccl_engine_send_vector(uccl_conn_t* conn, std::vector<uccl_mr_t> mr_ids,
                            std::vector<void const*> src_v,
                            std::vector<size_t> size_v, int num_iovs,
                            uint64_t* transfer_id);
int uccl_engine_recv(uccl_conn_t* conn, uccl_mr_t mr, void* data,
                     size_t max_size);

// ---- Notifications -------------------------------------------------------------
// Delivered after the data of the transfers completed before the call is in
// place at the peer. The getters drain the notifications of every engine of
// the process (UCCL's process-wide list), exactly one entry per send.
int uccl_engine_send_notif(uccl_conn_t* conn, notify_msg_t* notify_msg);
int uccl_engine_send_notif_v(uccl_conn_t* conn,
                             notify_msg_v_t const* notify_msg);
std::vector<notify_msg_t> uccl_engine_get_notifs();
std::vector<notify_msg_v_t> uccl_engine_get_notifs_v();

#endif  // UCCL_P2P_UCCL_ENGINE_H_
