"""tcpx_p2p: the Pythonic module, two processes on loopback."""
import time

import numpy as np
import pytest

import tcpx_p2p as tp
from conftest import needs_torch, run_one, run_pair, run_with_victim

N = 1 << 18  # bytes


def test_buffers_context_managers_and_wait_timeout():
    def server(qa, qb):
        with tp.Endpoint(gpu=0) as ep:
            qa.put(ep.metadata())
            with ep.accept(timeout=10) as conn:
                got = bytearray(N)
                view = memoryview(bytearray(N))
                arr = np.zeros(N, np.uint8)
                with ep.register(got), ep.register(view), ep.register(arr) as mr:
                    conn.recv(got)                 # found by address
                    t = conn.recv_async(view)
                    assert t.wait(timeout=10)
                    t = conn.recv_async(arr, mr=mr)
                    waited_early = t.wait(timeout=0.05)   # the sender waits 0.3 s
                    assert t.wait(timeout=10) and t.done()
                return (bytes(got) == bytes(range(256)) * (N // 256),
                        bytes(view) == b"\x07" * N, waited_early, int(arr.sum()))

    def client(qa, qb):
        with tp.Endpoint(gpu=1, channels_per_peer=2) as ep:
            with ep.connect(qa.get()) as conn:
                data = np.tile(np.arange(256, dtype=np.uint8), N // 256)
                with ep.register(data) as mr:
                    conn.send(mr)
                    data[:] = 7
                    conn.send_async(data).wait()
                    time.sleep(0.3)
                    data[:] = 1
                    conn.send(data)
        return True

    (pattern, sevens, early, total), ok = run_pair(server, client)
    assert pattern and sevens and early is False and total == N and ok


def test_receives_report_the_size_of_the_send():
    sizes = [0, 5, 4096, 300000]   # inline and through the plugin

    def server(qa, qb):
        with tp.Endpoint(gpu=0) as ep:
            qa.put(ep.metadata())
            with ep.accept(timeout=10) as conn:
                buf = np.zeros(1 << 20, np.uint8)
                got = []
                with ep.register(buf):
                    got.append(conn.recv(buf))
                    t = conn.recv_async(buf)
                    before = t.nbytes
                    assert t.wait(timeout=10)
                    got.append(t.nbytes)
                    t = conn.recv_async(buf)
                    deadline = time.monotonic() + 10
                    while not t.done() and time.monotonic() < deadline:
                        time.sleep(0.001)
                    got.append(t.nbytes)
                    got.append(conn.recv(buf))
                    tail = bytes(buf[:sizes[3]]) == bytes([9]) * sizes[3]
                return got, before, tail

    def client(qa, qb):
        with tp.Endpoint(gpu=1) as ep:
            with ep.connect(qa.get()) as conn:
                data = np.full(max(sizes), 9, np.uint8)
                with ep.register(data):
                    sent = []
                    for n in sizes:
                        t = conn.send_async(data[:n])
                        t.wait()
                        sent.append(t.nbytes)
        return sent

    (got, before, tail), sent = run_pair(server, client)
    assert got == sizes and sent == sizes and before is None and tail


def test_read_write_vectors_and_notifications():
    K, B = 16, 8192

    def server(qa, qb):
        with tp.Endpoint(0) as ep:
            qa.put(ep.metadata(layout="uccl"))   # either layout connects
            conn = ep.accept(timeout=10)
            kv = np.zeros((K, B), np.uint8)
            kv[:] = np.arange(K, dtype=np.uint8)[:, None]
            ep.register(kv)
            qb.put([conn.advertise(kv[i]) for i in range(K)])
            deadline = time.monotonic() + 10
            notes = []
            while not notes and time.monotonic() < deadline:
                notes = ep.notifications()
                time.sleep(0.01)
            return [n.name for n in notes], bool((kv == 200).all())

    def client(qa, qb):
        with tp.Endpoint(1) as ep:
            conn = ep.connect(qa.get())
            local = np.zeros((K, B), np.uint8)
            ep.register(local)
            remote = qb.get(timeout=10)
            conn.readv([(local[i], remote[i]) for i in range(K)])
            ok = all((local[i] == i).all() for i in range(K))
            local[:] = 200
            conn.writev([(local[i], remote[i]) for i in range(K)])
            conn.notify(b"kv", b"written")
            return ok

    (names, written), read_ok = run_pair(server, client)
    assert read_ok and written and names == [b"kv"]


@needs_torch
def test_torch_tensors_through_data_ptr():
    def server(qa, qb):
        import torch
        with tp.Endpoint(0) as ep:
            qa.put(ep.metadata())
            conn = ep.accept(timeout=10)
            t = torch.zeros(4096, dtype=torch.float64)
            with ep.register(t):
                conn.recv(t)
            return float(t.sum())

    def client(qa, qb):
        import torch
        with tp.Endpoint(1) as ep:
            conn = ep.connect(qa.get())
            t = torch.ones(4096, dtype=torch.float64)
            with ep.register(t):
                conn.send(t)
            with pytest.raises(BufferError, match="contiguous"):
                conn.send(torch.ones(8, 8).t())
        return True

    assert run_pair(server, client) == [4096.0, True]


def test_errors_carry_status_codes():
    def body():
        out = {}
        with tp.Endpoint(0) as ep:
            try:
                ep.accept(timeout=0.2)
            except tp.TimedOut as e:
                out["accept"] = (e.code, e.name, isinstance(e, TimeoutError))
            try:
                tp.Endpoint(0, chunk_bytes=64 << 20)
            except tp.InvalidArgument as e:
                out["config"] = (e.code, isinstance(e, ValueError))
            try:
                tp.Endpoint(0, no_such_field=1)
            except tp.InvalidArgument as e:
                out["unknown field"] = "no_such_field" in str(e)
            try:
                ep.connect("127.0.0.1", 0, 1)
            except tp.TcpxError as e:
                out["refused"] = e.name
            try:
                ep.register(b"read-only is fine to send").deregister()
                mr = ep.register(bytearray(16))
                mr.deregister()
                mr.deregister()  # idempotent
                out["reg"] = True
            except tp.TcpxError as e:
                out["reg"] = str(e)
            try:
                tp.parse_metadata(b"xyz")
            except tp.InvalidArgument as e:
                out["metadata"] = e.name
            with pytest.raises(TypeError):
                ep.register(12345)
        try:
            ep.describe_path()
        except tp.NotFound as e:
            out["closed"] = e.name
        return out

    out = run_one(body)
    assert out["accept"] == (3, "TIMED_OUT", True)
    assert out["config"] == (2, True)
    assert out["unknown field"] is True
    assert out["refused"] in ("TRANSPORT_ERROR", "TIMED_OUT", "PEER_CLOSED")
    assert out["reg"] is True
    assert out["metadata"] == "INVALID_ARGUMENT"
    assert out["closed"] == "NOT_FOUND"


def test_closed_connection_unregistered_and_read_only_buffers():
    def server(qa, qb):
        with tp.Endpoint(0) as ep:
            qa.put(ep.metadata())
            conn = ep.accept(timeout=10)
            qb.get(timeout=10)
            return True

    def client(qa, qb):
        out = {}
        with tp.Endpoint(1) as ep:
            conn = ep.connect(qa.get())
            buf = bytearray(64)
            try:
                conn.send(buf)
            except tp.NotFound as e:
                out["unregistered"] = e.name
            ep.register(buf)
            try:
                conn.recv(b"\x00" * 64)
            except BufferError:
                out["read-only"] = True
            conn.close()
            try:
                conn.send(buf)
            except tp.TcpxError as e:
                out["closed conn"] = e.name
            qb.put("done")
        return out

    _, out = run_pair(server, client)
    assert out == {"unregistered": "NOT_FOUND", "read-only": True,
                   "closed conn": out["closed conn"]}
    assert out["closed conn"] in ("NOT_FOUND", "CLOSED")  # closed by this side


def test_killed_peer_raises_peer_closed_within_5s():
    def server(qa, qb):
        with tp.Endpoint(0) as ep:
            qa.put(ep.metadata())
            conn = ep.accept(timeout=10)
            buf = np.zeros(N, np.uint8)
            ep.register(buf)
            t = conn.recv_async(buf)
            qb.put("ready")
            start = time.monotonic()
            try:
                t.wait(timeout=10)
                return "completed?"
            except tp.PeerClosed:
                return time.monotonic() - start

    def victim(qa, qb):
        import os
        import signal
        ep = tp.Endpoint(1)
        ep.connect(qa.get())
        qb.get(timeout=10)
        os.kill(os.getpid(), signal.SIGKILL)

    [elapsed] = run_with_victim(server, victim)
    assert isinstance(elapsed, float) and elapsed < 5.0


def test_cancel_and_deadline_raise_their_errors_and_the_stream_goes_on():
    def server(qa, qb):
        with tp.Endpoint(gpu=0) as ep:
            qa.put(ep.metadata())
            with ep.accept(timeout=10) as conn:
                buf = bytearray(N)
                with ep.register(buf):
                    t = conn.recv_async(buf)          # no send yet: withdrawn at once
                    t.cancel()
                    with pytest.raises(tp.Cancelled) as cancelled:
                        t.wait(timeout=5)
                    t = conn.recv_async(buf)
                    t.set_timeout(0.1)
                    start = time.monotonic()
                    with pytest.raises(tp.TimedOut) as timed_out:
                        t.wait(timeout=5)
                    took = time.monotonic() - start
                    qb.put("go")
                    conn.recv(buf)                    # the client's one send
                    qa.put("received")                # only then may the client close
                return (cancelled.value.name, timed_out.value.name, 0.05 < took < 2.0,
                        bytes(buf[:4]) == b"\x05" * 4)

    def client(qa, qb):
        with tp.Endpoint(gpu=1) as ep:
            with ep.connect(qa.get()) as conn:
                data = np.full(N, 5, np.uint8)
                with ep.register(data):
                    assert qb.get(timeout=10) == "go"
                    conn.send(data)
                    assert qa.get(timeout=10) == "received"
        return True

    (cancelled, timed_out, took_ok, data_ok), ok = run_pair(server, client)
    assert cancelled == "CANCELLED" and timed_out == "TIMED_OUT" and took_ok and data_ok and ok
