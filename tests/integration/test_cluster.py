"""A 3-node cluster (127.0.0.1/2/3, rn = 2, route files from our mkroute): forwarding,
replication, routing agreement, peer commands, a stopped replica, pymemcache through any node.

Spec: ROMA.md R1.4, R2.1, R2.7, R2.8, R3.7, R3.9, R4.2-R4.8, R5.1, R5.2; recordings of the Ruby
peer protocol: tests/reference/ruby-peer/peer-commands.md (cited as "rec #<row>").

The module cluster is shared by the tests that leave it as it was (unique keys per test); the
tests that stop nodes (SIGTERM to read the files, SIGSTOP) or start them one by one start their own.
MKROUTE_BIN selects mkroute (default: next to ROMAD_BIN). Run alone:
  ROMAD_BIN=.build/debug/romad .venv/bin/python -m pytest -q tests/integration/test_cluster.py
"""
from __future__ import annotations

import concurrent.futures
import random
import re
import signal
import time
import uuid

import pytest

from cluster_support import (EXPT_FOREVER, N_VNODES, VNODE_SHIFT, Cluster, Table, finish_cluster,
                             get_reply, gets_reply, key_info_reply, parse_routingdump_bin, parse_values,
                             ruby_inspect_list, set_cmd, start_cluster, stat_int, stats, timed)
from romatest import decode_record, digest32, division_of_key, tchmgr_list, vnode_of, wait_for

INCONSISTENT = b"SERVER_ERROR Routing table is inconsistent.\r\n"
FORWARD_FAILED = b"SERVER_ERROR Message forward failed.\r\n"
OLD_TABLE = b"SERVER_ERROR It's old table.\r\n"
EXPT_FOREVER_TEXT = b"2038-01-19 03:14:07 +0000"  # Time#to_s of 0x7fffffff, TZ=UTC (romatest pins it)


def uniq(tag: str = "") -> str:
    return f"c{uuid.uuid4().hex[:8]}{tag}_"


# ==============================================================================================
# fixtures
# ==============================================================================================
@pytest.fixture(scope="module")
def module_cluster(tmp_path_factory):
    c = start_cluster(tmp_path_factory.mktemp("cluster"))
    yield c
    problems = finish_cluster(c)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def cl(module_cluster):
    for n in module_cluster.nodes:
        assert n.alive(), f"{n.node_id} of the shared cluster died in an earlier test:\n{n.log_text()[-5000:]}"
    return module_cluster


@pytest.fixture
def cluster_factory(tmp_path):
    made = []

    def make(*extra_args):
        c = start_cluster(tmp_path / f"cluster{len(made) + 1}", extra_args)
        made.append(c)
        return c

    yield make
    problems = []
    for c in made:
        problems += finish_cluster(c)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def conns(cluster):
    return [n.connect() for n in cluster.nodes]


def close_all(cs):
    for c in cs:
        c.close()


# ==============================================================================================
# 3. routing agreement (first: the clocks are still those of mkroute)
# ==============================================================================================
def test_routing_tables_agree_on_every_node(cl):
    nids = cl.nids
    assert nids == sorted(nids)
    # mkroute (R4.2): one route file per node, the two lines ROMA prints
    assert cl.mkroute_result.stdout == (f"nodes => {ruby_inspect_list(nids)}\n"
                                        f"Routing table has created.\n").encode(), cl.mkroute_result

    dumps = [n.raw(b"routingdump json\r\n") for n in cl.nodes]
    for n, d in zip(cl.nodes, dumps):
        assert d == dumps[0], f"routingdump json of {n.node_id} differs from {nids[0]}'s"
    prefix = (b'[{"dgst_bits":32,"div_bits":9,"rn":2},["%s","%s","%s"],{"0":['
              % tuple(x.encode() for x in nids))
    assert dumps[0].startswith(prefix), dumps[0][:200]
    t = Table(dumps[0])
    assert t.meta == {"dgst_bits": 32, "div_bits": 9, "rn": 2}
    assert t.nodes == nids
    assert sorted(t.v_idx) == [i << VNODE_SHIFT for i in range(N_VNODES)]
    for vn, lst in t.v_idx.items():
        assert len(lst) == 2 and set(lst) <= set(nids), f"vnode {vn}: {lst}"
        assert lst[0].split("_")[0] != lst[1].split("_")[0], f"vnode {vn}: both replicas on one host {lst}"

    # nodelist (R3.14), mklhash 0 (R4.7: computed from the table)
    for n in cl.nodes:
        assert n.raw(b"nodelist\r\n") == (" ".join(nids) + "\r\n").encode(), n.node_id
        assert n.raw(b"mklhash 0\r\n") == t.merkle_root().encode() + b"\r\n", n.node_id

    # getroute <vn> for every vnode on every node: "<clk-1> <nid>..." with mkroute's clock 0 (rec #1)
    expected = b"".join(b"-1 %s\r\n" % " ".join(t.v_idx[i << VNODE_SHIFT]).encode()
                        for i in range(N_VNODES))
    request = b"".join(b"getroute %d\r\n" % (i << VNODE_SHIFT) for i in range(N_VNODES))
    for n in cl.nodes:
        with n.connect() as c:
            assert c.exchange(request, timeout=20) == expected, f"getroute on {n.node_id}"
            assert c.exchange(b"getroute 1\r\n") == b"END\r\n"              # not a vnode id (rec #4)
            assert c.exchange(b"getroute 4294967296\r\n") == b"END\r\n"     # out of range (rec #5)

    # routingdump bin (R4.8): parses, same table, clocks 0, identical on every node
    bins = [n.raw(b"routingdump bin\r\n") for n in cl.nodes]
    for n, b in zip(cl.nodes, bins):
        assert b == bins[0], f"routingdump bin of {n.node_id} differs"
    dgst, div, rn, bnodes, vnodes = parse_routingdump_bin(bins[0])
    assert (dgst, div, rn, bnodes) == (32, 9, 2, nids)
    for i, (clk, lst) in enumerate(vnodes):
        assert (clk, lst) == (0, t.v_idx[i << VNODE_SHIFT]), f"vnode {i << VNODE_SHIFT} in routingdump bin"

    # stat routing (rec #54-56): the same table seen from each node
    for n in cl.nodes:
        s = stats(n, "routing")
        nid = n.node_id
        assert s["routing.redundant"] == "2"
        assert s["routing.nodes.length"] == "3"
        assert s["routing.nodes"] == ruby_inspect_list(nids)
        assert s["routing.vnodes.length"] == "512"
        assert s["routing.primary"] == str(sum(1 for l in t.v_idx.values() if l[0] == nid)), nid
        assert s["routing.secondary1"] == str(sum(1 for l in t.v_idx.values() if l[1] == nid)), nid
        assert s["routing.short_vnodes"] == "0" and s["routing.lost_vnodes"] == "0"


