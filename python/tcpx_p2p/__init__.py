"""tcpx_p2p: the Pythonic face of tcpx-p2p.

    import numpy as np, tcpx_p2p as tp
    with tp.Endpoint(gpu=0) as ep:                 # config from TCPX_* + kwargs
        md = ep.metadata()                         # hand to the peer out of band
        with ep.accept(timeout=10) as conn, ep.register(np.zeros(1 << 20, np.uint8)) as mr:
            n = conn.recv(mr)                      # blocking: the bytes sent; raises on failure
            t = conn.recv_async(mr); t.wait(timeout=1.0); t.nbytes

Errors raise tcpx_p2p.errors exceptions carrying the status code. Buffers
are MemoryRegions, objects with data_ptr() (torch tensors) or anything with
the buffer protocol; unless given as a MemoryRegion (or mr=), a buffer must
lie inside a registration of its endpoint. Blocking calls release the GIL
and wake for Ctrl-C. The UCCL-compatible API is ``from uccl import p2p``.
"""
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union

from tcpx_p2p import _core
from tcpx_p2p.buffers import Span, span_of
from tcpx_p2p.errors import (Busy, Cancelled, Closed, InvalidArgument, NotFound, PeerClosed,
                             Rejected, TcpxError, TimedOut, Unsupported)

__all__ = ["Endpoint", "Connection", "MemoryRegion", "Transfer", "Notification",
           "TcpxError", "InvalidArgument", "TimedOut", "PeerClosed", "NotFound",
           "Busy", "Unsupported", "Rejected", "Closed", "Cancelled", "parse_metadata", "oob_ip"]


def _ms(timeout: Optional[float]) -> int:
    return -1 if timeout is None else max(0, int(timeout * 1000))


def parse_metadata(metadata: bytes) -> Tuple[str, int, int]:
    """(ip, port, gpu) from either layout: tcpx-p2p's or UCCL's."""
    return _core.parse_metadata(metadata)


def oob_ip() -> str:
    """The address an endpoint created now would advertise."""
    return _core.oob_ip()


class Notification(NamedTuple):
    conn: int
    name: bytes
    msg: bytes


