// Addresses of Python buffers (numpy arrays, bytearray, memoryview, mmap...)
// for the Pythonic layer. Objects with data_ptr() (torch tensors) are handled
// in tcpx_p2p/buffers.py: they need no buffer export.
#ifndef TCPX_PY_BUFFERS_H_
#define TCPX_PY_BUFFERS_H_

#include <pybind11/pybind11.h>

namespace tcpx_py {

// (address, nbytes, owner). owner is a memoryview holding the buffer export:
// while it lives the exporter cannot resize or free the memory (numpy refuses
// to resize, bytearray to grow), so a transfer keeps it until it is final.
// Raises BufferError / TypeError for non-buffers, non-C-contiguous buffers and,
// when writable, read-only ones (bytes).
pybind11::tuple buffer_address(pybind11::handle obj, bool writable);

}  // namespace tcpx_py

#endif  // TCPX_PY_BUFFERS_H_