# ==============================================================================================
# 1. every command through every node gives the same answers
# ==============================================================================================
def test_reads_through_every_node_give_the_same_bytes(cl):
    p = uniq().encode()
    keys = [b"%sk%02d" % (p, i) for i in range(50)]
    rnd = random.Random(1)
    values = {k: b"v%d-" % i + bytes(rnd.randrange(256) for _ in range(i % 17)) + b"\r\nEND\r\n"[: i % 8]
              for i, k in enumerate(keys)}
    t = cl.table()
    cs = conns(cl)
    try:
        for i, k in enumerate(keys):
            via = cs[i % 3]
            assert via.exchange(set_cmd(k, values[k])) == b"STORED\r\n", \
                f"set {k!r} through {cl.nodes[i % 3].node_id} (list {t.nodes_for(k)})"
        for k in keys:
            for n, c in zip(cl.nodes, cs):
                where = f"{k!r} via {n.node_id}, node list {t.nodes_for(k)}"
                assert c.exchange(b"get %s\r\n" % k) == get_reply(k, values[k]), where
                # first write of a key: logical clock 0 = cas unique (R2.7, R3.10; rec #76)
                assert c.exchange(b"gets %s\r\n" % k) == gets_reply(k, values[k], 0), where
                assert c.exchange(b"get_expt %s unix\r\n" % k) == b"%d\r\nEND\r\n" % EXPT_FOREVER, where
                assert c.exchange(b"get_expt %s\r\n" % k) == EXPT_FOREVER_TEXT + b"\r\nEND\r\n", where
                assert c.exchange(b"get_key_info %s\r\n" % k) == key_info_reply(k, t.nodes_for(k)), where
        # multi-key get/gets: grouped per node, local group first (rec #76-80): compare as sets;
        missing = p + b"missing"
        for g in range(0, 50, 10):
            group = keys[g:g + 10]
            assert len({t.nodes_for(k)[0] for k in group}) >= 2, "test keys should span several primaries"
            # multi-key get: memcached's format, no cas (as on one node, test_protocol_exact issue (a))
            for cmd, cas in ((b"get", None), (b"gets", 0)):
                want = sorted((k, 0, values[k], cas) for k in group)
                line = cmd + b" " + b" ".join(group + [missing]) + b"\r\n"
                for n, c in zip(cl.nodes, cs):
                    got = parse_values(c.exchange(line))
                    assert len(got) == 10, f"{cmd!r} of 10 keys + 1 missing via {n.node_id}: {got!r}"
                    assert sorted(got, key=repr) == sorted(want, key=repr), f"{cmd!r} via {n.node_id}"
        # the unsuffixed and the \x1Broma-suffixed key name the same record (R1.3); gets strips it
        k = keys[0]
        for n, c in zip(cl.nodes, cs):
            assert c.exchange(b"get %s\x1broma\r\n" % k) == get_reply(k + b"\x1broma", values[k]), n.node_id
            assert c.exchange(b"gets %s\x1broma\r\n" % k) == gets_reply(k, values[k], 0), n.node_id
    finally:
        close_all(cs)


def _write_scenario(cl, via, keys):
    """Every write command through ``via`` on keys whose node list gives ``via`` the same role;
    exact replies, and the result read back through every node after each group."""
    k, k_new, k_absent = keys
    t = cl.table()

    def everywhere(request, expected, what):
        for n in cl.nodes:
            assert n.raw(request) == expected, f"{what}: {request!r} via {n.node_id} (list {t.nodes_for(k)})"

    with via.connect() as c:
        def step(request, expected):
            got = c.exchange(request)
            assert got == expected, (f"{request!r} through {via.node_id} (node list of the key: "
                                     f"{t.nodes_for(k)}): got {got!r}, expected {expected!r}")

        step(set_cmd(k, b"10"), b"STORED\r\n")                                 # clk 0
        step(set_cmd(k, b"x", cmd=b"add"), b"NOT_STORED\r\n")                  # exists (rec #149)
        step(set_cmd(k_new, b"new", cmd=b"add"), b"STORED\r\n")
        step(set_cmd(k, b"20", cmd=b"replace"), b"STORED\r\n")                 # clk 1
        step(set_cmd(k_absent, b"x", cmd=b"replace"), b"NOT_STORED\r\n")       # rec #150
        step(set_cmd(k, b"a", cmd=b"append"), b"STORED\r\n")                   # clk 2
        step(set_cmd(k, b"p", cmd=b"prepend"), b"STORED\r\n")                  # clk 3
        step(set_cmd(k_absent, b"x", cmd=b"append"), b"NOT_STORED\r\n")        # rec #151
        step(set_cmd(k_absent, b"x", cmd=b"prepend"), b"NOT_STORED\r\n")
        everywhere(b"gets %s\r\n" % k, gets_reply(k, b"p20a", 3), "after add/replace/append/prepend")
        everywhere(b"gets %s\r\n" % k_new, gets_reply(k_new, b"new", 0), "after add of a new key")

        step(b"cas %s 0 0 3 4\r\nbad\r\n" % k, b"EXISTS\r\n")                  # rec #152
        step(b"cas %s 0 0 3 3\r\ncas\r\n" % k, b"STORED\r\n")                  # clk 4
        step(b"cas %s 0 0 1 0\r\nx\r\n" % k_absent, b"NOT_FOUND\r\n")          # rec #153
        everywhere(b"gets %s\r\n" % k, gets_reply(k, b"cas", 4), "after cas")

        step(set_cmd(k, b"10"), b"STORED\r\n")                                 # clk 5
        step(b"incr %s 5\r\n" % k, b"15\r\n")                                  # clk 6
        step(b"decr %s 20\r\n" % k, b"0\r\n")                                  # clk 7, clamped (R3.11)
        step(b"incr %s 1\r\n" % k_absent, b"NOT_FOUND\r\n")                    # rec #154
        step(b"decr %s 1\r\n" % k_absent, b"NOT_FOUND\r\n")
        everywhere(b"gets %s\r\n" % k, gets_reply(k, b"0", 7), "after incr/decr")

        before = int(time.time())
        step(b"set_expt %s 1000\r\n" % k, b"STORED\r\n")                       # clk 8
        step(b"set_expt %s 100\r\n" % k_absent, b"NOT_STORED\r\n")             # rec #159
        after = int(time.time())
        expts = {n.node_id: n.raw(b"get_expt %s unix\r\n" % k) for n in cl.nodes}
        assert len(set(expts.values())) == 1, f"get_expt differs between nodes: {expts}"
        m = re.fullmatch(rb"(\d+)\r\nEND\r\n", next(iter(expts.values())))
        assert m and before + 1000 <= int(m.group(1)) <= after + 1000, expts
        everywhere(b"gets %s\r\n" % k, gets_reply(k, b"0", 8), "after set_expt (value kept, clock +1)")

        step(b"touch %s 2000\r\n" % k, b"TOUCHED\r\n")
        step(b"touch %s 2000\r\n" % k_absent, b"NOT_FOUND\r\n")
        expts = {n.node_id: n.raw(b"get_expt %s unix\r\n" % k) for n in cl.nodes}
        assert len(set(expts.values())) == 1, f"get_expt after touch differs between nodes: {expts}"
        m = re.fullmatch(rb"(\d+)\r\nEND\r\n", next(iter(expts.values())))
        assert m and before + 2000 <= int(m.group(1)) <= int(time.time()) + 2000, expts
        everywhere(b"get %s\r\n" % k, get_reply(k, b"0"), "after touch")

        step(b"delete %s\r\n" % k, b"DELETED\r\n")
        step(b"delete %s\r\n" % k, b"NOT_FOUND\r\n")                           # rec #158
        everywhere(b"get %s\r\n" % k, b"END\r\n", "after delete")
        everywhere(b"gets %s %s\r\n" % (k, k_new), gets_reply(k_new, b"new", 0), "multi-gets after delete")


