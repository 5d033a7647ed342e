"""uccl.p2p: UCCL's Python API, two processes on loopback. Server and client
bodies are written the way UCCL's own p2p tests and benchmarks use the API."""
import os
import signal
import socket
import struct
import time

import numpy as np
import pytest

from conftest import (HAVE_TORCH, TORCH_REASON, needs_torch, poll_until_done, run_one, run_pair,
                      run_with_victim)
from uccl import p2p

N = 1 << 16  # float32 elements: 256 KiB, above the eager limit


def _accept(ep):
    ok, ip, gpu, conn = ep.accept()
    assert ok and ip == "127.0.0.1" and gpu == 1
    return conn


def _connect(ep, md):
    ip, port, gpu = p2p.Endpoint.parse_metadata(md)
    ok, conn = ep.connect(ip, gpu, remote_port=port)
    assert ok
    return conn


def test_send_recv_numpy_with_recv_clamped_to_registration():
    def server(qa, qb):
        ep = p2p.Endpoint(0, 4)
        qa.put(ep.get_metadata())
        conn = _accept(ep)
        a = np.zeros(N, np.float32)
        ok, mr = ep.reg(a.ctypes.data, a.nbytes)
        assert ok
        # UCCL's tests pass a size beyond the buffer; it is clamped.
        assert ep.recv(conn, mr, a.ctypes.data, a.nbytes * 2)
        return bool((a == np.arange(N, dtype=np.float32)).all())

    def client(qa, qb):
        ep = p2p.Endpoint(1, 4)
        conn = _connect(ep, qa.get())
        b = np.arange(N, dtype=np.float32)
        ok, mr = ep.reg(b.ctypes.data, b.nbytes)
        assert ok
        return ep.send(conn, mr, b.ctypes.data, b.nbytes)

    assert run_pair(server, client) == [True, True]


@needs_torch
def test_send_recv_torch_cpu_tensors_and_async_poll():
    def server(qa, qb):
        import torch
        ep = p2p.Endpoint(local_gpu_idx=0, num_cpus=4)
        qa.put(bytes(ep.get_metadata()))
        conn = _accept(ep)
        t = torch.zeros(N, dtype=torch.float32)
        ok, mr = ep.reg(t.data_ptr(), t.numel() * 4)
        assert ok
        ok, tid = ep.recv_async(conn, mr, t.data_ptr(), t.numel() * 4)
        assert ok
        poll_until_done(ep, tid)
        return bool(t.allclose(torch.full((N,), 3.0)))

    def client(qa, qb):
        import torch
        ep = p2p.Endpoint(local_gpu_idx=1, num_cpus=4)
        conn = _connect(ep, qa.get())
        t = torch.full((N,), 3.0, dtype=torch.float32)
        ok, mr = ep.reg(t.data_ptr(), t.numel() * 4)
        assert ok
        ok, tid = ep.send_async(conn, mr, t.data_ptr(), t.numel() * 4)
        assert ok
        poll_until_done(ep, tid)
        return True

    assert run_pair(server, client) == [True, True]


