#!/usr/bin/env python3
"""KV-cache-style transfer between a "prefill" and a "decode" process.

The prefill side holds a KV cache of many fixed-size blocks and advertises
them; the decode side pulls them with readv (one transfer for a batch of
blocks), then pushes results back with writev. Contents are checked, and
GB/s is printed per direction. Uses UCCL's API (``from uccl import p2p``),
so the same script runs on UCCL.

    PYTHONPATH=build/python TCPX_LISTEN_ADDR=127.0.0.1 \\
        python3 examples/python/kv_cache_transfer.py --blocks 512 --block-kib 256
"""
import argparse
import multiprocessing as mp
import sys
import time

import numpy as np

from uccl import p2p


def prefill(args, to_decode, from_decode):
    ep = p2p.Endpoint(0, 4)
    to_decode.put(ep.get_metadata())
    ok, _, _, conn = ep.accept()
    assert ok, "accept failed"
    kv = np.empty((args.blocks, args.block_kib * 1024), np.uint8)
    kv[:] = (np.arange(args.blocks) % 251).astype(np.uint8)[:, None]
    ok, mr = ep.reg(kv.ctypes.data, kv.nbytes)
    assert ok
    ptrs = [kv[i].ctypes.data for i in range(args.blocks)]
    sizes = [kv.shape[1]] * args.blocks
    ok, fifos = ep.advertisev(conn, [mr] * args.blocks, ptrs, sizes, args.blocks)
    assert ok
    to_decode.put(fifos)
    # The decode side reads and writes on its own: nothing to call here.
    assert from_decode.get() == "done"
    return bool((kv == ((np.arange(args.blocks) + 1) % 251).astype(np.uint8)[:, None]).all())


def decode(args, to_decode, from_decode):
    ep = p2p.Endpoint(1, 4)
    ip, port, gpu = p2p.Endpoint.parse_metadata(to_decode.get())
    ok, conn = ep.connect(ip, gpu, remote_port=port)
    assert ok
    kv = np.zeros((args.blocks, args.block_kib * 1024), np.uint8)
    ok, mr = ep.reg(kv.ctypes.data, kv.nbytes)
    assert ok
    fifos = to_decode.get()
    n, bs = args.blocks, args.batch
    ptrs = [kv[i].ctypes.data for i in range(n)]
    sizes = [kv.shape[1]] * n

    def sweep(call):
        start = time.perf_counter()
        for _ in range(args.iters):
            for b in range(0, n, bs):
                k = min(bs, n - b)
                assert call(conn, [mr] * k, ptrs[b:b + k], sizes[b:b + k], fifos[b:b + k], k)
        return kv.nbytes * args.iters / (time.perf_counter() - start) / 1e9

    read_gbs = sweep(ep.readv)
    read_ok = bool((kv == (np.arange(n) % 251).astype(np.uint8)[:, None]).all())
    kv[:] = ((np.arange(n) + 1) % 251).astype(np.uint8)[:, None]
    write_gbs = sweep(ep.writev)
    from_decode.put("done")
    return read_ok, read_gbs, write_gbs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=256)
    ap.add_argument("--block-kib", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32, help="blocks per readv/writev")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="small run (tests)")
    args = ap.parse_args()
    if args.quick:
        args.blocks, args.block_kib, args.iters = 64, 16, 2
    ctx = mp.get_context("fork")
    a, b, results = ctx.Queue(), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=lambda f=f: results.put((f.__name__, f(args, a, b))))
             for f in (prefill, decode)]
    for p in procs:
        p.start()
    out = {}
    try:
        for _ in procs:
            name, value = results.get(timeout=120)
            out[name] = value
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
    read_ok, read_gbs, write_gbs = out["decode"]
    mib = args.blocks * args.block_kib / 1024
    print(f"KV cache {args.blocks} blocks x {args.block_kib} KiB = {mib:.0f} MiB, "
          f"{args.batch} blocks per call, {args.iters} passes")
    print(f"readv  (decode pulls): {read_gbs:6.2f} GB/s  contents {'ok' if read_ok else 'WRONG'}")
    print(f"writev (decode pushes): {write_gbs:6.2f} GB/s  contents {'ok' if out['prefill'] else 'WRONG'}")
    return 0 if read_ok and out["prefill"] else 1


if __name__ == "__main__":
    sys.exit(main())