@pytest.mark.parametrize("role", ["primary", "secondary", "outsider"])
def test_write_commands_reply_the_same_through_any_node(cl, role):
    """R5.1: a non-owner forwards and relays the owner's reply; for each node acting in ``role``."""
    pos = {"primary": 0, "secondary": 1}
    for via in cl.nodes:
        nid = via.node_id
        if role == "outsider":
            pred = lambda lst, nid=nid: nid not in lst
        else:
            pred = lambda lst, nid=nid: lst[pos[role]] == nid
        keys = cl.find_keys(uniq(role[:3]), 3, pred)
        _write_scenario(cl, via, keys)


# ==============================================================================================
# 5. pymemcache through every node
# ==============================================================================================
def test_pymemcache_through_every_node(cl):
    clients = [n.client() for n in cl.nodes]
    try:
        for i, w in enumerate(clients):
            o1, o2 = [clients[j] for j in range(3) if j != i]
            p = uniq(f"pm{i}")
            vals = {f"{p}k{j}": f"value-{j}-{i}".encode() * (j + 1) for j in range(12)}
            for k, v in vals.items():
                assert w.set(k, v) is True
            for c in clients:
                for k, v in vals.items():
                    assert c.get(k) == v
                assert c.get_many(list(vals) + [p + "missing"]) == vals
                assert c.gets_many(list(vals)) == {k: (v, b"0") for k, v in vals.items()}
            assert o1.set_many({p + "m1": b"1", p + "m2": b"2"}) == []
            assert o2.get_many([p + "m1", p + "m2"]) == {p + "m1": b"1", p + "m2": b"2"}

            ka = p + "add"
            assert o1.add(ka, b"first") is True                     # clk 0
            assert o2.add(ka, b"second") is False
            assert w.get(ka) == b"first"
            assert o2.replace(ka, b"repl") is True                  # clk 1
            assert w.replace(p + "nope", b"x") is False
            assert o1.append(ka, b"-tail") is True                  # clk 2
            assert o2.prepend(ka, b"head-") is True                 # clk 3
            assert w.append(p + "nope", b"x") is False
            for c in clients:
                assert c.gets(ka) == (b"head-repl-tail", b"3")
            assert w.cas(ka, b"casd", b"3") is True                 # clk 4
            assert o1.cas(ka, b"stale", b"3") is False              # EXISTS
            assert o2.cas(p + "nope", b"x", b"1") is None           # NOT_FOUND
            for c in clients:
                assert c.gets(ka) == (b"casd", b"4")

            kc = p + "ctr"
            assert w.set(kc, b"10") is True
            assert o1.incr(kc, 5) == 15
            assert o2.decr(kc, 3) == 12
            assert w.incr(p + "nope", 1) is None
            assert o1.decr(p + "nope", 1) is None
            for c in clients:
                assert c.get(kc) == b"12"
            assert o1.touch(kc, 1000) is True
            assert o2.touch(p + "nope", 1000) is False
            assert w.get(kc) == b"12"

            assert o2.delete(kc) is True
            assert o1.delete(kc) is False
            assert w.delete_many([p + "m1", p + "m2"]) is True
            for c in clients:
                assert c.get(kc) is None
                assert c.get_many([p + "m1", p + "m2", kc]) == {}
            for c in clients:
                assert c.version() == b"ROMA-1.3.0"
    finally:
        for c in clients:
            c.close()


# ==============================================================================================
# 6. forward_count / redundant_count
# ==============================================================================================
def _counters(cl, name):
    return {n.node_id: stat_int(n, name) for n in cl.nodes}


def test_forward_count_counts_only_forwarded_requests(cl):
    k = cl.find_keys(uniq("fw"), 1)[0]
    prim, sec, out = cl.roles(k)
    for n in cl.nodes:
        assert re.fullmatch(rb"stats\.forward_count \d+\r\nEND\r\n", n.raw(b"stat forward_count\r\n")), n.node_id

    def check(node, request, reply, forwarded_by, replicas_to=()):
        fw0, rd0 = _counters(cl, "stats.forward_count"), _counters(cl, "stats.redundant_count")
        assert node.raw(request) == reply, f"{request!r} via {node.node_id}"
        fw1, rd1 = _counters(cl, "stats.forward_count"), _counters(cl, "stats.redundant_count")
        want_fw = {nid: v + (1 if forwarded_by is not None and nid == forwarded_by.node_id else 0)
                   for nid, v in fw0.items()}
        assert fw1 == want_fw, (f"forward_count after {request!r} via {node.node_id} (primary "
                                f"{prim.node_id}, secondary {sec.node_id}): before {fw0}, after {fw1}")
        want_rd = {nid: v + (1 if nid in [r.node_id for r in replicas_to] else 0) for nid, v in rd0.items()}
        assert rd1 == want_rd, f"redundant_count after {request!r} via {node.node_id}: before {rd0}, after {rd1}"

    check(prim, set_cmd(k, b"p"), b"STORED\r\n", None, [sec])               # executed + replicated
    check(prim, b"get %s\r\n" % k, get_reply(k, b"p"), None)
    check(sec, b"get %s\r\n" % k, get_reply(k, b"p"), None)                 # in the list: local read
    check(sec, set_cmd(k, b"s"), b"STORED\r\n", sec, [sec])                 # fset to the primary
    check(out, set_cmd(k, b"o"), b"STORED\r\n", out, [sec])
    check(out, b"get %s\r\n" % k, get_reply(k, b"o"), out)                  # fget to the primary
    check(prim, b"delete %s\r\n" % k, b"DELETED\r\n", None, [sec])         # rdelete counts too
    check(out, b"get %s\r\n" % k, b"END\r\n", out)


