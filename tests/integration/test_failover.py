"""Failure detection, leave and routing sync (issue #12 items 3 and 4; spec R5.6, R5.7, R5.13,
R5.14) on three romad nodes on 127.0.0.1-3 with rn = 2.

- a node killed with SIGKILL leaves the routing table of the others within the detection window
  (5 s with the defaults: probes every second, 3 failures), every key keeps a live copy, reads and
  writes keep working, `routing.event` records the leave;
- `switch_failover off` (relayed to every node) keeps a silent node in the table; `on` resumes;
  the failover settings commands answer ROMA's relayed-reply hashes;
- the periodic Merkle comparison (R5.13) spreads a `setroute` made on one node to the others,
  and settles two different lists with equal clocks the same way on both nodes (ROMA 1.3 never
  converged there, spec §11 item 11).
"""
from __future__ import annotations

import time

import pytest

from cluster_support import start_cluster, finish_cluster, stat_int, stats
from romatest import wait_for


@pytest.fixture
def cluster(tmp_path):
    made = []

    def make(*extra):
        c = start_cluster(tmp_path / f"c{len(made)}", extra)
        made.append(c)
        return c
    yield make
    problems = []
    for c in made:
        problems += finish_cluster(c)
    # a node killed on purpose is not a problem
    problems = [p for p in problems if "-9" not in p and "status -9" not in p]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def nodelist(n) -> list[str]:
    return n.raw(b"nodelist\r\n").decode().split()


def test_killed_node_leaves_within_five_seconds_and_nothing_is_lost(cluster):
    c = cluster()
    a, b, dead = c.nodes
    keys = [b"fo%d" % i for i in range(150)]
    for i, k in enumerate(keys):
        assert c.nodes[i % 3].raw(b"set %s 0 0 4\r\nv%03d\r\n" % (k, i)) == b"STORED\r\n"
    wait_for(lambda: stats(a, "routing.enabled_failover") == {"routing.enabled_failover": "true"}, 5.0,
             "failover to be enabled once the node serves")
    t0 = time.monotonic()
    dead.kill9()
    wait_for(lambda: dead.node_id not in nodelist(a) and dead.node_id not in nodelist(b), 8.0,
             f"{dead.node_id} to leave the routing tables")
    took = time.monotonic() - t0
    assert took < 5.5, f"a dead node must be detected within 5 s, took {took:.1f} s"
    for n in (a, b):
        assert stat_int(n, "routing.lost_vnodes") == 0, "rn = 2 on three hosts: no vnode loses both nodes"
        ev = stats(n, "routing.event")["routing.event"]
        assert f"leave {dead.node_id}" in ev, ev
        assert a.raw(b"mklhash 0\r\n") == b.raw(b"mklhash 0\r\n")
    for i, k in enumerate(keys):
        want = b"VALUE %s 0 4\r\nv%03d\r\nEND\r\n" % (k, i)
        assert a.raw(b"get " + k + b"\r\n") == want and b.raw(b"get " + k + b"\r\n") == want, k
    for i in range(50):  # writes keep working; both survivors hold every new key
        k = b"after%d" % i
        assert c.nodes[i % 2].raw(b"set %s 0 0 1\r\nz\r\n" % k) == b"STORED\r\n"
        assert a.raw(b"get " + k + b"\r\n") == b.raw(b"get " + k + b"\r\n") == b"VALUE %s 0 1\r\nz\r\nEND\r\n" % k
    assert stat_int(a, "stats.replication_queue") == 0 and stat_int(b, "stats.replication_queue") == 0


