"""Memory the transfers use, from whatever the caller has: a MemoryRegion, an
object with data_ptr() (torch tensors, host or CUDA), or anything with the
buffer protocol (numpy arrays, bytearray, memoryview, mmap)."""
from typing import Any, NamedTuple

from tcpx_p2p import _core


class Span(NamedTuple):
    ptr: int
    size: int
    owner: Any  # keeps the memory alive (and exported) while a transfer runs


def span_of(obj: Any, writable: bool) -> Span:
    region = getattr(obj, "_tcpx_region_span", None)
    if region is not None:
        return region
    if hasattr(obj, "data_ptr"):
        # torch.Tensor and look-alikes. Non-contiguous views would move the
        # wrong bytes: refuse them like the buffer path does.
        if hasattr(obj, "is_contiguous") and not obj.is_contiguous():
            raise BufferError("tensor is not contiguous")
        return Span(int(obj.data_ptr()), int(obj.numel()) * int(obj.element_size()), obj)
    ptr, size, owner = _core.buffer_address(obj, writable)
    return Span(ptr, size, owner)