# ==============================================================================================
# 7. peer commands with bad input
# ==============================================================================================
def test_peer_commands_reject_inconsistent_or_old_input(cl):
    k = cl.find_keys(uniq("bad"), 1)[0]
    prim, sec, out = cl.roles(k)
    d = digest32(k)
    vn = vnode_of(k)
    assert prim.raw(set_cmd(k, b"orig")) == b"STORED\r\n"
    assert prim.raw(set_cmd(k, b"second")) == b"STORED\r\n"               # clk 1 on both replicas

    # f* to a node that is not in the key's list (rec #84, #91, #92, #109, #111, #120)
    with out.connect() as c:
        for req in (b"fset %s %d 0 3\r\nbad\r\n" % (k, d),
                    b"fset %s 0 0 3\r\nbad\r\n" % k,
                    b"fadd %s %d 0 3\r\nbad\r\n" % (k, d),
                    b"fget %s\r\n" % k,
                    b"fincr %s %d 1\r\n" % (k, d),
                    b"fset_expt %s 100\r\n" % k,
                    b"fdelete %s\r\n" % k):
            assert c.exchange(req) == INCONSISTENT, f"{req!r} to {out.node_id} (list {prim.node_id}, {sec.node_id})"
    for n in cl.nodes:
        assert n.raw(b"gets %s\r\n" % k) == gets_reply(k, b"second", 1), n.node_id

    # rset/rdelete with a clock that is not newer: rejected, value kept (R2.8; rec #128, #129, #138)
    with sec.connect() as c:
        assert c.exchange(b"rset %s\x1broma %d 0 %d 3\r\nold\r\n" % (k, d, EXPT_FOREVER)) == b"NOT_STORED\r\n"
        assert c.exchange(b"rset %s\x1broma %d 1 %d 3\r\nold\r\n" % (k, d, EXPT_FOREVER)) == b"NOT_STORED\r\n"
        assert c.exchange(b"rdelete %s\x1broma 0\r\n" % k) == b"NOT_FOUND\r\n"
        assert c.exchange(b"gets %s\r\n" % k) == gets_reply(k, b"second", 1)
    assert prim.raw(b"gets %s\r\n" % k) == gets_reply(k, b"second", 1)

    # setroute with an old clock (R4.6; rec #9, #12, #13, #15-17) and getroute usage (rec #6)
    lst = cl.table().nodes_for(k)
    route = b"-1 %s\r\n" % " ".join(lst).encode()
    other = " ".join([out.node_id, prim.node_id]).encode()
    mkl = prim.raw(b"mklhash 0\r\n")
    with prim.connect() as c:
        assert c.exchange(b"getroute %d\r\n" % vn) == route
        assert c.exchange(b"setroute %d -1 %s\r\n" % (vn, other)) == OLD_TABLE
        assert c.exchange(b"setroute %d -6 %s\r\n" % (vn, other)) == OLD_TABLE
        assert c.exchange(b"setroute 1 100 %s\r\n" % other) == b"SERVER_ERROR 1 is not found.\r\n"
        assert c.exchange(b"setroute %d 100\r\n" % vn) == b"CLIENT_ERROR\r\n"
        assert c.exchange(b"getroute\r\n") == b"CLIENT_ERROR\r\n"
    for n in cl.nodes:
        assert n.raw(b"getroute %d\r\n" % vn) == route, n.node_id
        assert n.raw(b"mklhash 0\r\n") == mkl, n.node_id
    for n in cl.nodes:
        assert n.raw(b"get %s\r\n" % k) == get_reply(k, b"second"), n.node_id


def test_f_command_to_a_secondary_executes_and_replicates(cl):
    """R5.1: an f* command reaching a node in the list, even a secondary, is executed there and
    replicated to the other listed node (rec #89-90, #121)."""
    k = cl.find_keys(uniq("fsec"), 1)[0]
    prim, sec, out = cl.roles(k)
    d = digest32(k)
    assert prim.raw(set_cmd(k, b"one")) == b"STORED\r\n"
    assert sec.raw(b"fset %s %d 0 3\r\ntwo\r\n" % (k, d)) == b"STORED\r\n"
    for n in cl.nodes:
        assert n.raw(b"gets %s\r\n" % k) == gets_reply(k, b"two", 1), n.node_id
    assert sec.raw(b"fdelete %s\r\n" % k) == b"DELETED\r\n"
    for n in cl.nodes:
        assert n.raw(b"get %s\r\n" % k) == b"END\r\n", n.node_id


def test_pipelined_writes_to_a_primary_answer_in_order_and_replicate(cl):
    """A client pipelining writes to a primary: the primary goes on with the next requests while
    earlier ones wait for their replica (R5.2), yet replies leave in request order, reads on the
    connection see the writes before them, and `quit` closes only after every reply is out."""
    tag = uniq("pipe")
    keys = cl.find_keys(tag, 60)
    prim = cl.roles(keys[0])[0]
    mine = [k for k in keys if cl.table().nodes_for(k)[0] == prim.node_id][:20]
    assert len(mine) >= 10
    req, want = b"", b""
    for i, k in enumerate(mine):
        v = b"v%d-" % i + k
        req += set_cmd(k, v) + b"get %s\r\n" % k
        want += b"STORED\r\n" + get_reply(k, v)
        if i % 3 == 0:
            req += b"delete %s\r\n" % k + b"get %s\r\n" % k + b"add %s 0 0 1\r\nz\r\n" % k
            want += b"DELETED\r\n" + b"END\r\n" + b"STORED\r\n"
    req += b"bogus_command\r\n" + b"set %s 0 0 1 noreply\r\nn\r\n" % mine[1] + b"version\r\n"
    with prim.connect() as c:
        c.send(req + b"quit\r\n")
        got = c.read_until_close(timeout=20)
    head, _, rest = got.partition(b"ERROR")
    assert head == want, (head, want)
    assert rest.endswith(b"\r\n") and b"VERSION " in rest and b"STORED" not in rest, rest
    # every write reached the secondary too, in order (the last one of each key wins)
    for i, k in enumerate(mine):
        expect = b"n" if k == mine[1] else (b"z" if i % 3 == 0 else b"v%d-" % i + k)
        for n in cl.nodes:
            assert n.raw(b"get %s\r\n" % k) == get_reply(k, expect), (n.node_id, k)


def test_no_replica_write_pending_or_dropped(cl):
    """After the tests above (module cluster): nothing waits for a retry, nothing was dropped."""
    for n in cl.nodes:
        assert stat_int(n, "stats.replication_queue") == 0, n.node_id
        assert stat_int(n, "stats.replication_dropped") == 0, n.node_id