def test_reads_whose_primary_is_dead_are_answered_by_the_next_node_of_the_list(cluster):
    """Before a dead node leaves (here: never, failover off), a read forwarded to it fails; the
    forwarding node then reads the key from the next node of its list, which holds it too
    (ROMA answered `SERVER_ERROR Message forward failed.` until the failover). Single `get`,
    `gets` of many keys mixing dead and live primaries, and a key on the dead node alone."""
    c = cluster()
    x, y, dead = c.nodes
    assert x.raw(b"switch_failover off\r\n").count(b'"DISABLED"') == 3
    behind = c.find_keys("rd", 6, lambda l: l == [dead.node_id, y.node_id])   # via x: dead, then y
    live = c.find_keys("rl", 4, lambda l: l == [y.node_id, dead.node_id])     # via x: y
    for k in behind + live:
        assert x.raw(b"set %s 0 0 3\r\n%s\r\n" % (k, k[-3:].rjust(3, b"_"))) == b"STORED\r\n"
    value = {k: k[-3:].rjust(3, b"_") for k in behind + live}
    dead.kill9()
    for k in behind + live:
        assert x.raw(b"get %s\r\n" % k, timeout=20) == b"VALUE %s 0 3\r\n%s\r\nEND\r\n" % (k, value[k]), k
    keys = behind[:3] + live[:2] + behind[3:]
    got = x.raw(b"gets " + b" ".join(keys) + b"\r\n", timeout=20)
    assert got.endswith(b"END\r\n") and got.count(b"VALUE ") == len(keys), got
    for k in keys:
        assert b"VALUE %s 0 3 " % k in got, (k, got)
    assert stat_int(x, "stats.forward_count") > 0
    assert "asking %s instead" % y.node_id in c.logs()


def test_switch_failover_off_keeps_a_silent_node(cluster):
    c = cluster("--peer-timeout", "0.5")
    a, b, s = c.nodes
    got = a.raw(b"switch_failover off\r\n")
    assert got == ('{"%s"=>"DISABLED", "%s"=>"DISABLED", "%s"=>"DISABLED"}\r\n'
                   % (b.node_id, s.node_id, a.node_id)).encode(), got
    assert stats(b, "enabled_failover") == {"routing.enabled_failover": "false"}
    import os
    import signal
    os.kill(s.pid, signal.SIGSTOP)
    try:
        time.sleep(4)  # several probe intervals: nothing may happen while failover is off
        assert s.node_id in nodelist(a) and s.node_id in nodelist(b)
    finally:
        os.kill(s.pid, signal.SIGCONT)
    got = b.raw(b"switch_failover on\r\n")
    assert got.count(b'"ENABLED"') == 3, got
    assert a.raw(b"rswitch_failover maybe\r\n") == b"NOTSWITCHED\r\n"
    assert a.raw(b"switch_failover\r\n") == b"CLIENT_ERROR number of arguments\r\n"
    got = a.raw(b"set_threshold_for_failover 4\r\n")
    assert got.count(b'"STORED"') == 3, got
    assert stat_int(s, "routing.fail_cnt_threshold") == 4
    assert a.raw(b"set_threshold_for_failover x\r\n") == b"usage:set_threshold_for_failover <n>\r\n"
    assert a.raw(b"set_gap_for_failover 0.5\r\n").count(b'"STORED"') == 3
    assert a.raw(b"set_lost_action no_action\r\n") == b"CLIENT_ERROR changing lost_action must be auto_assign or shutdown\r\n"
    assert a.raw(b"set_lost_action shutdown\r\n").count(b'"STORED"') == 3
    assert stats(b, "routing.lost_action") == {"routing.lost_action": "shutdown"}


