"""UCCL's p2p API (uccl_engine era) on tcpx-p2p.

Scripts written against ``uccl.p2p`` run unchanged: ``Endpoint(local_gpu_idx,
num_cpus)``, connect/accept, reg/regv/dereg, send/recv, read/write with
64-byte FIFO blobs from advertise, the vector and async variants,
poll_async, get_metadata/parse_metadata in UCCL's layout, get_oob_ip, and
the newer register_memory/transfer calls. Failures return False and are
logged on the ``uccl.p2p`` logger, as UCCL prints them. python/README.md
lists where the behaviour differs from UCCL's and why.
"""
from tcpx_p2p._core import uccl_p2p as _impl

Endpoint = _impl.Endpoint
XferDesc = _impl.XferDesc
get_oob_ip = _impl.get_oob_ip

__all__ = ["Endpoint", "XferDesc", "get_oob_ip"]