class Transfer:
    """An in-flight transfer. Holds the buffers it uses until it is final."""

    def __init__(self, ep: "_core.Endpoint", xfer_id: int, owners: Sequence[Any]):
        self._ep = ep
        self.id = xfer_id
        self._owners = owners
        self._final = False
        self._nbytes: Optional[int] = None

    @property
    def nbytes(self) -> Optional[int]:
        """None until done; then the bytes it moved: for a receive the size
        of the send it matched (at most its buffer's), for a vector the sum."""
        return self._nbytes

    def done(self) -> bool:
        """True once the data is in place; raises the transfer's error."""
        if not self._final:
            self._finish(self._ep.poll(self.id))
        return self._final

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Blocks up to timeout seconds (None: no limit; Ctrl-C interrupts).
        True when done, False on timeout (still in flight); raises its error."""
        if not self._final:
            self._finish(self._ep.wait(self.id, _ms(timeout)))
        return self._final

    def cancel(self):
        """Asks the engine to cancel the transfer. It ends with Cancelled if
        it still waits for the peer's application (an unmatched receive, a
        send the peer has not matched); otherwise it ends as it would have.
        wait() or done() tell which; the buffers are held until then."""
        if not self._final:
            try:
                self._ep.cancel(self.id)
            except NotFound:
                pass  # it ended first: wait() or done() reports how

    def set_timeout(self, timeout: float):
        """Gives the transfer a deadline timeout seconds from now; at the
        deadline it is cancelled as by cancel(), ending with TimedOut."""
        if not self._final:
            self._ep.set_timeout(self.id, max(0, int(timeout * 1000)))

    def _finish(self, nbytes: Optional[int]):
        if nbytes is None:  # still in flight
            return
        self._final = True
        self._nbytes = nbytes
        self._owners = ()

    def __repr__(self):
        return f"<tcpx_p2p.Transfer {self.id}{' done' if self._final else ''}>"


class MemoryRegion:
    """A registration; deregistered by deregister() or leaving ``with``."""

    def __init__(self, endpoint: "Endpoint", buf: Any):
        span = span_of(buf, writable=False)
        self._endpoint = endpoint
        self.id = endpoint._ep.reg(span.ptr, span.size)
        self._tcpx_region_span = span
        self.ptr, self.size = span.ptr, span.size

    def deregister(self):
        if self._tcpx_region_span is not None:
            self._endpoint._ep.dereg(self.id)
            self._tcpx_region_span = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.deregister()

    def __repr__(self):
        return f"<tcpx_p2p.MemoryRegion {self.id} 0x{self.ptr:x}+{self.size}>"


Buffer = Union[MemoryRegion, Any]


class Connection:
    """One peer. Sends and receives match in posting order."""

    def __init__(self, endpoint: "Endpoint", conn_id: int, peer: Tuple[str, int, int]):
        self._endpoint = endpoint
        self._ep = endpoint._ep
        self.id = conn_id
        self.peer = peer  # (ip, port, gpu)
        self._open = True

    # The registration a buffer uses: given, its own (a MemoryRegion), or the
    # one of this endpoint that contains it.
    def _piece(self, buf: Buffer, mr: Optional[Union[MemoryRegion, int]],
               writable: bool) -> Tuple[int, Span]:
        span = span_of(buf, writable)
        if mr is None:
            mr_id = buf.id if isinstance(buf, MemoryRegion) else self._ep.find_mr(span.ptr, span.size)
        else:
            mr_id = mr.id if isinstance(mr, MemoryRegion) else int(mr)
        return mr_id, span

    def send(self, buf: Buffer, mr=None) -> None:
        mr_id, s = self._piece(buf, mr, False)
        self._ep.send(self.id, mr_id, s.ptr, s.size)

    def recv(self, buf: Buffer, mr=None) -> int:
        """Receives the matching send into buf (which must be large enough);
        returns the send's size in bytes."""
        mr_id, s = self._piece(buf, mr, True)
        return self._ep.recv(self.id, mr_id, s.ptr, s.size)

    def send_async(self, buf: Buffer, mr=None) -> Transfer:
        mr_id, s = self._piece(buf, mr, False)
        return Transfer(self._ep, self._ep.send_async(self.id, mr_id, s.ptr, s.size), (s.owner,))

    def recv_async(self, buf: Buffer, mr=None) -> Transfer:
        mr_id, s = self._piece(buf, mr, True)
        return Transfer(self._ep, self._ep.recv_async(self.id, mr_id, s.ptr, s.size), (s.owner,))

    def advertise(self, buf: Buffer, mr=None) -> bytes:
        """A 64-byte description of buf for one read or write by the peer."""
        mr_id, s = self._piece(buf, mr, False)
        return self._ep.advertise(self.id, mr_id, s.ptr, s.size)

    def read_async(self, buf: Buffer, remote: bytes, mr=None) -> Transfer:
        """Reads the peer's advertised region into buf."""
        mr_id, s = self._piece(buf, mr, True)
        return Transfer(self._ep, self._ep.read_async(self.id, mr_id, s.ptr, s.size, remote),
                        (s.owner,))

    def write_async(self, buf: Buffer, remote: bytes, mr=None) -> Transfer:
        """Writes buf into the peer's advertised region."""
        mr_id, s = self._piece(buf, mr, False)
        return Transfer(self._ep, self._ep.write_async(self.id, mr_id, s.ptr, s.size, remote),
                        (s.owner,))

    def _vector(self, pairs, writable: bool):
        pieces, owners = [], []
        for buf, remote in pairs:
            mr_id, s = self._piece(buf, None, writable)
            pieces.append((mr_id, s.ptr, s.size, remote))
            owners.append(s.owner)
        return pieces, owners

    def readv_async(self, pairs: Sequence[Tuple[Buffer, bytes]]) -> Transfer:
        """One transfer reading each (local buffer, advertised remote) pair."""
        pieces, owners = self._vector(pairs, True)
        return Transfer(self._ep, self._ep.readv_async(self.id, pieces), owners)

    def writev_async(self, pairs: Sequence[Tuple[Buffer, bytes]]) -> Transfer:
        pieces, owners = self._vector(pairs, False)
        return Transfer(self._ep, self._ep.writev_async(self.id, pieces), owners)

    def read(self, buf: Buffer, remote: bytes, mr=None) -> None:
        self.read_async(buf, remote, mr).wait()

    def write(self, buf: Buffer, remote: bytes, mr=None) -> None:
        self.write_async(buf, remote, mr).wait()

    def readv(self, pairs) -> None:
        self.readv_async(pairs).wait()

    def writev(self, pairs) -> None:
        self.writev_async(pairs).wait()

    def notify(self, name: bytes, msg: bytes) -> None:
        """Delivered after the data of the transfers completed before it."""
        self._ep.send_notification(self.id, name, msg)

    def close(self) -> None:
        if self._open and not self._ep.closed:
            self._ep.close_connection(self.id)
        self._open = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<tcpx_p2p.Connection {self.id} to {self.peer[0]}:{self.peer[1]} gpu {self.peer[2]}>"