def test_routing_sync_spreads_changes_and_settles_equal_clocks(cluster):
    c = cluster("--routing-sync-interval", "0.5")
    a, b, s = c.nodes
    step = 8388608
    vn = 5 * step
    cur = a.raw(b"getroute %d\r\n" % vn).decode().split()
    clk = int(cur[0])
    new = next(l for l in ([s.node_id, a.node_id], [a.node_id, b.node_id]) if l != cur[1:])
    assert a.raw(b"setroute %d %d %s\r\n" % (vn, clk + 1, " ".join(new).encode())) == b"STORED\r\n"
    wait_for(lambda: len({n.raw(b"mklhash 0\r\n") for n in c.nodes}) == 1, 10.0, "the change to reach every node")
    for n in c.nodes:
        assert n.raw(b"getroute %d\r\n" % vn) == ("%d %s\r\n" % (clk + 1, " ".join(new))).encode()
    # Equal clocks, different lists on two nodes: both end with the same list and a newer clock.
    vn2 = 7 * step
    cur2 = a.raw(b"getroute %d\r\n" % vn2).decode().split()
    clk2 = int(cur2[0])
    candidates = [[a.node_id, b.node_id], [b.node_id, s.node_id], [s.node_id, a.node_id], [b.node_id, a.node_id]]
    l1, l2 = [l for l in candidates if l != cur2[1:]][:2]
    assert a.raw(b"setroute %d %d %s\r\n" % (vn2, clk2 + 1, " ".join(l1).encode())) == b"STORED\r\n"
    assert b.raw(b"setroute %d %d %s\r\n" % (vn2, clk2 + 1, " ".join(l2).encode())) == b"STORED\r\n"
    wait_for(lambda: len({n.raw(b"mklhash 0\r\n") for n in c.nodes}) == 1, 10.0, "equal clocks to converge")
    routes = [n.raw(b"getroute %d\r\n" % vn2).decode().split() for n in c.nodes]
    assert len({tuple(r[1:]) for r in routes}) == 1, routes
    assert routes[0][1:] in (l1, l2), routes
    assert all(int(r[0]) >= clk2 + 1 for r in routes), routes


def test_recover_restores_two_copies_of_every_vnode_after_a_kill(cluster):
    c = cluster()
    a, b, dead = c.nodes
    keys = [b"rc%d" % i for i in range(600)]
    for i, k in enumerate(keys):
        assert c.nodes[i % 3].raw(b"set %s 0 0 5\r\nv%04d\r\n" % (k, i)) == b"STORED\r\n"
    assert a.raw(b"set empty-value 0 0 0\r\n\r\n") == b"STORED\r\n"
    dead.kill9()
    wait_for(lambda: dead.node_id not in nodelist(a) and dead.node_id not in nodelist(b), 8.0, "the leave")
    assert stat_int(a, "routing.short_vnodes") > 0
    got = a.raw(b"recover\r\n")
    assert got == ('{"%s"=>"STARTED", "%s"=>"STARTED"}\r\n' % (b.node_id, a.node_id)).encode(), got
    wait_for(lambda: stat_int(a, "routing.short_vnodes") == 0 and stat_int(b, "routing.short_vnodes") == 0,
             60.0, "every vnode to have two nodes again")
    assert a.raw(b"mklhash 0\r\n") == b.raw(b"mklhash 0\r\n")
    table = c.table(refresh=True)
    for i, k in enumerate(keys):
        assert table.nodes_for(k) in ([a.node_id, b.node_id], [b.node_id, a.node_id]), table.nodes_for(k)
        want = b"VALUE %s 0 5\r\nv%04d\r\nEND\r\n" % (k, i)
        # each node is in every list now, so each answers from its own files
        assert a.raw(b"get " + k + b"\r\n") == want and b.raw(b"get " + k + b"\r\n") == want, k
    for n in (a, b):
        assert n.raw(b"get empty-value\r\n") == b"VALUE empty-value 0 0\r\n\r\nEND\r\n", "an empty live value survives the copy"
    # recover again: nothing to do, and a second start while one runs is refused politely
    assert b"STARTED" in a.raw(b"recover\r\n")


