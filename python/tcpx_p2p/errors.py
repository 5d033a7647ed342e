"""Exceptions of tcpx_p2p: one per tcpx::StatusCode that callers act on, each
carrying the numeric code, its name and the engine's message. They also
derive from the matching built-in exception, so ``except TimeoutError`` or
``except ConnectionError`` work as expected."""


class TcpxError(Exception):
    """A failed tcpx-p2p call. ``code`` is the tcpx::StatusCode value,
    ``name`` its stable name (e.g. ``"PEER_CLOSED"``)."""

    def __init__(self, code: int, name: str, message: str):
        super().__init__(f"{name}: {message}")
        self.code = code
        self.name = name
        self.message = message


class InvalidArgument(TcpxError, ValueError):
    pass


class TimedOut(TcpxError, TimeoutError):
    pass


class PeerClosed(TcpxError, ConnectionError):
    pass


class NotFound(TcpxError, LookupError):
    pass


class Busy(TcpxError):
    pass


class Unsupported(TcpxError):
    pass


class Rejected(TcpxError):
    """The peer refused the request (a bad or stale region, for one)."""


class Closed(TcpxError, ConnectionError):
    """This side closed the connection or destroyed the endpoint."""


class Cancelled(TcpxError):
    """The transfer was cancelled by this side."""


# tcpx::StatusCode values (include/tcpx/status.h).
_BY_CODE = {2: InvalidArgument, 3: TimedOut, 4: PeerClosed, 7: NotFound,
            8: Unsupported, 10: Busy, 12: Rejected, 13: Closed, 14: Cancelled}


def error_from_status(code: int, name: str, message: str) -> TcpxError:
    """Called by the extension to turn a failed Status into an exception."""
    return _BY_CODE.get(code, TcpxError)(code, name, message)
