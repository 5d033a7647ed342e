#include "status_error.h"

#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace tcpx_py {

StatusError::StatusError(tcpx::Status status)
    : status_(std::move(status)), what_(status_.to_string()) {}

void register_status_translator() {
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const StatusError& e) {
      // The exception classes live in Python (they also derive from the
      // matching built-ins: TimeoutError, ConnectionError...), so build the
      // instance there. Imported lazily: the package imports this module.
      try {
        const tcpx::Status& s = e.status();
        py::object exc = py::module_::import("tcpx_p2p.errors")
                             .attr("error_from_status")(
                                 static_cast<int>(s.code()),
                                 tcpx::status_code_name(s.code()), s.message());
        PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())),
                        exc.ptr());
      } catch (py::error_already_set& import_failed) {
        import_failed.restore();
      }
    }
  });
}

}  // namespace tcpx_py