def test_read_and_write_through_advertise():
    def server(qa, qb):
        ep = p2p.Endpoint(0, 4)
        qa.put(ep.get_metadata())
        conn = _accept(ep)
        src = np.arange(N, dtype=np.float32)      # the client reads this
        dst = np.zeros(N, np.float32)             # the client writes this
        ok, mr_src = ep.reg(src.ctypes.data, src.nbytes)
        ok2, mr_dst = ep.reg(dst.ctypes.data, dst.nbytes)
        assert ok and ok2
        ok, fifo_src = ep.advertise(conn, mr_src, src.ctypes.data, src.nbytes)
        ok2, fifo_dst = ep.advertise(conn, mr_dst, dst.ctypes.data, dst.nbytes)
        assert ok and ok2 and len(fifo_src) == 64 and len(fifo_dst) == 64
        qb.put((fifo_src, fifo_dst))
        assert qa.get(timeout=20) == "written"   # the target calls nothing else
        return bool((dst == -np.arange(N, dtype=np.float32)).all())

    def client(qa, qb):
        ep = p2p.Endpoint(1, 4)
        conn = _connect(ep, qa.get())
        buf = np.zeros(N, np.float32)
        ok, mr = ep.reg(buf.ctypes.data, buf.nbytes)
        assert ok
        fifo_src, fifo_dst = qb.get(timeout=20)
        assert ep.read(conn, mr, buf.ctypes.data, buf.nbytes, fifo_src)
        read_ok = bool((buf == np.arange(N, dtype=np.float32)).all())
        buf[:] = -buf
        ok, tid = ep.write_async(conn, mr, buf.ctypes.data, buf.nbytes, fifo_dst)
        assert ok
        poll_until_done(ep, tid)
        qa.put("written")
        return read_ok

    assert run_pair(server, client) == [True, True]


def test_vector_calls():
    K, B = 8, 4096  # blocks of 4096 float32

    def server(qa, qb):
        ep = p2p.Endpoint(0, 4)
        qa.put(ep.get_metadata())
        conn = _accept(ep)
        blocks = [np.zeros(B, np.float32) for _ in range(K)]
        ok, mrs = ep.regv([b.ctypes.data for b in blocks], [b.nbytes for b in blocks])
        assert ok and len(mrs) == K
        ptrs, sizes = [b.ctypes.data for b in blocks], [b.nbytes for b in blocks]
        # Two-sided vectors, blocking then async.
        assert ep.recvv(conn, mrs, ptrs, sizes, K)
        got1 = all((b == i).all() for i, b in enumerate(blocks))
        ok, tid = ep.recvv_async(conn, mrs, ptrs, sizes, K)
        assert ok
        poll_until_done(ep, tid)
        got2 = all((b == 100 + i).all() for i, b in enumerate(blocks))
        # One-sided: the client reads these blocks, then writes them.
        for i, b in enumerate(blocks):
            b[:] = 1000 + i
        ok, fifos = ep.advertisev(conn, mrs, ptrs, sizes, K)
        assert ok and len(fifos) == K
        qb.put(fifos)
        assert qa.get(timeout=20) == "written"
        got3 = all((b == 2000 + i).all() for i, b in enumerate(blocks))
        return got1, got2, got3

    def client(qa, qb):
        ep = p2p.Endpoint(1, 4)
        conn = _connect(ep, qa.get())
        blocks = [np.full(B, i, np.float32) for i in range(K)]
        ok, mrs = ep.regv([b.ctypes.data for b in blocks], [b.nbytes for b in blocks])
        assert ok
        ptrs, sizes = [b.ctypes.data for b in blocks], [b.nbytes for b in blocks]
        assert ep.sendv(conn, mrs, ptrs, sizes, K)
        for i, b in enumerate(blocks):
            b[:] = 100 + i
        ok, tid = ep.sendv_async(conn, mrs, ptrs, sizes, K)
        assert ok
        poll_until_done(ep, tid)
        fifos = qb.get(timeout=20)
        assert ep.readv(conn, mrs, ptrs, sizes, fifos, K)
        read_ok = all((b == 1000 + i).all() for i, b in enumerate(blocks))
        for i, b in enumerate(blocks):
            b[:] = 2000 + i
        ok, tid = ep.writev_async(conn, mrs, ptrs, sizes, fifos, K)
        assert ok
        poll_until_done(ep, tid)
        qa.put("written")
        return read_ok

    assert run_pair(server, client) == [(True, True, True), True]


