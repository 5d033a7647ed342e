#!/usr/bin/env python3
"""Per-call overhead of the Python layer, next to tcpx-bench in the same run.

  8-byte ping-pong with blocking send/recv through uccl.p2p, one-way µs,
      vs `tcpx-bench --latency` (the same loop in C++), best batch of each;
  1 MiB sends with 32 in flight through tcpx_p2p (send_async + wait), GB/s,
      vs `tcpx-bench --mode send --sizes 1M --window 32`.

    PYTHONPATH=build/python TCPX_LISTEN_ADDR=127.0.0.1 \\
        python3 examples/python/bench_overhead.py --bench build/bin/tcpx-bench --rounds 3
"""
import argparse
import collections
import multiprocessing as mp
import os
import re
import subprocess
import time

import numpy as np

LAT_ITERS = 2000   # per batch; the best of LAT_BATCHES batches is kept,
LAT_BATCHES = 10   # which filters out other processes stealing the CPU
MIB = 1 << 20
WINDOW = 32


def py_latency(_):
    from uccl import p2p
    ctx = mp.get_context("fork")
    q = ctx.Queue()

    def server():
        ep = p2p.Endpoint(0, 4)
        q.put(ep.get_metadata())
        ok, _, _, c = ep.accept()
        b = np.zeros(8, np.uint8)
        _, mr = ep.reg(b.ctypes.data, 8)
        for _ in range(LAT_ITERS * LAT_BATCHES + 100):
            ep.recv(c, mr, b.ctypes.data, 8)
            ep.send(c, mr, b.ctypes.data, 8)

    s = ctx.Process(target=server)
    s.start()
    ep = p2p.Endpoint(1, 4)
    ok, c = ep.connect(q.get())
    b = np.frombuffer(bytearray(b"pingpong"), np.uint8)
    _, mr = ep.reg(b.ctypes.data, 8)
    send, recv, ptr = ep.send, ep.recv, b.ctypes.data
    for _ in range(100):
        send(c, mr, ptr, 8)
        recv(c, mr, ptr, 8)
    best = float("inf")
    for _ in range(LAT_BATCHES):
        t0 = time.perf_counter()
        for _ in range(LAT_ITERS):
            send(c, mr, ptr, 8)
            recv(c, mr, ptr, 8)
        best = min(best, (time.perf_counter() - t0) / LAT_ITERS * 1e6)
    s.join(10)
    assert bytes(b) == b"pingpong"
    return best / 2


def py_bandwidth(seconds):
    import tcpx_p2p as tp
    ctx = mp.get_context("fork")
    q = ctx.Queue()

    def server():
        with tp.Endpoint(0) as ep:
            q.put(ep.metadata())
            conn = ep.accept()
            buf = np.zeros(MIB, np.uint8)
            ep.register(buf)
            core, mr = ep._ep, ep._ep.find_mr(buf.ctypes.data, MIB)
            n = q.get()
            live = collections.deque()
            for i in range(n):
                live.append(core.recv_async(conn.id, mr, buf.ctypes.data, MIB))
                if len(live) == WINDOW:
                    core.wait(live.popleft())
            while live:
                core.wait(live.popleft())

    s = ctx.Process(target=server)
    s.start()
    with tp.Endpoint(1) as ep:
        conn = ep.connect(q.get())
        buf = np.ones(MIB, np.uint8)
        ep.register(buf)
        core, mr = ep._ep, ep._ep.find_mr(buf.ctypes.data, MIB)
        n = max(WINDOW, int(seconds * 1.5e3))  # about `seconds` at 1.5 GB/s
        q.put(n)
        live = collections.deque()
        t0 = time.perf_counter()
        for i in range(n):
            live.append(core.send_async(conn.id, mr, buf.ctypes.data, MIB))
            if len(live) == WINDOW:
                core.wait(live.popleft())
        while live:
            core.wait(live.popleft())
        gbs = n * MIB / (time.perf_counter() - t0) / 1e9
    s.join(10)
    return gbs


def cpp(bench, args):
    port = 47000 + os.getpid() % 1000
    server = subprocess.Popen([bench, "--server", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        out = subprocess.run([bench, "--client", f"127.0.0.1:{port}"] + args,
                             capture_output=True, text=True, timeout=120).stdout
    finally:
        server.kill()
        server.wait()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default="build/bin/tcpx-bench")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3)
    a = ap.parse_args()
    print(f"{'round':>5} {'py 8B us':>9} {'C++ 8B us':>10} {'added us':>9} "
          f"{'py 1M GB/s':>11} {'C++ 1M GB/s':>12} {'py/C++':>7}")
    for r in range(a.rounds):
        py_us = py_latency(None)
        cpp_us = min(float(re.search(r"latency 8 B: ([\d.]+) us one-way",
                                     cpp(a.bench, ["--latency", "--iters", str(LAT_ITERS)])).group(1))
                     for _ in range(LAT_BATCHES // 2))
        py_gbs = py_bandwidth(a.seconds)
        out = cpp(a.bench, ["--mode", "send", "--sizes", "1M", "--seconds", str(a.seconds),
                            "--window", str(WINDOW)])
        cpp_gbs = float(re.search(r"^send\s+\S+\s+([\d.]+)", out, re.M).group(1))
        print(f"{r:>5} {py_us:9.2f} {cpp_us:10.2f} {py_us - cpp_us:9.2f} "
              f"{py_gbs:11.3f} {cpp_gbs:12.3f} {py_gbs / cpp_gbs:7.3f}", flush=True)


if __name__ == "__main__":
    main()
