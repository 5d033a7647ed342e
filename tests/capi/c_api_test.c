/* The C API used from C11, with nothing but uccl_engine.h: two processes
 * (fork before any engine exists), connect via the metadata string, READ and
 * WRITE of several buffers, a notification, data checked byte for byte.
 * Prints what failed and exits nonzero on failure; every wait is bounded. */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "uccl_engine.h"

#define NBUF 3
static const size_t kSizes[NBUF] = {1, 65536 + 3, 3 * 1024 * 1024};

static unsigned char pattern(unsigned seed, size_t j) {
  return (unsigned char)((j * 131u + seed * 17u + (j >> 9)) & 0xff);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap_ms(int ms) {
  struct timespec ts = {0, (long)ms * 1000000L};
  nanosleep(&ts, NULL);
}

#define FAIL(...)                                     \
  do {                                                \
    fprintf(stderr, "c_api_test: " __VA_ARGS__);      \
    fprintf(stderr, "\n");                            \
    return 1;                                         \
  } while (0)

/* Writes all of buf to fd. */
static int write_all(int fd, const void* buf, size_t n) {
  const char* p = (const char*)buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads exactly n bytes from fd within timeout_ms. */
static int read_all(int fd, void* buf, size_t n, int timeout_ms) {
  char* p = (char*)buf;
  double deadline = now_s() + timeout_ms / 1000.0;
  while (n > 0) {
    struct pollfd pfd = {fd, POLLIN, 0};
    int left = (int)((deadline - now_s()) * 1000);
    if (left <= 0 || poll(&pfd, 1, left) <= 0) return -1;
    ssize_t r = read(fd, p, n);
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

/* What the target tells the initiator: its metadata and buffer addresses. */
struct hello {
  char meta[128];
  uint64_t addr[2 * NBUF]; /* NBUF to read from, NBUF to be written */
};

static int wait_done(uccl_conn_t* conn, uint64_t tid) {
  double deadline = now_s() + 30;
  while (now_s() < deadline) {
    if (uccl_engine_xfer_status(conn, tid) == 1) return 0;
    int rc = uccl_engine_xfer_result(conn, tid, NULL, 0);
    if (rc < 0) return rc;
    nap_ms(1);
  }
  return UCCL_E_TIMEOUT;
}

static int target(int to_parent, int from_parent) {
  uccl_engine_t* e = uccl_engine_create(0, 4, false);
  if (!e) FAIL("target: create failed");
  struct hello h;
  memset(&h, 0, sizeof(h));
  char* meta = NULL;
  if (uccl_engine_get_metadata(e, &meta) != 0) FAIL("target: metadata");
  strncpy(h.meta, meta, sizeof(h.meta) - 1);
  uccl_engine_free_metadata(meta);
  unsigned char* bufs[2 * NBUF];
  uccl_mr_t* mrs[2 * NBUF];
  for (int i = 0; i < 2 * NBUF; ++i) {
    size_t n = kSizes[i % NBUF];
    bufs[i] = (unsigned char*)malloc(n);
    for (size_t j = 0; j < n; ++j) bufs[i][j] = i < NBUF ? pattern(10u + (unsigned)i, j) : 0;
    mrs[i] = uccl_engine_reg(e, (uintptr_t)bufs[i], n);
    if (!mrs[i]) FAIL("target: reg %d", i);
    h.addr[i] = (uint64_t)(uintptr_t)bufs[i];
  }
  if (write_all(to_parent, &h, sizeof(h)) != 0) FAIL("target: pipe");
  char ip[64];
  int gpu = -1;
  uccl_conn_t* conn = uccl_engine_accept(e, ip, sizeof(ip), &gpu);
  if (!conn) FAIL("target: accept");
  if (uccl_engine_start_listener(conn) != 0) FAIL("target: listener");
  /* The application does nothing for the peer's READ/WRITE: wait for the
   * notification that says the writes are complete. */
  notify_msg_t got[4];
  size_t n = 0;
  double deadline = now_s() + 60;
  while (n == 0 && now_s() < deadline) {
    if (uccl_engine_get_notifs(got, 4, &n) != 0) FAIL("target: get_notifs");
    if (n == 0) nap_ms(1);
  }
  if (n != 1) FAIL("target: expected one notification, got %zu", n);
  if (strcmp(got[0].name, "c-initiator") != 0 || strcmp(got[0].msg, "writes-done") != 0)
    FAIL("target: notification '%s' '%s'", got[0].name, got[0].msg);
  for (int i = NBUF; i < 2 * NBUF; ++i)
    for (size_t j = 0; j < kSizes[i - NBUF]; ++j)
      if (bufs[i][j] != pattern(20u + (unsigned)i, j)) FAIL("target: WRITE %d byte %zu", i, j);
  char ack = 'k';
  write_all(to_parent, &ack, 1);
  read_all(from_parent, &ack, 1, 30000); /* initiator done: tear down */
  uccl_engine_conn_destroy(conn);
  for (int i = 0; i < 2 * NBUF; ++i) {
    uccl_engine_mr_destroy(mrs[i]);
    free(bufs[i]);
  }
  uccl_engine_destroy(e);
  return 0;
}

static int initiator(int from_child, int to_child) {
  struct hello h;
  if (read_all(from_child, &h, sizeof(h), 30000) != 0) FAIL("no hello from the target");
  /* "a.b.c.d:port?gpu", split like NIXL does. */
  char ip[64];
  int port = 0, gpu = 0;
  char* colon = strchr(h.meta, ':');
  char* q = colon ? strchr(colon, '?') : NULL;
  if (!colon || !q || (size_t)(colon - h.meta) >= sizeof(ip)) FAIL("bad metadata '%s'", h.meta);
  memcpy(ip, h.meta, (size_t)(colon - h.meta));
  ip[colon - h.meta] = '\0';
  port = atoi(colon + 1);
  gpu = atoi(q + 1);

  uccl_engine_t* e = uccl_engine_create(0, 4, false);
  if (!e) FAIL("create failed");
  uccl_conn_t* conn = uccl_engine_connect(e, ip, gpu, port);
  if (!conn) FAIL("connect to %s failed", h.meta);
  if (uccl_engine_start_listener(conn) != 0) FAIL("listener");

  unsigned char* local[2 * NBUF];
  uccl_mr_t* mrs[2 * NBUF];
  md_t md[NBUF];
  for (int i = 0; i < 2 * NBUF; ++i) {
    size_t n = kSizes[i % NBUF];
    local[i] = (unsigned char*)malloc(n);
    for (size_t j = 0; j < n; ++j) local[i][j] = i < NBUF ? 0xEE : pattern(20u + (unsigned)i, j);
    mrs[i] = uccl_engine_reg(e, (uintptr_t)local[i], n);
    if (!mrs[i]) FAIL("reg %d", i);
  }
  /* READ the target's first NBUF buffers. */
  for (int i = 0; i < NBUF; ++i) {
    memset(&md[i], 0, sizeof(md[i]));
    md[i].op = UCCL_READ;
    md[i].data.tx_data.data_ptr = h.addr[i];
    md[i].data.tx_data.data_size = kSizes[i];
  }
  if (uccl_engine_send_tx_md_vector(conn, md, NBUF) != 0) FAIL("send READ md vector");
  uint64_t tids[NBUF];
  for (int i = 0; i < NBUF; ++i) {
    char item[FIFO_ITEM_SIZE];
    int rc = UCCL_IN_PROGRESS;
    for (int t = 0; t < 2000 && rc == UCCL_IN_PROGRESS; ++t) {
      rc = uccl_engine_get_fifo_item(conn, i, item);
      if (rc == UCCL_IN_PROGRESS) nap_ms(1);
    }
    if (rc != 0) FAIL("FIFO item %d: %d", i, rc);
    if (uccl_engine_read(conn, mrs[i], local[i], kSizes[i], item, &tids[i]) != 0)
      FAIL("read %d", i);
  }
  for (int i = 0; i < NBUF; ++i) {
    int rc = wait_done(conn, tids[i]);
    if (rc != 0) FAIL("READ %d ended with %d", i, rc);
    for (size_t j = 0; j < kSizes[i]; ++j)
      if (local[i][j] != pattern(10u + (unsigned)i, j)) FAIL("READ %d byte %zu", i, j);
  }
  /* WRITE ours into the target's other NBUF buffers. */
  for (int i = 0; i < NBUF; ++i) {
    memset(&md[i], 0, sizeof(md[i]));
    md[i].op = UCCL_WRITE;
    md[i].data.tx_data.data_ptr = h.addr[NBUF + i];
    md[i].data.tx_data.data_size = kSizes[i];
  }
  if (uccl_engine_send_tx_md_vector(conn, md, NBUF) != 0) FAIL("send WRITE md vector");
  for (int i = 0; i < NBUF; ++i)
    if (uccl_engine_write(conn, mrs[NBUF + i], local[NBUF + i], kSizes[i], &tids[i]) != 0)
      FAIL("write %d", i);
  for (int i = 0; i < NBUF; ++i) {
    int rc = wait_done(conn, tids[i]);
    if (rc != 0) FAIL("WRITE %d ended with %d", i, rc);
  }
  notify_msg_t note;
  memset(&note, 0, sizeof(note));
  strcpy(note.name, "c-initiator");
  strcpy(note.msg, "writes-done");
  if (uccl_engine_send_notif(conn, &note) != 0) FAIL("send_notif");
  char ack = 0;
  if (read_all(from_child, &ack, 1, 60000) != 0 || ack != 'k')
    FAIL("the target did not confirm the written data");
  write_all(to_child, &ack, 1);
  uccl_engine_conn_destroy(conn);
  for (int i = 0; i < 2 * NBUF; ++i) {
    uccl_engine_mr_destroy(mrs[i]);
    free(local[i]);
  }
  uccl_engine_destroy(e);
  return 0;
}

int main(void) {
  setenv("TCPX_LISTEN_ADDR", "127.0.0.1", 0);
  signal(SIGPIPE, SIG_IGN);
  int up[2], down[2];
  if (pipe(up) != 0 || pipe(down) != 0) FAIL("pipe");
  pid_t pid = fork();
  if (pid < 0) FAIL("fork");
  if (pid == 0) {
    close(up[0]);
    close(down[1]);
    _exit(target(up[1], down[0]));
  }
  close(up[1]);
  close(down[0]);
  int rc = initiator(up[0], down[1]);
  close(down[1]);
  /* Reap the target within a bound; kill it if it hangs. */
  int status = 0;
  double deadline = now_s() + 30;
  pid_t r = 0;
  while ((r = waitpid(pid, &status, WNOHANG)) == 0 && now_s() < deadline) nap_ms(10);
  if (r == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL("target did not exit");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) FAIL("target failed (status %d)", status);
  if (rc == 0) printf("c_api_test: OK\n");
  return rc;
}
