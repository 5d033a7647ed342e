/*
 * uccl_engine.h: the C API that NIXL's UCCL backend links against
 * (libuccl_engine.so), implemented over tcpx::Endpoint.
 *
 * Names and shapes follow UCCL's p2p/uccl_engine.h of the era NIXL's UCCL
 * backend was written for; the in-memory structs below are API, the bytes on
 * the wire are this library's own framed, network-byte-order format.
 *
 * This is a real C header (C11 and C++). Under C++ it also declares inline
 * overloads NIXL's C++ code expects (std::vector<notify_msg_t>
 * uccl_engine_get_notifs()).
 *
 * Status codes: 0 is success, UCCL_IN_PROGRESS (1) means "not yet, try again",
 * negative values are the errors of enum uccl_status.
 *
 * Threading: every function is thread-safe. A connection's control traffic is
 * served by its md service (uccl_engine_start_listener), which must be started
 * on both ends of a connection for READ/WRITE requests and their FIFO replies
 * to flow. The engine runs it on its progress path (no thread per connection).
 * The target application never calls anything for a peer's READ or WRITE.
 *
 * Compatibility rules kept on purpose (NIXL depends on them):
 *  - uccl_engine_xfer_status() is read as a boolean by NIXL: it returns 1 only
 *    when the transfer succeeded, and 0 both while it runs and after it failed
 *    (a negative value would read as "done"). The failure is logged once and
 *    reported by uccl_engine_xfer_result().
 *  - ACCEPT PARKING: NIXL's accept thread is detached and may still be inside
 *    uccl_engine_accept(engine) when uccl_engine_destroy(engine) runs; if that
 *    call returned, NIXL would touch its freed backend object. So an accept
 *    pending on (or started after) a destroyed engine never returns: its thread
 *    stays parked on a small per-engine state that outlives the engine and is
 *    leaked on purpose (a few hundred bytes per destroyed engine, still
 *    reachable from a process-wide list). Process exit is unaffected.
 *  - Engine handles stay valid (as such parked state) after destroy, so calls
 *    on a destroyed engine fail with UCCL_E_CLOSED instead of touching freed
 *    memory. Connection handles stay valid until uccl_engine_conn_destroy().
 */
