"""Cluster replication (spec R10.2): `switch_replication true <nid> [all]` makes every node of a
cluster repeat the writes it executes as primary on another cluster (the replica cluster, reached
through `<nid>`); `all` also copies the records already there; `false` stops it."""
from __future__ import annotations

from cluster_support import stats, two_node_cluster
from romatest import Romad, wait_for


def test_primary_writes_reach_the_replica_cluster_until_switched_off(tmp_path):
    replica = Romad(tmp_path / "replica", engine="memory", address="127.0.0.3").start()
    try:
        with two_node_cluster(tmp_path / "c") as cl:
            a, b = cl.nodes
            for i in range(30):
                assert a.raw(b"set old%d 0 0 3\r\nold\r\n" % i) == b"STORED\r\n"
            # bad arguments, answered alone
            assert a.raw(b"switch_replication\r\n") == b"CLIENT_ERROR number of arguments\r\n"
            assert a.raw(b"switch_replication maybe\r\n") == b"CLIENT_ERROR value must be true or false\r\n"
            assert a.raw(b"switch_replication true %s some\r\n" % replica.node_id.encode()) == \
                b"CLIENT_ERROR [copy target] must be all or nil\r\n"
            assert a.raw(b"switch_replication true\r\n").startswith(b"CLIENT_ERROR")
            # on, relayed to every node
            assert a.raw(b"switch_replication true %s\r\n" % replica.node_id.encode()) == \
                b'{"%s"=>"ACTIVATED", "%s"=>"ACTIVATED"}\r\n' % (b.node_id.encode(), a.node_id.encode())
            for n in (a, b):
                assert stats(n, "run_replication")["write-behind.run_replication"] == "true"
            keys = [b"k%d" % i for i in range(40)]
            for i, k in enumerate(keys):
                assert cl.nodes[i % 2].raw(b"set %s 0 0 2\r\nv%d\r\n" % (k, i % 10)) == b"STORED\r\n"
            assert a.raw(b"append k1 0 0 3\r\n+ap\r\n") == b"STORED\r\n"
            assert b.raw(b"set n 0 0 2\r\n10\r\n") == b"STORED\r\n"
            assert a.raw(b"incr n 5\r\n") == b"15\r\n"
            assert b.raw(b"delete k2\r\n") == b"DELETED\r\n"
            assert a.raw(b"set_expt k3 1\r\n") == b"STORED\r\n"

            def replicated():
                want = {b"k0": b"v0", b"k1": b"v1+ap", b"n": b"15", b"k39": b"v9"}
                return all(replica.raw(b"get %s\r\n" % k) == b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (k, len(v), v)
                           for k, v in want.items()) and replica.raw(b"get k2\r\n") == b"END\r\n"
            wait_for(replicated, 20, "the writes on the replica cluster")
            wait_for(lambda: replica.raw(b"get k3\r\n") == b"END\r\n", 10, "k3 expired there too")
            for k in keys[4:]:
                assert replica.raw(b"get %s\r\n" % k).startswith(b"VALUE %s" % k)
            assert replica.raw(b"get old0\r\n") == b"END\r\n", "without all, earlier records are not copied"
            st = stats(a, r"write-behind\.(replica|replication)")
            assert st["write-behind.replica_nodelist"] == '["%s"]' % replica.node_id
            assert st["write-behind.replica_mklhash"] == replica.raw(b"mklhash 0\r\n").decode().strip()
            delivered = sum(int(stats(n, "replication_delivered")["write-behind.replication_delivered"]) for n in (a, b))
            assert delivered >= 45
            assert all(stats(n, "replication_errors")["write-behind.replication_errors"] == "0" for n in (a, b))
            # all: the records already there too
            assert a.raw(b"switch_replication true %s all\r\n" % replica.node_id.encode()).count(b"ACTIVATED") == 2
            wait_for(lambda: all(replica.raw(b"get old%d\r\n" % i) == b"VALUE old%d 0 3\r\nold\r\nEND\r\n" % i
                                 for i in range(30)), 20, "the existing records copied")
            # off
            assert b.raw(b"switch_replication false\r\n") == \
                b'{"%s"=>"DEACTIVATED", "%s"=>"DEACTIVATED"}\r\n' % (a.node_id.encode(), b.node_id.encode())
            assert stats(a, "run_replication")["write-behind.run_replication"] == "false"
            assert a.raw(b"set after 0 0 1\r\nx\r\n") == b"STORED\r\n"
            assert b.raw(b"get after\r\n") == b"VALUE after 0 1\r\nx\r\nEND\r\n"
            assert replica.raw(b"get after\r\n") == b"END\r\n"
    finally:
        replica.stop()


def test_switching_to_another_replica_cluster_sends_later_writes_there_only(tmp_path):
    src = Romad(tmp_path / "src", engine="memory").start()
    r1 = Romad(tmp_path / "r1", engine="memory", address="127.0.0.2").start()
    r2 = Romad(tmp_path / "r2", engine="memory", address="127.0.0.3").start()
    try:
        me = src.node_id.encode()
        assert src.raw(b"switch_replication true %s\r\n" % r1.node_id.encode()) == b'{"%s"=>"ACTIVATED"}\r\n' % me
        assert src.raw(b"set one 0 0 1\r\n1\r\n") == b"STORED\r\n"
        wait_for(lambda: r1.raw(b"get one\r\n") == b"VALUE one 0 1\r\n1\r\nEND\r\n", 10, "one on r1")
        assert src.raw(b"switch_replication true %s\r\n" % r2.node_id.encode()) == b'{"%s"=>"ACTIVATED"}\r\n' % me
        assert stats(src, "replica_nodelist")["write-behind.replica_nodelist"] == '["%s"]' % r2.node_id
        assert src.raw(b"set two 0 0 1\r\n2\r\n") == b"STORED\r\n"
        wait_for(lambda: r2.raw(b"get two\r\n") == b"VALUE two 0 1\r\n2\r\nEND\r\n", 10, "two on r2")
        assert r1.raw(b"get two\r\n") == b"END\r\n"
        assert r2.raw(b"get one\r\n") == b"END\r\n"
        assert src.raw(b"switch_replication false\r\n") == b'{"%s"=>"DEACTIVATED"}\r\n' % me
        assert stats(src, "replica_nodelist")["write-behind.replica_nodelist"] == "[]"
    finally:
        for n in (src, r1, r2):
            n.stop()