def test_a_copy_that_never_comes_is_asked_for_again(cluster):
    """A source can answer `PUSHED` and never send the copy (Ruby ROMA drops a second
    `reqpushv` that arrives before the first one's copy starts; here the receiver refuses the
    stream with `spushv_protection` for a while). The node that asked asks again every 10 s,
    so the recover ends once the stream can come, not after the 120 s it waits at most."""
    c = cluster()
    a, b, dead = c.nodes
    for i in range(300):
        assert c.nodes[i % 3].raw(b"set ra%d 0 0 2\r\nzz\r\n" % i) == b"STORED\r\n"
    dead.kill9()
    wait_for(lambda: dead.node_id not in nodelist(a) and dead.node_id not in nodelist(b), 8.0, "the leave")
    assert b.raw(b"spushv_protection true\r\n") == b"true\r\n"
    assert b"STARTED" in a.raw(b"recover\r\n")
    wait_for(lambda: "answered 'SERVER_ERROR In spushv_protection.'" in c.logs(tail=10**8), 10.0,
             "a copy to the protected node to be refused")
    assert b.raw(b"spushv_protection false\r\n") == b"false\r\n"
    wait_for(lambda: stat_int(a, "routing.short_vnodes") == 0 and stat_int(b, "routing.short_vnodes") == 0,
             40.0, "every vnode to have two nodes again (asked again, not given up after 120 s)")
    assert "asking again" in c.logs(tail=10**8)
    for i in range(300):
        for n in (a, b):
            assert n.raw(b"get ra%d\r\n" % i) == b"VALUE ra%d 0 2\r\nzz\r\nEND\r\n" % i


def test_release_hands_every_vnode_over_then_the_node_stops_without_loss(cluster):
    c = cluster()
    a, b, r = c.nodes
    keys = [b"rl%d" % i for i in range(600)]
    for i, k in enumerate(keys):
        assert c.nodes[i % 3].raw(b"set %s 0 0 5\r\nv%04d\r\n" % (k, i)) == b"STORED\r\n"
    assert r.raw(b"release\r\n") == b"STARTED\r\n"
    assert r.raw(b"spushv_protection\r\n") == b"true\r\n", "incoming copies are refused while releasing"

    def released():
        t = c.table(refresh=True)
        return all(r.node_id not in lst for lst in t.v_idx.values())
    wait_for(released, 60.0, "every vnode to leave the released node")
    wait_for(lambda: len({n.raw(b"mklhash 0\r\n") for n in c.nodes}) == 1, 20.0, "routing to agree")
    assert stat_int(r, "routing.primary") == 0 and stat_int(r, "routing.secondary1") == 0
    t = c.table()
    for lst in t.v_idx.values():
        assert len(lst) == 2 and len({x.split("_")[0] for x in lst}) == 2, lst
    assert a.raw(b"switch_failover off\r\n").count(b"DISABLED") == 3
    r.stop()
    for i, k in enumerate(keys):
        want = b"VALUE %s 0 5\r\nv%04d\r\nEND\r\n" % (k, i)
        assert a.raw(b"get " + k + b"\r\n") == want and b.raw(b"get " + k + b"\r\n") == want, k


