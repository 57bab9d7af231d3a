"""Join (issue #12 item 2, spec R5.4, R5.8): a third node joins a two-node cluster (rn = 2) with
`romad … -j host:port` while writers run; the vnode copies stream through `reqpushv`/`spushv`.

Checked: routing converges on all three nodes (same `mklhash 0`), every vnode keeps two nodes on
two hosts, every node holds within one of rn × 512 / 3 vnodes and of 512 / 3 primaries, the new
node's TokyoCabinet files hold data (read with `tchmgr`), no write acknowledged before, during or
after the join is lost, and reads of acknowledged keys never miss while the join runs.
"""
from __future__ import annotations

import threading
import time

from cluster_support import Cluster, stat_int, Table
from romatest import Romad, free_port, tchmgr_list, wait_for


def test_join_while_writing_moves_a_full_share_and_loses_nothing(tmp_path):
    cl = Cluster(tmp_path / "c", addresses=("127.0.0.1", "127.0.0.2"))
    cl.start()
    newcomer = None
    try:
        a, b = cl.nodes
        acked: dict[bytes, bytes] = {}
        lock = threading.Lock()
        stop = threading.Event()
        errors: list = []
        misses: list = []

        for i in range(1500):
            k, v = b"pre%d" % i, b"p%05d" % i
            assert cl.nodes[i % 2].raw(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(v), v)) == b"STORED\r\n"
            acked[k] = v

        def writer(node, tag):
            n = 0
            with node.connect() as conn:
                while not stop.is_set() and n < 4000:
                    k, v = b"%s%d" % (tag, n), b"w%06d" % n
                    r = conn.exchange(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(v), v))
                    if r == b"STORED\r\n":
                        with lock:
                            acked[k] = v
                    else:
                        errors.append((k, r))
                    n += 1
                    time.sleep(0.002)  # a steady stream through the whole join, not a flood

        def reader(node):
            i = 0
            with node.connect() as conn:
                while not stop.is_set():
                    k = b"pre%d" % (i % 1500)
                    r = conn.exchange(b"get %s\r\n" % k)
                    if r != b"VALUE %s 0 6\r\n%s\r\nEND\r\n" % (k, acked[k]):
                        misses.append((k, r))
                    i += 1
                    time.sleep(0.002)

        threads = [threading.Thread(target=writer, args=(a, b"wa")), threading.Thread(target=writer, args=(b, b"wb")),
                   threading.Thread(target=reader, args=(a,)), threading.Thread(target=reader, args=(b,))]
        for t in threads:
            t.start()
        time.sleep(0.5)
        newcomer = Romad(tmp_path / "c" / "node3", engine="tc", port=free_port("127.0.0.3"), storage_path=cl.storage,
                         address="127.0.0.3",
                         extra_args=["--rttable-path", str(cl.rttable.resolve()), "-j", f"127.0.0.1:{a.port}"])
        newcomer.start()
        cl.nodes.append(newcomer)
        wait_for(lambda: newcomer.raw(b"stat run_join\r\n") == b"stats.run_join false\r\nEND\r\n", 120.0, "the join to end")
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        assert not errors, errors[:5]
        assert not misses, misses[:5]
        wait_for(lambda: len({n.raw(b"mklhash 0\r\n") for n in cl.nodes}) == 1, 30.0, "routing to converge")
        table = Table(a.raw(b"routingdump json\r\n"))
        nodes = [n.node_id for n in cl.nodes]
        assert sorted(table.nodes) == sorted(nodes)
        total = {n: 0 for n in nodes}
        prim = {n: 0 for n in nodes}
        for vn, lst in table.v_idx.items():
            assert len(lst) == 2 and len({x.split("_")[0] for x in lst}) == 2, (vn, lst)
            prim[lst[0]] += 1
            for x in lst:
                total[x] += 1
        for n in nodes:
            assert abs(total[n] - 2 * 512 / 3) <= 1, total
            assert abs(prim[n] - 512 / 3) <= 1, prim
        # nothing lost: every acknowledged key through every node
        with lock:
            items = list(acked.items())
        assert len(items) > 1500
        for node in cl.nodes:
            with node.connect() as conn:
                for k, v in items:
                    assert conn.exchange(b"get %s\r\n" % k) == b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (k, len(v), v), (node.node_id, k)
        for n in cl.nodes:
            assert stat_int(n, "stats.replication_dropped") == 0
        # the newcomer's own files hold its share (read after a clean stop)
        problems = cl.stop(check=True)
        assert not problems, problems
        held = {}
        for f in (cl.storage / newcomer.node_id / "roma").glob("[0-9].tc"):
            held.update(tchmgr_list(f))
        mine = [k for k, _ in items if newcomer.node_id in table.nodes_for(k)]
        assert len(mine) > len(items) // 2, "the newcomer is in two thirds of the vnodes"
        missing = [k for k in mine if k not in held]
        assert not missing, missing[:5]
    finally:
        cl.stop(check=False)
        cl.cleanup()
