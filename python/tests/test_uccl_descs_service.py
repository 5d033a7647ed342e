"""uccl.p2p's transfer() with numpy buffers (no torch needed): the descriptor
round trip is answered by each connection's message service, which the engine
runs on its progress path. So a connection costs neither side a thread
(counted from /proc/self/status), and the target process calls nothing while
the initiator reads and writes its memory over several connections."""
import numpy as np

from conftest import poll_until_done, run_pair
from uccl import p2p

N = 1 << 16  # float32 elements: 256 KiB
CONNS = 3


def _threads():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


def test_transfer_costs_no_thread_per_connection():
    def target(qa, qb):
        ep = p2p.Endpoint()
        assert ep.start_passive_accept()  # one accept thread per endpoint
        src = np.arange(N, dtype=np.float32)
        dst = np.zeros(N, np.float32)
        descs = ep.register_memory([src, dst])
        qa.put("warm")  # starts this queue's feeder thread before counting
        before = _threads()
        qa.put((ep.get_metadata(), ep.get_serialized_descs(descs)))
        # Nothing is called here while the initiator works.
        assert qb.get(timeout=20) == "done"
        after = _threads()
        qa.put("counted")  # the initiator keeps its connections until now
        return before, after, bool((dst == 5).all())

    def initiator(qa, qb):
        ep = p2p.Endpoint(1)
        assert qa.get(timeout=20) == "warm"
        md, blob = qa.get(timeout=20)
        remote = ep.deserialize_descs(blob)
        got = np.zeros(N, np.float32)
        five = np.full(N, 5.0, np.float32)
        local = ep.register_memory([got, five])
        before = _threads()
        reads_ok = []
        for i in range(CONNS):
            ok, conn = ep.connect(md)
            assert ok
            got[:] = 0
            ok, tid = ep.transfer(conn, "read", [local[0]], [remote[0]])
            assert ok
            poll_until_done(ep, tid)
            reads_ok.append(bool((got == np.arange(N, dtype=np.float32)).all()))
        ok, tid = ep.transfer(conn, "write", [local[1]], [remote[1]])
        assert ok
        poll_until_done(ep, tid)
        after = _threads()
        qb.put("done")
        assert qa.get(timeout=20) == "counted"
        return before, after, reads_ok

    (t_before, t_after, written), (i_before, i_after, reads) = run_pair(target, initiator)
    print(f"threads: target {t_before} -> {t_after}, initiator {i_before} -> {i_after} with {CONNS} connections")
    assert written
    assert reads == [True] * CONNS
    assert t_after == t_before, f"target: {t_before} threads before, {t_after} with {CONNS} connections"
    assert i_after == i_before, f"initiator: {i_before} threads before, {i_after} with {CONNS} connections"