def test_parse_metadata_both_layouts_by_hand():
    v4 = socket.inet_pton(socket.AF_INET, "10.1.2.3") + struct.pack("!H", 28900) + struct.pack("i", 3)
    assert p2p.Endpoint.parse_metadata(v4) == ("10.1.2.3", 28900, 3)
    v6 = socket.inet_pton(socket.AF_INET6, "fe80::1") + struct.pack("!H", 443) + struct.pack("i", 7)
    assert p2p.Endpoint.parse_metadata(v6) == ("fe80::1", 443, 7)
    with pytest.raises(RuntimeError, match="10 .*22"):
        p2p.Endpoint.parse_metadata(b"\x00" * 11)


@pytest.mark.parametrize("addr", ["127.0.0.1", "::1"])
def test_metadata_round_trip_and_connect(addr, monkeypatch):
    monkeypatch.setenv("TCPX_LISTEN_ADDR", addr)

    def server(qa, qb):
        ep = p2p.Endpoint(2, 4)
        md = ep.get_metadata()
        qa.put(md)
        ok, ip, gpu, conn = ep.accept()
        return len(md), ok, ip, gpu

    def client(qa, qb):
        ep = p2p.Endpoint(5, 4)
        md = qa.get()
        ip, port, gpu = p2p.Endpoint.parse_metadata(md)
        fam = socket.AF_INET6 if len(md) == 22 else socket.AF_INET
        alen = 16 if len(md) == 22 else 4
        # UCCL's layout, byte for byte.
        assert md[:alen] == socket.inet_pton(fam, addr)
        assert struct.unpack("!H", md[alen:alen + 2])[0] == port
        assert struct.unpack("i", md[alen + 2:])[0] == 2
        ok, conn = ep.connect(md)  # the metadata overload
        return ip, gpu, ok

    (n, ok, ip, gpu), (cip, cgpu, cok) = run_pair(server, client)
    assert n == (22 if ":" in addr else 10)
    assert ok and cok and ip == addr and gpu == 5
    assert (cip, cgpu) == (addr, 2)


def test_get_oob_ip_follows_listen_addr():
    assert p2p.get_oob_ip() == "127.0.0.1"


def test_bad_arguments_give_clean_errors():
    def body():
        ep = p2p.Endpoint(0, 4)
        a = np.zeros(64, np.uint8)
        ok, mr = ep.reg(a.ctypes.data, a.nbytes)
        assert ok
        with pytest.raises(TypeError):
            ep.reg("not a pointer", 8)
        with pytest.raises(TypeError):
            ep.send(1, mr, a.ctypes.data)            # missing size
        with pytest.raises(RuntimeError, match="64 bytes"):
            ep.read(1, mr, a.ctypes.data, 64, b"short")
        with pytest.raises(RuntimeError, match="num_iovs"):
            ep.sendv(1, [mr], [a.ctypes.data], [64, 64], 1)
        with pytest.raises(RuntimeError, match="must match"):
            ep.regv([a.ctypes.data], [])
        results = {
            "unknown conn send": ep.send(12345, mr, a.ctypes.data, 64),
            "unknown conn recv_async": ep.recv_async(12345, mr, a.ctypes.data, 64)[0],
            "unknown mr advertise": ep.advertise(12345, 999, a.ctypes.data, 64),
            "unknown transfer": ep.poll_async(424242),
            "unknown group": ep.poll_async((1 << 63) | 77),
            "dereg unknown": ep.dereg(999),
            "port -1 without TCPX_LISTEN_PORT": ep.connect("127.0.0.1", 0),
            "nobody listening": ep.connect("127.0.0.1", 0, remote_port=1),
        }
        assert ep.dereg(mr)
        ep.close()
        results["after close"] = ep.reg(a.ctypes.data, a.nbytes)
        return results

    r = run_one(body)
    assert r["unknown conn send"] is False
    assert r["unknown conn recv_async"] is False
    assert r["unknown mr advertise"] == (False, b"")
    assert r["unknown transfer"] == (False, True)      # final, failed: loops end
    assert r["unknown group"] == (False, True)
    assert r["dereg unknown"] is False
    assert r["port -1 without TCPX_LISTEN_PORT"] == (False, 0)
    assert r["nobody listening"][0] is False
    assert r["after close"][0] is False


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGSTOP"])
def test_dead_peer_fails_blocking_recv_within_5s(sig):
    """SIGKILL: the kernel closes the peer's sockets. SIGSTOP: a frozen peer
    whose kernel still acknowledges; only the engine's heartbeat
    (TCPX_PEER_TIMEOUT_MS=1000 here) notices."""
    def server(qa, qb):
        ep = p2p.Endpoint(0, 4)
        qa.put(ep.get_metadata())
        conn = _accept(ep)
        a = np.zeros(N, np.float32)
        ok, mr = ep.reg(a.ctypes.data, a.nbytes)
        qb.put("ready")
        start = time.monotonic()
        ok = ep.recv(conn, mr, a.ctypes.data, a.nbytes)   # the peer dies instead
        return ok, time.monotonic() - start

    def victim(qa, qb):
        ep = p2p.Endpoint(1, 4)
        _connect(ep, qa.get())
        qb.get(timeout=20)
        time.sleep(0.2)
        os.kill(os.getpid(), getattr(signal, sig))

    [(ok, elapsed)] = run_with_victim(server, victim)
    assert ok is False
    assert elapsed < 5.0