# ==============================================================================================
# R3.7 start-up gating
# ==============================================================================================
def test_data_commands_wait_until_every_node_answers(tmp_path):
    """R3.7: data commands are unknown until every node of the table answered whoami;
    forcedly_start ends that on one node; --disabled_cmd_protect skips it."""
    c = Cluster(tmp_path / "cluster").prepare()
    try:
        n1, n2, n3 = c.nodes
        for n in (n1, n2):
            n.spawn()
        for n in (n1, n2):
            n.wait_ready()
        # routing commands are served during the gating (system commands)
        k12 = c.find_keys(uniq("g"), 1, lambda lst: set(lst) == {n1.node_id, n2.node_id})[0]
        k3 = c.find_keys(uniq("g3"), 1, lambda lst: n3.node_id in lst)[0]
        for n in (n1, n2):                   # n3 is down: both still refuse data commands
            # (ROMA then reads the data line as a command of its own: a second ERROR is allowed)
            for req, cmd in ((b"get %s\r\n" % k12, b"get"), (set_cmd(k12, b"x"), b"set")):
                got = n.raw(req)
                assert got.lstrip(b"\r\n").startswith(b"ERROR: '%s' is not roma command." % cmd) \
                    and b"STORED" not in got, f"{cmd!r} on {n.node_id} while a node is down: {got!r}"
            assert n.raw(b"whoami\r\n") == b"ROMA\r\n"
            # ROMA's log line, which operators' monitoring may look for
            wait_for(lambda: f"I'm waiting for booting the {n3.node_id} instance." in n.log_text(), 5.0,
                     f"{n.node_id} to log that it waits for {n3.node_id}")
        # spushv_protection is shown as set (stat said false whatever it was)
        assert n1.raw(b"spushv_protection true\r\n") == b"true\r\n"
        assert n1.raw(b"stat spushv_protection\r\n") == b"stats.spushv_protection true\r\nEND\r\n"
        assert n1.raw(b"spushv_protection false\r\n") == b"false\r\n"
        assert n1.raw(b"stat spushv_protection\r\n") == b"stats.spushv_protection false\r\nEND\r\n"
        assert n1.raw(b"forcedly_start\r\n") == b"STARTED\r\n"
        assert n1.raw(b"get %s\r\n" % k12) == b"END\r\n"
        assert b"ERROR: 'get' is not roma command." in n2.raw(b"get %s\r\n" % k12), "forcedly_start is per node"
        # A node that does not serve data commands yet is not made primary of a vnode by a copy
        # (its writes would fail until it serves; a Ruby node's join asks for that while it starts)
        t = c.table()
        vn = next(v for v, lst in sorted(t.v_idx.items()) if lst[0] == n1.node_id and vnode_of(k12) != v)
        assert n1.raw(b"reqpushv %d %s true\r\n" % (vn, n2.node_id.encode())) == b"REJECTED\r\n"
        n3.extra_args.append("--disabled_cmd_protect")
        n3.spawn()
        n3.wait_ready()
        assert n3.raw(b"get %s\r\n" % k3) == b"END\r\n", "--disabled_cmd_protect: serves at once"
        wait_for(lambda: n2.raw(b"get %s\r\n" % k12) == b"END\r\n", 15.0,
                 f"{n2.node_id} to serve once every node answers whoami")
        assert n2.raw(set_cmd(k12, b"after")) == b"STORED\r\n"
        for n in c.nodes:
            assert n.raw(b"get %s\r\n" % k12) == get_reply(k12, b"after"), n.node_id
        assert n1.raw(b"reqpushv %d %s true\r\n" % (vn, n2.node_id.encode())) == b"PUSHED\r\n", "now it serves"
        wait_for(lambda: c.table(refresh=True).v_idx[vn][0] == n2.node_id, 15.0, f"{n2.node_id} to become primary of {vn}")
    finally:
        problems = finish_cluster(c)
    assert not problems, problems


# ==============================================================================================
# 2. each key is stored on exactly its two listed nodes
# ==============================================================================================
def test_each_key_is_stored_on_exactly_its_two_listed_nodes(cluster_factory):
    c = cluster_factory()
    t = c.table()
    rnd = random.Random(2)
    p = uniq("st").encode()
    keys = [b"%s%03d" % (p, i) for i in range(200)]
    expected = {}   # key -> (value or None for a tombstone, logical clock)
    t0 = int(time.time())
    cs = conns(c)
    try:
        for k in keys:
            v = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 64)))
            assert cs[rnd.randrange(3)].exchange(set_cmd(k, v)) == b"STORED\r\n"
            expected[k] = (v, 0)
        for k in keys[:30]:                                    # overwrite: clock 1
            v = b"second-" + k
            assert cs[rnd.randrange(3)].exchange(set_cmd(k, v)) == b"STORED\r\n"
            expected[k] = (v, 1)
        for k in keys[30:60]:                                  # delete: tombstone, clock 1
            assert cs[rnd.randrange(3)].exchange(b"delete %s\r\n" % k) == b"DELETED\r\n"
            expected[k] = (None, 1)
        for k in keys[::20]:                                   # sanity through every node
            for conn in cs:
                assert conn.exchange(b"get %s\r\n" % k) == get_reply(k, expected[k][0])
    finally:
        close_all(cs)
    problems = c.stop(check=True)                              # SIGTERM: TC files closed
    assert not problems, problems
    t1 = int(time.time())

    files = {}
    for n in c.nodes:
        records = {}
        for div in range(10):
            path = n.data_dir / f"{div}.tc"
            assert path.is_file(), f"{n.node_id}: no division file {path}"
            for key, rec in tchmgr_list(path).items():
                assert key not in records, f"{n.node_id}: {key!r} in two division files"
                records[key] = (div, rec)
        files[n.node_id] = records

    for nid, records in files.items():
        owned = {k for k in keys if nid in t.nodes_for(k)}
        assert set(records) == owned, (
            f"{nid}: keys in its files that it does not own: {sorted(set(records) - owned)[:10]}; "
            f"owned keys missing: {sorted(owned - set(records))[:10]}")
    for k in keys:
        value, clk = expected[k]
        for nid in t.nodes_for(k):
            div, rec = files[nid][k]
            assert div == division_of_key(k), f"{k!r} on {nid} in {div}.tc, expected {division_of_key(k)}.tc"
            rvn, phys, logical, expt, data = decode_record(rec)
            where = f"{k!r} on {nid} (list {t.nodes_for(k)})"
            assert rvn == vnode_of(k), where
            assert t0 - 1 <= phys <= t1 + 1, f"{where}: physical clock {phys} not in [{t0}, {t1}]"
            assert logical == clk, f"{where}: logical clock {logical}, expected {clk}"
            if value is None:
                assert (expt, data) == (0, b""), f"{where}: not a header-only tombstone: {rec!r}"
            else:
                assert (expt, data) == (EXPT_FOREVER, value), where


