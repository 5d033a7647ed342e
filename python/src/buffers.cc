#include "buffers.h"

#include <cstdint>

namespace py = pybind11;

namespace tcpx_py {

py::tuple buffer_address(py::handle obj, bool writable) {
  if (!PyObject_CheckBuffer(obj.ptr())) {
    throw py::type_error(std::string("expected a buffer (numpy array, "
                                     "bytearray, memoryview) or an object "
                                     "with data_ptr(), got ") +
                         Py_TYPE(obj.ptr())->tp_name);
  }
  py::object view =
      py::reinterpret_steal<py::object>(PyMemoryView_FromObject(obj.ptr()));
  if (!view) throw py::error_already_set();
  Py_buffer* b = PyMemoryView_GET_BUFFER(view.ptr());
  if (!PyBuffer_IsContiguous(b, 'C')) {
    throw py::buffer_error("buffer is not C-contiguous");
  }
  if (writable && b->readonly) {
    throw py::buffer_error("buffer is read-only; a receive or read needs a "
                           "writable one (bytearray, numpy array)");
  }
  return py::make_tuple(reinterpret_cast<uintptr_t>(b->buf),
                        static_cast<size_t>(b->len), view);
}

}  // namespace tcpx_py
