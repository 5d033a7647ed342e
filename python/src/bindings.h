// The two binding sets on the one extension module, and helpers they share.
#ifndef TCPX_PY_BINDINGS_H_
#define TCPX_PY_BINDINGS_H_

#include <pybind11/pybind11.h>

#include <string>

#include "tcpx/endpoint.h"

namespace tcpx_py {

// _core.Endpoint and friends, raising tcpx_p2p.errors exceptions.
void bind_core(pybind11::module_& m);
// _core.uccl_p2p: UCCL's p2p API (ok flags, errors logged).
void bind_uccl(pybind11::module_& m);
// The newer UCCL calls (register_memory, transfer, ...) on uccl_p2p.Endpoint.
void bind_uccl_descs(pybind11::module_& m, pybind11::object endpoint_class);

// A 64-byte FIFO blob from Python bytes; wrong size raises RuntimeError
// ("meta must be exactly 64 bytes"), as UCCL's binding does.
tcpx::FifoItem fifo_from_bytes(const pybind11::bytes& blob);
pybind11::bytes fifo_to_bytes(const tcpx::FifoItem& item);

}  // namespace tcpx_py

#endif  // TCPX_PY_BINDINGS_H_