def test_ctrl_c_interrupts_accept():
    """SIGINT while accept() waits: KeyboardInterrupt within a slice."""
    import subprocess
    import sys
    script = (
        "import sys, time\n"
        "from uccl import p2p\n"
        "ep = p2p.Endpoint(0, 4)\n"
        "print('ready', flush=True)\n"
        "try:\n"
        "    ep.accept()\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
        "    sys.exit(0)\n"
        "sys.exit(3)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=5)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 0 and "interrupted" in out
    assert took < 2.0


def test_newer_api_register_memory_and_transfer():
    def server(qa, qb):
        ep = p2p.Endpoint()
        assert ep.start_passive_accept()
        src = np.arange(N, dtype=np.float32)
        dst = np.zeros(N, np.float32)
        descs = ep.register_memory([src, dst])
        assert all(d.mr_id != 2**64 - 1 for d in descs)
        qa.put((ep.get_metadata(), ep.get_serialized_descs(descs)))
        assert qb.get(timeout=20) == "done"
        return bool((dst == 5).all())

    def client(qa, qb):
        import torch
        ep = p2p.Endpoint(1)
        md, blob = qa.get()
        ok, conn = ep.add_remote_endpoint(md)
        assert ok and ep.add_remote_endpoint(md) == (True, conn)  # once per peer
        remote = ep.deserialize_descs(blob)
        assert [d.size for d in remote] == [N * 4, N * 4]
        t = torch.zeros(N, dtype=torch.float32)
        w = torch.full((N,), 5.0)
        local = ep.register_memory([t, w])
        ok, tid = ep.transfer(conn, "read", [local[0]], [remote[0]])
        assert ok
        poll_until_done(ep, tid)
        read_ok = bool(t.equal(torch.arange(N, dtype=torch.float32)))
        ok, tid = ep.transfer(conn, "write", [local[1]], [remote[1]])
        assert ok
        poll_until_done(ep, tid)
        with pytest.raises(RuntimeError, match="op_name"):
            ep.transfer(conn, "copy", [local[0]], [remote[0]])
        with pytest.raises(RuntimeError, match="Invalid serialized"):
            ep.deserialize_descs(b"junk")
        # A region the peer never registered: the peer refuses, we get False.
        bogus = p2p.XferDesc()
        bogus.addr, bogus.size = 4096, 64
        bad = ep.transfer(conn, "read", [local[0]], [bogus])
        ep.deregister_memory(local)
        qb.put("done")
        return read_ok, bad[0]

    if not HAVE_TORCH:
        pytest.skip(TORCH_REASON)
    assert run_pair(server, client) == [True, (True, False)]