#ifndef UCCL_ENGINE_H_
#define UCCL_ENGINE_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#include <vector>
extern "C" {
#endif

/* Size of the opaque remote-region descriptor (NIXL hard-codes 64). */
#define FIFO_ITEM_SIZE 64
/* Length of notify_msg_t's name and msg fields (NUL included). */
#define MSG_SIZE 64
/* Most md items one uccl_engine_send_tx_md_vector call may carry. */
#define UCCL_MAX_MD_VECTOR (1u << 20)

typedef struct uccl_engine uccl_engine_t;
typedef struct uccl_conn uccl_conn_t;
typedef struct uccl_mr uccl_mr_t;

enum uccl_status {
  UCCL_OK = 0,
  UCCL_IN_PROGRESS = 1,      /* not finished / not arrived yet: try again */
  UCCL_E_INVALID = -1,       /* bad argument (NULL, out of range, not registered) */
  UCCL_E_TIMEOUT = -2,       /* a deadline passed */
  UCCL_E_PEER_CLOSED = -3,   /* the remote side went away */
  UCCL_E_PROTOCOL = -4,      /* the peer sent something malformed */
  UCCL_E_TRANSPORT = -5,     /* network plugin or socket failure */
  UCCL_E_NOT_FOUND = -6,     /* unknown transfer id, region or connection */
  UCCL_E_UNSUPPORTED = -7,   /* not available in this build / on this host */
  UCCL_E_CUDA = -8,          /* a CUDA call failed */
  UCCL_E_BUSY = -9,          /* refused because the object is in use */
  UCCL_E_INTERNAL = -10,     /* a bug in this library */
  UCCL_E_REJECTED = -11,     /* the target refused the request (bad region) */
  UCCL_E_CLOSED = -12,       /* the connection or engine was destroyed */
  UCCL_E_CANCELLED = -13     /* cancelled by this side */
};

typedef enum uccl_msg_type {
  UCCL_READ = 0,
  UCCL_WRITE = 1,
  UCCL_VECTOR_READ = 2,  /* accepted wherever UCCL_READ is */
  UCCL_VECTOR_WRITE = 3, /* accepted wherever UCCL_WRITE is */
  UCCL_FIFO = 4,         /* reply type; never valid in a request */
  UCCL_NOTIFY = 5        /* uccl_engine_send_tx_md(): send notify_data */
} uccl_msg_type;

/* Strings are NUL-terminated within MSG_SIZE; longer input is truncated. */
typedef struct notify_msg {
  char name[MSG_SIZE];
  char msg[MSG_SIZE];
} notify_msg_t;

typedef struct fifo_msg {
  int id;
  char fifo_buf[FIFO_ITEM_SIZE];
} fifo_msg_t;

/* A region of the TARGET's memory: [data_ptr, data_ptr + data_size) must lie
 * inside one buffer registered on the target engine. */
typedef struct tx_msg {
  uint64_t data_ptr;
  size_t data_size;
} tx_msg_t;

typedef struct vector_msg {
  size_t count;
} vector_msg_t;

typedef struct md {
  uccl_msg_type op;
  union {
    tx_msg_t tx_data;
    fifo_msg_t fifo_data;
    notify_msg_t notify_data;
    vector_msg_t vector_data;
  } data;
} md_t;

/* ---- Engine ------------------------------------------------------------ */

/* Creates an engine: one tcpx::Endpoint configured from TCPX_* environment
 * variables, listening on its own port (ephemeral unless TCPX_LISTEN_PORT is
 * set, which then only one engine per process can use). The address
 * advertised is TCPX_LISTEN_ADDR, else the first non-loopback IPv4 address,
 * else 127.0.0.1. local_gpu_idx may name no GPU on a
 * host-only machine (host memory only). num_cpus and in_python are accepted
 * for compatibility and ignored (the endpoint sizes its own threads).
 * Returns NULL on failure (the reason is logged). */
uccl_engine_t* uccl_engine_create(int local_gpu_idx, int num_cpus,
                                  bool in_python);

/* Stops every listener of the engine, closes its connections (their pending
 * transfers fail) and releases the endpoint. The handle itself stays parked
 * (see ACCEPT PARKING above). NULL is ignored. */
void uccl_engine_destroy(uccl_engine_t* engine);

/* Writes a new[]-allocated "a.b.c.d:port?gpu" string to *metadata_str (free
 * it with delete[] from C++, or uccl_engine_free_metadata()). IPv6 listeners
 * give "[addr]:port?gpu". Returns 0 or a negative status. */
int uccl_engine_get_metadata(uccl_engine_t* engine, char** metadata_str);
void uccl_engine_free_metadata(char* metadata_str);

/* ---- Connections --------------------------------------------------------- */

/* Synchronous connect to a peer engine. Returns NULL on failure (timeout
 * after TCPX_CONNECT_TIMEOUT_MS, unreachable peer, GPU-id mismatch). */
uccl_conn_t* uccl_engine_connect(uccl_engine_t* engine, const char* ip_addr,
                                 int remote_gpu_idx, int remote_port);

/* Blocks until a peer connects. Writes the peer's IP (NUL-terminated,
 * truncated to ip_addr_buf_len) and GPU index. Returns NULL on a failed
 * handshake (call again). Never returns once the engine is destroyed. */
uccl_conn_t* uccl_engine_accept(uccl_engine_t* engine, char* ip_addr_buf,
                                size_t ip_addr_buf_len, int* remote_gpu_idx);

/* Starts serving the peer's READ/WRITE requests and receiving the FIFO replies
 * to ours (no thread: the engine answers them where it reads them). Messages
 * that arrived before are served first. Returns 0, UCCL_E_BUSY if already
 * started, UCCL_E_CLOSED once the connection is destroyed. */
int uccl_engine_start_listener(uccl_conn_t* conn);

/* Stops the md service, fails this connection's outstanding transfers and
 * frees the handle. Returns promptly even when the peer is gone. */
void uccl_engine_conn_destroy(uccl_conn_t* conn);

/* ---- Memory -------------------------------------------------------------- */

/* Registers [data, data+size) (host memory, or CUDA memory aligned to 4096
 * bytes). Returns NULL on failure. */
uccl_mr_t* uccl_engine_reg(uccl_engine_t* engine, uintptr_t data, size_t size);

/* Deregisters (waits up to 10 s for transfers still using the region; it is
 * woken by the last one's end, so it returns as soon as that ends) and frees
 * the handle. Later peer requests for the region are rejected. */
void uccl_engine_mr_destroy(uccl_mr_t* mr);

/* ---- Requests to the peer (md vectors) ------------------------------------ */

/* Sends count items (1..UCCL_MAX_MD_VECTOR), each UCCL_READ/UCCL_VECTOR_READ
 * or UCCL_WRITE/UCCL_VECTOR_WRITE with tx_data naming a region of the
 * target. A vector with READ items replaces this connection's READ FIFO
 * table: item i's answer is read with uccl_engine_get_fifo_item(conn, i).
 * WRITE items queue write slots that uccl_engine_write() consumes in order.
 * Returns 0 (never a byte count) or a negative status. */
int uccl_engine_send_tx_md_vector(uccl_conn_t* conn, md_t* md_array,
                                  size_t count);

/* One md: READ/WRITE items as a vector of one; UCCL_NOTIFY sends
 * md->data.notify_data like uccl_engine_send_notif(). Returns 0 or < 0. */
int uccl_engine_send_tx_md(uccl_conn_t* conn, md_t* md);

/* Copies the FIFO_ITEM_SIZE-byte answer to READ item `id` of the latest READ
 * vector into fifo_item. Returns 0 when present, UCCL_IN_PROGRESS while the
 * reply has not arrived (before saying so, the call drives the engine on the
 * caller's thread for up to TCPX_SPIN_US, default 200 us, so an answer a
 * round trip away is returned by the first call; with TCPX_SPIN_US=0 it
 * never spins), a negative status when the target rejected the item
 * (fifo_item then holds a poisoned item: a read with it fails with that
 * status) or the connection failed. */
int uccl_engine_get_fifo_item(uccl_conn_t* conn, int id, void* fifo_item);

/* ---- Transfers ----------------------------------------------------------- */

/* Reads the peer region described by slot_item (from get_fifo_item) into
 * [data, data+size) of mr. Non-blocking: *transfer_id is polled with
 * uccl_engine_xfer_status(). Returns 0, or a negative status for a local
 * error (bad argument, closed connection). */
int uccl_engine_read(uccl_conn_t* conn, uccl_mr_t* mr, const void* data,
                     size_t size, void* slot_item, uint64_t* transfer_id);

/* Writes [data, data+size) of mr into the region of the next unconsumed
 * WRITE item sent on this connection, waiting up to TCPX_PEER_TIMEOUT_MS for
 * the target's answer (driving the engine on the caller's thread for the
 * first TCPX_SPIN_US of it). A rejected item yields a transfer id that fails.
 * Returns 0 or a negative status (UCCL_E_TIMEOUT when no slot arrived). */
int uccl_engine_write(uccl_conn_t* conn, uccl_mr_t* mr, const void* data,
                      size_t size, uint64_t* transfer_id);

/* Two-sided: non-blocking send matched in order by the peer's
 * uccl_engine_recv(). Extension (UCCL's header of that era has no send). */
int uccl_engine_send(uccl_conn_t* conn, uccl_mr_t* mr, const void* data,
                     size_t size, uint64_t* transfer_id);

/* Blocking two-sided receive of at most max_size bytes. Returns 0 when the
 * data is in place, a negative status otherwise (also when the connection or
 * engine is destroyed meanwhile). */
int uccl_engine_recv(uccl_conn_t* conn, uccl_mr_t* mr, void* data,
                     size_t max_size);

/* 1 when the transfer succeeded (data in place); 0 while in progress AND 0
 * after a failure (see the compatibility rules; ask uccl_engine_xfer_result).
 * Never negative. */
int uccl_engine_xfer_status(uccl_conn_t* conn, uint64_t transfer_id);

/* The transfer's outcome as a status: 0 succeeded, UCCL_IN_PROGRESS, or its
 * negative error; msg (if not NULL) receives a NUL-terminated description.
 * UCCL_E_NOT_FOUND for an id this connection never issued. */
int uccl_engine_xfer_result(uccl_conn_t* conn, uint64_t transfer_id, char* msg,
                            size_t msg_len);

/* ---- Notifications --------------------------------------------------------- */

/* Delivered to the peer after the data of every transfer on this connection
 * that completed before this call. Returns 0 or a negative status. */
int uccl_engine_send_notif(uccl_conn_t* conn, notify_msg_t* notify_msg);

/* Drains up to max notifications of EVERY live engine of the process into
 * out; *count receives how many. Exactly one entry per peer send_notif, none
 * made up; the rest stay queued. Cheap and thread-safe (meant for polling).
 * Returns 0 or UCCL_E_INVALID. */
int uccl_engine_get_notifs(notify_msg_t* out, size_t max, size_t* count);

/* The same for one engine. */
int uccl_engine_drain_notifs(uccl_engine_t* engine, notify_msg_t* out,
                             size_t max, size_t* count);

#ifdef __cplusplus
} /* extern "C" */

/* C++ overloads in the shape NIXL's UCCL backend calls. static: UCCL's newer
 * API (libuccl_p2p.so, include/uccl_p2p/) exports a function with the same
 * C++ name and signature but another notify_msg_t; internal linkage keeps a
 * program that uses both flavours from binding this one to that. */
static inline std::vector<notify_msg_t> uccl_engine_get_notifs() {
  std::vector<notify_msg_t> all;
  notify_msg_t batch[64];
  size_t n = 0;
  while (uccl_engine_get_notifs(batch, 64, &n) == 0 && n > 0) {
    all.insert(all.end(), batch, batch + n);
    if (n < 64) break;
  }
  return all;
}

static inline std::vector<notify_msg_t> uccl_engine_get_notifs(uccl_engine_t* engine) {
  std::vector<notify_msg_t> all;
  notify_msg_t batch[64];
  size_t n = 0;
  while (uccl_engine_drain_notifs(engine, batch, 64, &n) == 0 && n > 0) {
    all.insert(all.end(), batch, batch + n);
    if (n < 64) break;
  }
  return all;
}
#endif

#endif /* UCCL_ENGINE_H_ */
