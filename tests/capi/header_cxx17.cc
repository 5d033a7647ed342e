// Compile check: uccl_engine.h as NIXL's C++17 code includes it, with NIXL's
// own FIFO_ITEM_SIZE definition after it (an identical redefinition).
#include <vector>

#include "uccl_engine.h"
#define FIFO_ITEM_SIZE 64

static_assert(sizeof(notify_msg_t) == 128, "notify_msg_t is two 64-byte strings");
static_assert(sizeof(tx_msg_t) == 16, "tx_msg_t is data_ptr + data_size");

std::vector<notify_msg_t> header_cxx17_probe() { return uccl_engine_get_notifs(); }