def test_release_while_writing_leaves_every_write_on_both_listed_nodes(cluster):
    """Writes through the other nodes while a node releases its vnodes. Where the releasing node
    is a secondary, the primary knows nothing of the copy and sends the vnode's writes to it
    alone until the new list arrives; they must reach the successor too (ROMA lost them there:
    a later read through the successor missed them)."""
    import threading
    # Copies paced to 0.15 MB/s: each vnode's copy (and its window) lasts a few milliseconds.
    c = cluster("--copy-bandwidth", "0.15")
    a, b, r = c.nodes
    acked: dict = {}
    lock = threading.Lock()
    stop = threading.Event()
    errors: list = []
    count = [0]

    def writer(node, tag):
        n = 0
        with node.connect() as conn:
            while not stop.is_set():  # 32 sets at a time, so that many land in every copy's window
                # 3,000 keys per writer, overwritten again and again: a write that misses a
                # replica leaves an older value there
                batch = [(b"%s%d" % (tag, i % 3000), b"w%06d" % i) for i in range(n, n + 32)]
                got = conn.exchange(b"".join(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(v), v) for k, v in batch))
                replies = got.split(b"\r\n")[:-1]
                assert len(replies) == len(batch), got
                for (k, v), reply in zip(batch, replies):
                    if reply == b"STORED":
                        with lock:
                            acked[k] = v
                            count[0] += 1
                    else:
                        errors.append((k, reply))
                n += 32

    threads = [threading.Thread(target=writer, args=(n, t)) for n, t in ((a, b"ra"), (b, b"rb"))]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: count[0] > 2000, 10.0, "writes before the release")
        assert r.raw(b"release\r\n") == b"STARTED\r\n"

        def released():
            t = c.table(refresh=True)
            return all(r.node_id not in lst for lst in t.v_idx.values())
        # The writers are closed loops and, with the three nodes, keep both cores busy; the copies
        # run at idle priority (Node.lowerCallingThreadPriority) and get what is left. On
        # 2026-12-07 the release took over 60 s in two runs and about 45 s in a third.
        wait_for(released, 180.0, "every vnode to leave the released node")
        wait_for(lambda: len({n.raw(b"mklhash 0\r\n") for n in c.nodes}) == 1, 20.0, "routing to agree")
        n = count[0]
        wait_for(lambda: count[0] > n + 2000, 10.0, "writes after the release")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[:5]
    assert stat_int(a, "stats.replication_queue") == 0 and stat_int(b, "stats.replication_queue") == 0
    t = c.table()
    holds: dict = {}
    for k in acked:
        for nid in t.nodes_for(k):  # each listed node answers from its own storage
            holds.setdefault(nid, []).append(k)
    missing = []
    for nid, keys in holds.items():
        with c.node(nid).connect() as conn:
            for i in range(0, len(keys), 200):
                chunk = keys[i:i + 200]
                got = conn.exchange(b"".join(b"get %s\r\n" % k for k in chunk))
                for k in chunk:
                    want = b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (k, len(acked[k]), acked[k])
                    if not got.startswith(want):
                        missing.append((k, nid))
                        got = got[got.index(b"END\r\n") + 5:]
                    else:
                        got = got[len(want):]
    print(f"release under writes: {count[0]} writes acknowledged to {len(acked)} keys, {len(missing)} not at their last acknowledged value on a listed node")
    assert not missing, f"{len(missing)} of {len(acked)} keys not at their last acknowledged value on a listed node: {missing[:5]}"
    assert stat_int(r, "stats.redundant_count") > 0


def test_a_copy_made_by_another_secondary_is_streamed_again_by_the_primary(cluster):
    """Ruby ROMA's release copies the vnodes of the releasing node whether it is their primary or
    not, and its copy as a secondary misses the writes the primary took meanwhile. Here the
    `setroute` such a copy ends with (the secondary replaced by a third node that got no data at
    all, the worst case) reaches a romad primary, which streams the vnode to the new node."""
    from romatest import vnode_of
    c = cluster()
    first = c.find_keys("fc", 1)[0]
    primary, secondary, third = c.roles(first)
    vn = vnode_of(first)
    more = []
    i = 0
    while len(more) < 30:  # keys of the same vnode
        k = b"fcv%d" % i
        if vnode_of(k) == vn:
            more.append(k)
        i += 1
    for k in more:
        assert primary.raw(b"set %s 0 0 3\r\nabc\r\n" % k) == b"STORED\r\n"
    assert all(third.raw(b"get %s\r\n" % k) == b"VALUE %s 0 3\r\nabc\r\nEND\r\n" % k for k in more)  # forwarded
    clk = int(primary.raw(b"getroute %d\r\n" % vn).split()[0])
    line = b"setroute %d %d %s %s\r\n" % (vn, clk + 1, primary.node_id.encode(), third.node_id.encode())
    for n in (third, secondary, primary):
        assert n.raw(line) == b"STORED\r\n"
    # The third node now answers from its own storage: it must have got every key.
    wait_for(lambda: all(third.raw(b"get %s\r\n" % k) == b"VALUE %s 0 3\r\nabc\r\nEND\r\n" % k for k in more),
             20.0, "the primary to stream the vnode to the node another's copy added")
    wait_for(lambda: stat_int(primary, "stats.vnode_restreams") == 0 and stat_int(third, "stats.vnode_restreams") == 0,
             20.0, "the streams again to end")
    assert stat_int(primary, "stats.vnode_records_sent") >= len(more)
    # The primary did it on its own: the third node did not have to ask (it asks a primary
    # that sends nothing within 10 s, as a Ruby one would not).
    assert f"vnode {vn} pushed here by another node" not in c.logs(), "the primary streamed it on its own"


