// decode_fifo_item: the 64-byte FifoItem a caller or a peer hands the engine
// for a one-sided read or write (engine/fifo_item.h).
//
// Input: up to 64 bytes, zero-padded to a FifoItem.
// Invariants: errors are INVALID_ARGUMENT; an accepted item re-encodes to the
// same first 48 bytes (the last 16 are reserved and not read).
#include <algorithm>
#include <cstring>

#include "engine/fifo_item.h"
#include "fuzz_check.h"

using namespace tcpx;
using namespace tcpx::engine;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FifoItem item{};
  std::memcpy(item.bytes, data, std::min(size, sizeof item.bytes));
  FifoFields f;
  Status s = decode_fifo_item(item, &f);
  FUZZ_EXPECT_CODE(s, StatusCode::kInvalidArgument);
  if (!s.ok()) return 0;
  FifoItem again = encode_fifo_item(f);
  FUZZ_CHECK(std::memcmp(again.bytes, item.bytes, 48) == 0);
  return 0;
}
