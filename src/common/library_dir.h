// Where this code was loaded from, so the core can find the libraries that ship
// beside it (the built-in plugin, libtcpx_cuda.so).
#ifndef TCPX_COMMON_LIBRARY_DIR_H_
#define TCPX_COMMON_LIBRARY_DIR_H_

#include <string>

namespace tcpx {

// Resolved directory of the shared object or executable holding the core (a
// static library: so the tool, the test or libuccl_engine.so); "" if unknown.
std::string library_dir();

}  // namespace tcpx

#endif  // TCPX_COMMON_LIBRARY_DIR_H_
