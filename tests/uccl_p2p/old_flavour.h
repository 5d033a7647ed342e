// The Oct-2025 flavour (libuccl_engine.so) used from a translation unit of its
// own: its uccl_engine.h and this flavour's cannot meet in one file (both
// define MSG_SIZE, notify_msg_t, ... differently).
#ifndef TCPX_TESTS_UCCL_P2P_OLD_FLAVOUR_H_
#define TCPX_TESTS_UCCL_P2P_OLD_FLAVOUR_H_

#include <string>

namespace uccl_p2p_test {

// Two Oct-2025 engines, connected as NIXL 86f6d6bbe does, WRITE 256 KiB with
// its call sequence and check it landed. "" on success, else what failed.
std::string old_flavour_write_roundtrip();

}  // namespace uccl_p2p_test

#endif  // TCPX_TESTS_UCCL_P2P_OLD_FLAVOUR_H_