def test_balance_gives_a_node_below_its_share_its_primaries_back(cluster):
    c = cluster()
    a, b, low = c.nodes
    for i in range(300):
        assert c.nodes[i % 3].raw(b"set bl%d 0 0 2\r\nzz\r\n" % i) == b"STORED\r\n"
    t = c.table()
    demoted = 0
    for vn, lst in sorted(t.v_idx.items()):
        if lst[0] == low.node_id and demoted < 80:
            clk = int(a.raw(b"getroute %d\r\n" % vn).split()[0])
            line = b"setroute %d %d %s %s\r\n" % (vn, clk + 1, lst[1].encode(), lst[0].encode())
            for n in c.nodes:  # the routing sync may have brought it there first
                assert n.raw(line) in (b"STORED\r\n", b"SERVER_ERROR It's old table.\r\n")
            demoted += 1
    assert stat_int(low, "routing.primary") < 512 // 3 - 1
    got = a.raw(b"balance\r\n")
    assert got.count(b'"STARTED"') == 1 and b"Not unbalance" in got, got
    wait_for(lambda: abs(stat_int(low, "routing.primary") - 512 / 3) <= 1 and low.raw(b"stat run_balance\r\n")
             == b"stats.run_balance false\r\nEND\r\n", 60.0, "balance to even the primaries out")
    wait_for(lambda: len({n.raw(b"mklhash 0\r\n") for n in c.nodes}) == 1, 20.0, "routing to agree")
    for n in c.nodes:
        assert abs(stat_int(n, "routing.primary") - 512 / 3) <= 1.5
    for i in range(300):
        for n in c.nodes:
            assert n.raw(b"get bl%d\r\n" % i) == b"VALUE bl%d 0 2\r\nzz\r\nEND\r\n" % i