class Endpoint:
    """One per GPU (any index on a host without GPUs). Keyword arguments
    override tcpx::Config fields (channels_per_peer, chunk_bytes, eager_bytes,
    connect_timeout_ms, peer_timeout_ms, transfer_timeout_ms, spin_us,
    plugin_path, net_dev, listen_addr, listen_port, sockets_per_channel,
    max_unmatched_bytes, max_undelivered_bytes, max_control_backlog_bytes,
    max_handshakes, auth_key) after the TCPX_* environment."""

    def __init__(self, gpu: int = 0, **config):
        self._ep = _core.Endpoint(gpu, config)
        self.gpu = gpu

    def metadata(self, layout: str = "tcpx") -> bytes:
        """Bytes for the peer's connect(): "tcpx" (versioned) or "uccl"."""
        if layout == "uccl":
            return _core.uccl_metadata(*self._ep.local_info())
        if layout != "tcpx":
            raise ValueError(f"layout is 'tcpx' or 'uccl', not {layout!r}")
        return self._ep.metadata()

    @property
    def info(self) -> Tuple[str, int, int]:
        """(ip, port, gpu) this endpoint listens on."""
        return self._ep.local_info()

    def connect(self, peer: Union[bytes, str], gpu: Optional[int] = None,
                port: Optional[int] = None) -> Connection:
        """peer: metadata bytes (either layout), or an address with gpu and port."""
        if isinstance(peer, (bytes, bytearray, memoryview)):
            ip, port, gpu = parse_metadata(bytes(peer))
        elif gpu is None or port is None:
            raise TypeError("connect(ip, gpu, port) needs gpu and port with an address")
        conn = self._ep.connect(peer if isinstance(peer, str) else ip, gpu, port)
        return Connection(self, conn, (peer if isinstance(peer, str) else ip, port, gpu))

    def accept(self, timeout: Optional[float] = None) -> Connection:
        """The next incoming connection; TimedOut after timeout seconds."""
        conn, ip, port, gpu = self._ep.accept(_ms(timeout))
        return Connection(self, conn, (ip, port, gpu))

    def register(self, buf: Any) -> MemoryRegion:
        return MemoryRegion(self, buf)

    def notifications(self) -> List[Notification]:
        return [Notification(*n) for n in self._ep.notifications()]

    def describe_path(self) -> str:
        return self._ep.describe_path()

    def close(self) -> None:
        """Fails outstanding transfers, closes connections, stops the engine."""
        self._ep.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        ip, port, gpu = self.info if not self._ep.closed else ("-", 0, self.gpu)
        return f"<tcpx_p2p.Endpoint gpu {gpu} at {ip}:{port}>"
