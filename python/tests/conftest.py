"""Shared set-up for the Python tests.

Every endpoint lives in a child process: the pytest process never creates
one, so forking it is safe, and each child is a fresh process for the
built-in plugin's strict TCPX emulation (one init per process, a dead peer's
requests never finish: death is detected by the engine's heartbeat). Every
child has a deadline; a hang fails the test instead of stalling the run.
"""
import multiprocessing as mp
import os
import traceback

import pytest

# Before anything creates an endpoint: loopback only, strict plugin, a dead
# peer declared after 1 s (the tests assert failures within 5 s).
os.environ["TCPX_LISTEN_ADDR"] = "127.0.0.1"
os.environ["TCPX_P2P_TCP_STRICT"] = "1"
os.environ.setdefault("TCPX_PEER_TIMEOUT_MS", "1000")
os.environ.setdefault("TCPX_CONNECT_TIMEOUT_MS", "5000")

CHILD_DEADLINE_S = 30
_ctx = mp.get_context("fork")


def _child(fn, args, results):
    try:
        results.put((fn.__name__, "ok", fn(*args)))
    except BaseException as e:  # report KeyboardInterrupt too
        results.put((fn.__name__, "error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))


def run_procs(*fns, victims=(), deadline=CHILD_DEADLINE_S):
    """Runs each fn(queue_a, queue_b) in its own process and returns their
    return values in order; raises if any failed or missed the deadline.
    victims also run but are expected to die (or freeze): their results are
    not awaited, and they are killed at the end."""
    qa, qb, results = _ctx.Queue(), _ctx.Queue(), _ctx.Queue()
    procs = [_ctx.Process(target=_child, args=(fn, (qa, qb), results))
             for fn in fns + tuple(victims)]
    for p in procs:
        p.start()
    out, errors = {}, []
    try:
        for _ in fns:
            name, kind, value = results.get(timeout=deadline)
            if kind == "ok":
                out[name] = value
            else:
                errors.append(f"{name}: {value}")
    except Exception as e:  # queue.Empty: someone hung
        errors.append(f"deadline of {deadline}s passed ({type(e).__name__})")
    finally:
        for p in procs[len(fns):]:
            p.kill()
        for p in procs:
            p.join(2)
            if p.is_alive():
                p.kill()
                p.join()
    if errors:
        pytest.fail("\n".join(errors))
    return [out.get(fn.__name__) for fn in fns]


def run_pair(server, client, deadline=CHILD_DEADLINE_S):
    return run_procs(server, client, deadline=deadline)


def run_with_victim(survivor, victim, deadline=CHILD_DEADLINE_S):
    """[survivor's result]; victim kills or stops itself along the way."""
    return run_procs(survivor, victims=(victim,), deadline=deadline)


def run_one(fn, deadline=CHILD_DEADLINE_S):
    """fn() in a fresh child process."""
    def solo(qa, qb):
        return fn()
    solo.__name__ = fn.__name__
    return run_procs(solo, deadline=deadline)[0]


try:
    import torch  # noqa: F401
    HAVE_TORCH, TORCH_REASON = True, ""
except Exception as e:  # ImportError, or a broken install
    HAVE_TORCH, TORCH_REASON = False, f"torch not importable: {e}"

needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason=TORCH_REASON or "torch")


def poll_until_done(ep, tid):
    """Polls a UCCL-flavoured transfer (uccl.p2p) until it is done; fails the
    test on an error (the child's deadline bounds a transfer that never ends)."""
    while True:
        ok, done = ep.poll_async(tid)
        assert ok, f"transfer {tid} failed"
        if done:
            return
