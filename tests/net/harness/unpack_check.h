// The test's own reading of the unpack metadata protocol (docs/design.md
// section 2): validate the loadMeta entries of one slot and scatter them with
// a plain CPU loop. Deliberately independent of src/unpack so the suite checks
// the plugin against the contract, not against our own unpacker.
#ifndef TCPX_TESTS_NET_HARNESS_UNPACK_CHECK_H_
#define TCPX_TESTS_NET_HARNESS_UNPACK_CHECK_H_

#include <gtest/gtest.h>

#include <cstdint>

#include "harness/memory_space.h"
#include "net/nccl_net_v7.h"

namespace tcpx::conformance {

// Checks slot `slot` after test() reported a receive of `sent` bytes done:
// cnt <= 2048; every entry has 0 < len <= 4096, dst_off + len <= sent, and
// (when bounce_is_host) a source range inside mapped, readable memory; the
// entries cover [0, sent) exactly once.
::testing::AssertionResult slot_metadata_valid(const unpackNetDeviceHandle& h, int slot, uint64_t sent,
                                               bool bounce_is_host);
// Total bytes the slot's entries describe.
uint64_t slot_total_bytes(const unpackNetDeviceHandle& h, int slot);
// Copies every entry from bounce_buf + src_off to dst + dst_off (dst in
// `space`; the bounce buffer is host memory or, for CUDA, device memory).
Status apply_slot(const unpackNetDeviceHandle& h, int slot, void* dst, MemorySpace& space);

}  // namespace tcpx::conformance

#endif  // TCPX_TESTS_NET_HARNESS_UNPACK_CHECK_H_