# ==============================================================================================
# 4. a stopped replica does not hang clients; queued writes reach it after SIGCONT
# ==============================================================================================
def test_stopped_node_does_not_hang_clients_and_gets_queued_writes(cluster_factory):
    c = cluster_factory("--peer-timeout", "1")
    # The stop lasts a few seconds: longer than failure detection needs (issue #12), so failover
    # is switched off here (broadcast to every node); test_failover covers it.
    got = c.nodes[0].raw(b"switch_failover off\r\n")
    assert got.count(b'"DISABLED"') == 3, got
    # Replies slower than hilatency_warn_time are logged (ROMA's runtime setter, relayed).
    assert c.nodes[0].raw(b"set_hilatency_warn_time 0\r\n") == b"CLIENT_ERROR time value must be lager than 0\r\n"
    assert c.nodes[0].raw(b"set_hilatency_warn_time 0.5\r\n").count(b'"STORED"') == 3
    for n in c.nodes:
        assert n.raw(b"stat hilatency\r\n") == b"stats.hilatency_warn_time 0.5\r\nEND\r\n", n.node_id
    t = c.table()
    S = c.nodes[1]
    X, Y = c.nodes[0], c.nodes[2]
    sid = S.node_id

    def one(lst_want, tag):
        return c.find_keys(uniq(tag), 1, lambda lst: lst == lst_want)[0]

    # A: S is the secondary; written through the primary and through the outsider
    a_keys = [(one([X.node_id, sid], "ax"), X), (one([Y.node_id, sid], "ay"), Y),
              (one([X.node_id, sid], "axo"), Y), (one([Y.node_id, sid], "ayo"), X)]
    # B: S is the primary
    b_sec = one([sid, X.node_id], "bs")          # via X, its secondary
    b_out = one([sid, Y.node_id], "bo")          # via X, the outsider
    # C: S is not in the list
    c_keys = [one([X.node_id, Y.node_id], "cx"), one([Y.node_id, X.node_id], "cy")]       # read
    c_set_keys = [one([X.node_id, Y.node_id], "csx"), one([Y.node_id, X.node_id], "csy")]  # written
    for k in [b_sec, b_out] + c_keys:
        assert X.raw(set_cmd(k, b"before")) == b"STORED\r\n"
    for n in (X, Y):
        assert stat_int(n, "stats.replication_dropped") == 0

    S.send_signal(signal.SIGSTOP)
    try:
        def req(node, data):
            return lambda: node.raw(data, timeout=10.0)

        jobs = {}
        for k, via in a_keys:
            jobs[("A set", k, via.node_id)] = req(via, set_cmd(k, b"during"))
        jobs[("B set via secondary", b_sec, X.node_id)] = req(X, set_cmd(b_sec, b"during"))
        jobs[("B set via outsider", b_out, X.node_id)] = req(X, set_cmd(b_out, b"during"))
        jobs[("B get via secondary", b_sec, X.node_id)] = req(X, b"get %s\r\n" % b_sec)
        jobs[("B get via outsider", b_out, X.node_id)] = req(X, b"get %s\r\n" % b_out)
        for k in c_keys:
            for n in (X, Y):
                jobs[("C get", k, n.node_id)] = req(n, b"get %s\r\n" % k)
        for k, n in zip(c_set_keys, (Y, X)):
            jobs[("C set", k, n.node_id)] = req(n, set_cmd(k, b"during"))
        with concurrent.futures.ThreadPoolExecutor(len(jobs)) as ex:
            futures = {name: ex.submit(timed, fn) for name, fn in jobs.items()}
            results = {name: f.result() for name, f in futures.items()}
        queued = sum(stat_int(n, "stats.replication_queue") for n in (X, Y))
    finally:
        S.send_signal(signal.SIGCONT)
    report = "\n".join(f"  {name[0]} {name[1]!r} via {name[2]}: {elapsed:.2f}s -> {reply!r}"
                       for name, (elapsed, reply) in results.items())
    failures = []

    def check(name, ok, expected):
        elapsed, reply = results[name]
        if elapsed >= 3.0:
            failures.append(f"{name[0]} {name[1]!r} via {name[2]}: no reply within 3 s ({elapsed:.2f}s)")
        elif not ok(reply):
            failures.append(f"{name[0]} {name[1]!r} via {name[2]}: got {reply!r}, expected {expected}")

    for k, via in a_keys:   # secondary stopped: the primary stores, queues the replica write
        role = "primary" if t.nodes_for(k)[0] == via.node_id else "outsider, forwarded to the primary"
        check(("A set", k, via.node_id), lambda r: r == b"STORED\r\n", f"STORED (via the {role})")
    check(("B get via secondary", b_sec, X.node_id), lambda r: r == get_reply(b_sec, b"before"),
          "the value (local read on a listed node)")
    # a read forwarded to the stopped primary goes to the live replica after one peer timeout
    check(("B get via outsider", b_out, X.node_id),
          lambda r: r == get_reply(b_out, b"before"), "the value (from the live secondary)")
    # writes must go to the stopped primary: a forward failure, not a hang
    check(("B set via secondary", b_sec, X.node_id), lambda r: r == FORWARD_FAILED, repr(FORWARD_FAILED))
    check(("B set via outsider", b_out, X.node_id), lambda r: r == FORWARD_FAILED, repr(FORWARD_FAILED))
    for k in c_keys:        # keys the stopped node has nothing to do with
        for n in (X, Y):
            check(("C get", k, n.node_id), lambda r, k=k: r == get_reply(k, b"before"), "the value")
    for k, n in zip(c_set_keys, (Y, X)):
        check(("C set", k, n.node_id), lambda r: r == b"STORED\r\n", "STORED (the stopped node is not in the list)")
    assert not failures, (f"while {sid} was stopped (--peer-timeout 1):\n" + "\n".join(failures)
                          + "\nall requests:\n" + report)
    assert queued >= 1, f"no replica write queued on {X.node_id}/{Y.node_id} while {sid} was stopped"
    # the writes that waited a peer timeout (1 s) for the stopped node were logged as slow
    assert "hilatency occurred in set put in a" in X.log_text() + Y.log_text()

    # after SIGCONT: the retry queue drains, nothing dropped, S has the writes of the stop
    wait_for(lambda: all(stat_int(n, "stats.replication_queue") == 0 for n in c.nodes), 20.0,
             "stats.replication_queue to drain to 0 on every node after SIGCONT")
    for n in c.nodes:
        assert stat_int(n, "stats.replication_dropped") == 0, n.node_id
    retried = sum(stat_int(n, "stats.replication_retried") for n in (X, Y))
    assert retried >= len(a_keys), f"replication_retried {retried} < {len(a_keys)} queued writes"
    for k, _ in a_keys:
        prim = c.node(t.nodes_for(k)[0])
        want = gets_reply(k, b"during", 0)
        assert prim.raw(b"gets %s\r\n" % k) == want, prim.node_id
        assert S.raw(b"gets %s\r\n" % k) == want, f"{sid} (secondary of {k!r}) after SIGCONT"
    for k in c_set_keys:
        for n in c.nodes:
            assert n.raw(b"get %s\r\n" % k) == get_reply(k, b"during"), n.node_id
    for n in c.nodes:
        assert n.raw(b"nodelist\r\n") == (" ".join(c.nids) + "\r\n").encode(), n.node_id