def test_roma_adm_follows_recover_to_its_end(cluster):
    import json
    import os
    import subprocess
    from romatest import ROMAD_BIN
    adm = os.environ.get("ROMA_ADM_BIN") or os.path.join(os.path.dirname(ROMAD_BIN), "roma-adm")
    c = cluster()
    a, b, dead = c.nodes
    for i in range(200):
        assert c.nodes[i % 3].raw(b"set ad%d 0 0 1\r\nx\r\n" % i) == b"STORED\r\n"
    dead.kill9()
    wait_for(lambda: dead.node_id not in nodelist(a), 8.0, "the leave")
    r = subprocess.run([adm, "recover", f"{a.host}:{a.port}", "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ok"] is True and "STARTED" in out["reply"], out
    assert out["result"]["stats.run_recover"] == "false", out
    wait_for(lambda: stat_int(a, "routing.short_vnodes") == 0, 30.0, "the other node's recover too")
    r = subprocess.run([adm, "nodelist", str(b.port), "--host", b.host], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.split() == [a.node_id, b.node_id], r
    r = subprocess.run([adm, "release", f"{b.host}:{b.port}"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "fewer nodes than the redundancy" in r.stdout, r


def test_auto_recover_runs_recover_after_a_quiet_wait(cluster):
    c = cluster()
    a, b, dead = c.nodes
    for i in range(200):
        assert c.nodes[i % 3].raw(b"set au%d 0 0 1\r\nx\r\n" % i) == b"STORED\r\n"
    got = a.raw(b"set_auto_recover true 2\r\n")
    assert got.count(b'"STORED"') == 3, got
    assert stats(b, "routing.auto_recover") == {"routing.auto_recover": "true", "routing.auto_recover_status": "waiting",
                                                "routing.auto_recover_time": "2"}
    assert a.raw(b"set_auto_recover maybe\r\n") == b"CLIENT_ERROR arguments must be true or false\r\n"
    assert a.raw(b"set_auto_recover true 0\r\n") == b"CLIENT_ERROR length must be greater than zero\r\n"
    dead.kill9()
    wait_for(lambda: stats(a, "auto_recover_status")["routing.auto_recover_status"] == "preparing", 8.0,
             "the leave to arm auto-recover")
    wait_for(lambda: stat_int(a, "routing.short_vnodes") == 0 and stat_int(b, "routing.short_vnodes") == 0, 30.0,
             "auto-recover to restore two copies of every vnode")
    wait_for(lambda: stats(a, "auto_recover_status")["routing.auto_recover_status"] == "waiting", 10.0, "the status to return")
    for i in range(200):
        assert a.raw(b"get au%d\r\n" % i) == b.raw(b"get au%d\r\n" % i) == b"VALUE au%d 0 1\r\nx\r\nEND\r\n" % i


def test_a_memory_node_restarted_empty_leaves_and_joins_again_before_it_serves(tmp_path):
    """A node on the memory engine has nothing after a restart, but its route file still lists it
    for its vnodes (ROMA 1.3 then answered reads of them as misses: spec §11 item 12). romad
    tells the others `leave <me>` before it listens and joins through one of them: from its first
    request on, every key is found through it, and once the join ends it holds its share again."""
    from cluster_support import Cluster
    c = Cluster(tmp_path / "c", engine="memory").prepare()
    try:
        for n in c.nodes:   # one after the other: each later one finds the earlier ones up
            n.spawn()
            n.wait_ready()
        c.wait_serving()
        a, b, m = c.nodes
        # A cluster started from mkroute is not a restart: nobody leaves or joins.
        for n in c.nodes:
            assert n.raw(b"stat routing.event$\r\n") == b"routing.event []\r\nEND\r\n", n.log_text()[-2000:]
        keys = [b"mem%d" % i for i in range(300)]
        for i, k in enumerate(keys):
            assert c.nodes[i % 3].raw(b"set %s 0 0 4\r\nv%03d\r\n" % (k, i)) == b"STORED\r\n"
        held_before = stat_int(m, "routing.primary") + stat_int(m, "routing.secondary1")
        assert held_before > 0
        assert m.stop() == 0
        m.start()
        for i, k in enumerate(keys):
            assert m.raw(b"get " + k + b"\r\n") == b"VALUE %s 0 4\r\nv%03d\r\nEND\r\n" % (k, i), k
        log = m.log_text()
        assert f"leave {m.node_id}" in log and "joined the cluster through" in log, log[-3000:]
        wait_for(lambda: m.raw(b"stat run_join\r\n") == b"stats.run_join false\r\nEND\r\n", 60.0, "the join to end")
        wait_for(lambda: stat_int(m, "routing.primary") + stat_int(m, "routing.secondary1") > 0, 10.0,
                 "the restarted node to hold vnodes again")
        table = c.table(refresh=True)
        for i, k in enumerate(keys):
            for nid in table.nodes_for(k):
                got = c.node(nid).raw(b"get " + k + b"\r\n")
                assert got == b"VALUE %s 0 4\r\nv%03d\r\nEND\r\n" % (k, i), (k, nid)
        assert a.raw(b"mklhash 0\r\n") == b.raw(b"mklhash 0\r\n") == m.raw(b"mklhash 0\r\n")
    finally:
        problems = finish_cluster(c)
        assert not problems, problems
