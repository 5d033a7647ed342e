// tcpx_p2p._core: the one extension module. The Pythonic package tcpx_p2p
// builds on its Endpoint; uccl.p2p re-exports its uccl_p2p submodule.
#include <pybind11/pybind11.h>

#include "bindings.h"
#include "status_error.h"

PYBIND11_MODULE(_core, m) {
  m.doc() = "tcpx-p2p bindings: the C++ tcpx::Endpoint for Python";
  tcpx_py::register_status_translator();
  tcpx_py::bind_core(m);
  pybind11::module_ uccl = m.def_submodule(
      "uccl_p2p", "UCCL's p2p Python API (uccl_engine era) on tcpx-p2p");
  tcpx_py::bind_uccl(uccl);
}