def test_swift_client_routes_each_request_to_its_node(cl):
    """RomaClient (driven by `roma-bench --seeds`) sends every request to the key's primary:
    writes and reads of 2,000 keys through it make no node forward anything, every node gets
    writes (the keys are spread), and the client's read-back finds every key."""
    import json
    import os
    import subprocess
    from romatest import ROMAD_BIN
    bench = os.path.join(os.path.dirname(ROMAD_BIN), "roma-bench")
    seeds = ",".join(f"{n.host}:{n.port}" for n in cl.nodes)
    before_fwd = _counters(cl, "stats.forward_count")
    before_w = _counters(cl, "stats.write_count")
    prefix = uniq("swift")
    for phase in ("--preload-only", "--verify"):
        r = subprocess.run([bench, "--seeds", seeds, "--keys", "2000", "--key-prefix", prefix, "--value-size", "20",
                            "--connections", "4", "--pipeline", "4", phase, "--json"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        report = json.loads(r.stdout)
        assert report["errors_total"] == 0, report["errors"]
        if phase == "--verify":
            assert report["verify"]["ok"] == 2000 and report["verify"]["missing"] == 0, report["verify"]
    after_fwd = _counters(cl, "stats.forward_count")
    after_w = _counters(cl, "stats.write_count")
    assert after_fwd == before_fwd, f"the client's requests were forwarded: {before_fwd} -> {after_fwd}"
    gained = {n: after_w[n] - before_w[n] for n in after_w}
    assert sum(gained.values()) == 2000 and all(g > 300 for g in gained.values()), gained


# ==============================================================================================
# R3.17: hash administration is relayed to every node
# ==============================================================================================
def test_hash_commands_are_relayed_to_every_node_with_this_nodes_answer_first(cl):
    n1, n2, n3 = cl.nodes
    name = uniq("h").rstrip("_")

    def reply(own, peers=None):
        peers = peers if peers is not None else own
        order = [n1.node_id] + sorted([n2.node_id, n3.node_id])
        return ("{" + ", ".join(f'"{nid}"=>"{own if nid == n1.node_id else peers}"' for nid in order) + "}\r\n").encode()

    assert n1.raw(f"createhash {name}\r\n".encode()) == reply("CREATED")
    for n in cl.nodes:
        assert n.raw(b"hashlist\r\n") == f"roma {name}\r\n".encode(), n.node_id
    assert n1.raw(f"createhash {name}\r\n".encode()) == reply(f"SERVER_ERROR {name} already exists.")
    # Errors ROMA raises are answered alone, unrelayed.
    assert n1.raw(b"createhash\r\n") == b"CLIENT_ERROR usage:createhash <name>\r\n"
    assert n1.raw(b"defhash nosuchhash\r\n") == b"CLIENT_ERROR nosuchhash does not find.\r\n"
    # A key of the new hash, written through one node, is read through the others.
    key = cl.find_keys(uniq("hk"), 1, lambda nids: n1.node_id not in nids)[0]
    assert n1.raw(set_cmd(key + b"\x1b" + name.encode(), b"in-hash")) == b"STORED\r\n"
    for n in (n2, n3):
        assert n.raw(b"get " + key + b"\x1b" + name.encode() + b"\r\n") == \
            b"VALUE " + key + b"\x1b" + name.encode() + b" 0 7\r\nin-hash\r\nEND\r\n", n.node_id
    # defhash on one connection: every node answers, and the peer connections the relay used
    # (shared by forwarded requests) keep their default hash: a plain key written through n1 by
    # another client still lands in roma on its primary.
    with n1.connect() as c:
        c.send(f"defhash {name}\r\n".encode())
        assert c.read_line() == reply("STORED")
        c.send(b"defhash\r\n")
        assert c.read_line() == reply(name, "roma")
    plain = cl.find_keys(uniq("plain"), 1, lambda nids: n1.node_id not in nids)[0]
    assert n1.raw(set_cmd(plain, b"plain")) == b"STORED\r\n"
    primary, _, _ = cl.roles(plain)
    assert primary.raw(b"get " + plain + b"\r\n") == get_reply(plain, b"plain")
    # Keys without a hash name, typed on a connection whose default is the new hash, go to that
    # hash on the nodes they are forwarded to (ROMA forwarded the bare token: they landed in roma).
    far = cl.find_keys(uniq("far"), 2, lambda nids: n1.node_id not in nids)
    hn = b"\x1b" + name.encode()
    with n1.connect() as c:
        c.send(f"defhash {name}\r\n".encode())
        assert c.read_line() == reply("STORED")
        assert c.exchange(set_cmd(far[0], b"7")) == b"STORED\r\n"
        assert c.exchange(set_cmd(far[1], b"second")) == b"STORED\r\n"
        assert c.exchange(b"incr " + far[0] + b" 5\r\n") == b"12\r\n"
        assert c.exchange(b"get " + far[0] + b"\r\n") == get_reply(far[0], b"12")
        got = c.exchange(b"get " + far[0] + b" " + far[1] + b"\r\n")
        assert sorted(parse_values(got)) == sorted([(far[0], 0, b"12", None), (far[1], 0, b"second", None)]), got
        assert c.exchange(b"gets " + far[1] + b"\r\n").startswith(b"VALUE " + far[1] + b" 0 6 "), far[1]
        assert c.exchange(b"get_expt " + far[1] + b" unix\r\n") == b"2147483647\r\nEND\r\n"
        assert c.exchange(b"delete " + far[1] + b"\r\n") == b"DELETED\r\n"
    for k, v in ((far[0], b"12"), (far[1], None)):
        for n in cl.nodes:
            assert n.raw(b"get " + k + hn + b"\r\n") == (get_reply(k + hn, v) if v else b"END\r\n"), (k, n.node_id)
            assert n.raw(b"get " + k + b"\r\n") == b"END\r\n", (k, n.node_id)
    assert n1.raw(f"umounthash {name}\r\n".encode()) == reply("UNMOUNTED")
    assert n1.raw(f"mounthash {name}\r\n".encode()) == reply("MOUNTED")
    assert n1.raw(f"deletehash {name}\r\n".encode()) == reply("DELETED")
    for n in cl.nodes:
        assert n.raw(b"hashlist\r\n") == b"roma\r\n", n.node_id
        assert not (n.node_dir / name).exists()


# ==============================================================================================
# RTTABLE_SUB_NID: clients of a subnet see rewritten node ids
# ==============================================================================================
def test_sub_nid_rules_are_relayed_and_rewrite_the_table_clients_of_the_subnet_see(cl):
    n1, n2, n3 = cl.nodes
    others = sorted([n2.node_id, n3.node_id])

    def reply(own, peers=None):
        peers = peers if peers is not None else own
        return ("{" + ", ".join(f'"{nid}"=>"{peers}"' for nid in others) + f', "{n1.node_id}"=>"{own}"}}\r\n').encode()

    plain_json = n1.raw(b"routingdump json\r\n")
    plain_bin = n2.raw(b"routingdump bin\r\n")
    assert n1.raw(b"stat sub_nid\r\n") == b"routing.sub_nid {}\r\nEND\r\n"
    assert n1.raw(b"add_rttable_sub_nid 127.0.0.0/8 127.0.0\r\n") == \
        b"usage:add_rttable_sub_nid <netmask> <regexp> <replace>\r\n"
    try:
        # The test connects from 127.0.0.1: inside 127.0.0.0/8, outside 10.0.0.0/8.
        assert n1.raw(b"add_rttable_sub_nid 10.0.0.0/8 127.0.0 172.16.0\r\n") == reply("ADDED")
        assert n1.raw(b"add_rttable_sub_nid 127.0.0.0/8 127.0.0 vm\r\n") == reply("ADDED")
        for n in cl.nodes:
            assert n.raw(b"stat sub_nid\r\n") == (b'routing.sub_nid {"10.0.0.0/8"=>{:regexp=>"127.0.0", :replace=>"172.16.0"}, '
                                                   b'"127.0.0.0/8"=>{:regexp=>"127.0.0", :replace=>"vm"}}\r\nEND\r\n'), n.node_id
            seen = n.raw(b"routingdump json\r\n")
            assert seen == plain_json.replace(b'"127.0.0.', b'"vm.'), n.node_id
            assert b"127.0.0." not in n.raw(b"routingdump yaml\r\n")
        bin_seen = n2.raw(b"routingdump bin\r\n")
        assert bin_seen != plain_bin and b"vm.2_" in bin_seen and b"127.0.0." not in bin_seen
        assert parse_routingdump_bin(bin_seen)[0] == parse_routingdump_bin(plain_bin)[0]  # same geometry
        # Only routing dumps change: what the nodes serve and say about themselves does not.
        assert n1.raw(b"nodelist\r\n") == (" ".join(cl.nids) + "\r\n").encode()
        assert n1.raw(b"delete_rttable_sub_nid 192.168.0.0/16\r\n") == reply("NOT_FOUND")
        assert n1.raw(b"delete_rttable_sub_nid 127.0.0.0/8\r\n") == reply("DELETED")
        assert n3.raw(b"routingdump json\r\n") == plain_json
    finally:
        assert n1.raw(b"clear_rttable_sub_nid\r\n") == reply("CLEARED")
    for n in cl.nodes:
        assert n.raw(b"stat sub_nid\r\n") == b"routing.sub_nid {}\r\nEND\r\n"
        assert n.raw(b"routingdump json\r\n") == plain_json


# ==============================================================================================
# switch_dns_caching: peers' addresses kept while on
# ==============================================================================================
def test_switch_dns_caching_is_relayed_and_forwarding_goes_on(cl):
    n1, n2, n3 = cl.nodes
    others = sorted([n2.node_id, n3.node_id])

    def reply(word):
        return ("{" + ", ".join(f'"{nid}"=>"{word}"' for nid in others) + f', "{n1.node_id}"=>"{word}"}}\r\n').encode()

    for n in cl.nodes:
        assert n.raw(b"stat dns\r\n") == b"dns_caching false\r\nEND\r\n"
    assert n1.raw(b"switch_dns_caching\r\n") == b"CLIENT_ERROR number of arguments\r\n"
    assert n1.raw(b"switch_dns_caching maybe\r\n") == reply("NOTSWITCHED")
    try:
        assert n1.raw(b"switch_dns_caching on \r\n") == reply("ENABLED")
        for n in cl.nodes:
            assert n.raw(b"stat dns\r\n") == b"dns_caching true\r\nEND\r\n"
        # Forwarded writes in parallel open new pooled connections, now to cached addresses.
        keys = cl.find_keys(uniq("dns"), 24, lambda nids: n1.node_id not in nids)
        with concurrent.futures.ThreadPoolExecutor(12) as ex:
            got = list(ex.map(lambda k: n1.raw(set_cmd(k, b"cached")), keys))
        assert got == [b"STORED\r\n"] * len(keys)
        for k in keys:
            assert n1.raw(b"get " + k + b"\r\n") == get_reply(k, b"cached")
    finally:
        assert n1.raw(b"switch_dns_caching off\r\n") == reply("DISABLED")
    for n in cl.nodes:
        assert n.raw(b"stat dns\r\n") == b"dns_caching false\r\nEND\r\n"


# ==============================================================================================
# R3.16: balse and shutdown stop the whole cluster
# ==============================================================================================
@pytest.mark.parametrize("command,relayed", [(b"balse", "rbalse"), (b"shutdown", "rshutdown")])
def test_balse_and_shutdown_stop_every_node_and_answer_each_nodes_bye(cluster_factory, command, relayed):
    c = cluster_factory()
    first, *others = c.nodes
    # A node that is already gone answers nil (stopped first, by SIGTERM, with failover off so
    # that it stays in the table).
    assert first.raw(b"switch_failover off\r\n").endswith(b"\r\n")
    gone = others[1]
    assert gone.stop() == 0
    with first.connect() as conn:
        prompt = (b"Are you sure?(yes/no)\r\n" if command == b"balse"
                  else b"*** ARE YOU REALLY SURE TO SHUTDOWN? *** (yes/no)\r\n")
        conn.send(command + b" maintenance\r\n")
        assert conn.read_line() == prompt
        conn.send(b"yes\r\n")
        reply = conn.read_until_close(timeout=20)
    peers = sorted([others[0].node_id, gone.node_id])
    expected = "{" + ", ".join(f'"{nid}"=>' + ('nil' if nid == gone.node_id else '"BYE"') for nid in peers)
    expected += f', "{first.node_id}"=>"BYE"}}\r\n'
    assert reply == expected.encode(), reply
    for n in (first, others[0]):
        assert n.wait_exit(20) == 0, f"{n.node_id} did not stop after {command!r}:\n{n.log_text()[-3000:]}"
    assert relayed in others[0].log_text(), others[0].log_text()[-3000:]
