"""Join (issue #12 item 2, spec R5.4, R5.8): a third node joins a two-node cluster (rn = 2) with
`romad … -j host:port` while writers run; the vnode copies stream through `reqpushv`/`spushv`.

Checked: routing converges on all three nodes (same `mklhash 0`), every vnode keeps two nodes on
two hosts, every node holds within one of rn × 512 / 3 vnodes and of 512 / 3 primaries, the new
node's TokyoCabinet files hold data (read with `tchmgr`), no write acknowledged before, during or
after the join is lost, and reads of acknowledged keys never miss while the join runs.
"""
from __future__ import annotations

import os
import re
import struct
import threading
import time

import pytest

from cluster_support import Cluster, stat_int, Table
from romatest import Romad, free_port, run_with_stderr_on_a_terminal, tchmgr_list, vnode_of, wait_for
from snapshot_support import get_many, keys_for_division, live_records, load, safecopy_states, wait_division


def _preload(nodes, n: int, tag: bytes, fill: bytes) -> dict:
    """Sets `n` keys `<tag><i>` (6-byte values `<fill><i:05>`) through the nodes in turn."""
    keys = {}
    for i in range(n):
        k, v = b"%s%d" % (tag, i), b"%s%05d" % (fill, i)
        assert nodes[i % len(nodes)].raw(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(v), v)) == b"STORED\r\n"
        keys[k] = v
    return keys


def _newcomer(tmp_path, cl, seed, args=(), env=None) -> Romad:
    """A third node (127.0.0.3) joining through `seed` (`-j`), started and added to the cluster."""
    node = Romad(tmp_path / "c" / "node3", engine="tc", port=free_port("127.0.0.3"), storage_path=cl.storage,
                 address="127.0.0.3", env=env,
                 extra_args=["--rttable-path", str(cl.rttable.resolve()), "-j", f"127.0.0.1:{seed.port}"] + list(args))
    node.start()
    cl.nodes.append(node)
    return node


@pytest.mark.parametrize("index", ["file seed", "vnode index", "index over budget"])
def test_join_while_writing_moves_a_full_share_and_loses_nothing(tmp_path, index):
    # "file seed": the newcomer takes node 1's division files, then the writes made meanwhile
    # (the default for an empty TokyoCabinet joiner). The others copy vnodes record by record:
    # "index over budget" with 2 KiB for all ten divisions' vnode indexes, so every division
    # gives its index up while building it and each copy reads its division instead.
    budget = ["--vnode-index-memory", "0.002"] if index == "index over budget" else []
    seeding = ["--join-file-seed", "true" if index == "file seed" else "false"]
    cl = Cluster(tmp_path / "c", addresses=("127.0.0.1", "127.0.0.2"), extra_args=budget)
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
        newcomer = _newcomer(tmp_path, cl, a, budget + seeding)
        wait_for(lambda: newcomer.raw(b"stat run_join\r\n") == b"stats.run_join false\r\nEND\r\n", 120.0, "the join to end")
        indexed = stat_int(a, "stats.vnode_index_keys") + stat_int(b, "stats.vnode_index_keys")
        if index == "file seed":
            log = newcomer.log_text()
            assert "join: seeded from" in log, log[-3000:]
            assert stat_int(newcomer, "stats.seed_bytes_received") > 0
            # The records of vnodes it does not own are purged in the background.
            wait_for(lambda: "join: purged" in newcomer.log_text(), 60.0, "the purge of the seeded records not owned")
            assert stat_int(newcomer, "stats.seed_records_dropped") > 0
        elif index == "vnode index":
            # The sources found each vnode's keys in their vnode indexes (one pass per division,
            # then kept current by their writes): every key they held is listed there.
            assert indexed >= 2 * 1500
        else:
            assert indexed == 0
            assert stat_int(a, "stats.vnode_index_memory") == 2097
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
        # ... and nothing else: a seed's records of vnodes not listed for it are gone.
        foreign = [k for k in held if newcomer.node_id not in table.nodes_for(k)]
        assert not foreign, foreign[:5]
    finally:
        cl.stop(check=False)
        cl.cleanup()


def test_vnodes_copied_to_a_seeded_node_while_its_purge_runs_keep_their_records(tmp_path):
    """After a file seed the newcomer holds records of vnodes it does not own and purges them in
    the background (slowed down here by a test hook). A node is killed and `recover` copies
    vnodes of that purge to the newcomer while it runs: each copy claims its vnode, whose
    records stay (including ones the stream brings unchanged), so no key is lost; once the purge
    is over the newcomer's files hold exactly the keys of the vnodes listed for it."""
    env = {"ROMAD_TEST_SEED_PURGE_PAUSE_US": "500000"}
    cl = Cluster(tmp_path / "c", addresses=("127.0.0.1", "127.0.0.2"), env=env)
    cl.start()
    try:
        a, b = cl.nodes
        keys = _preload(cl.nodes, 3000, b"pc", b"p")
        newcomer = _newcomer(tmp_path, cl, a, ["--join-file-seed", "true"], env=env)
        wait_for(lambda: newcomer.raw(b"stat run_join\r\n") == b"stats.run_join false\r\nEND\r\n", 120.0, "the join")
        assert "join: seeded from" in newcomer.log_text()
        assert "join: purged" not in newcomer.log_text(), "the purge is slowed down: still running"
        b.kill9()
        cl.nodes.remove(b)
        wait_for(lambda: b.node_id not in a.raw(b"nodelist\r\n").decode(), 10.0, "the leave")
        assert b"STARTED" in newcomer.raw(b"recover\r\n")
        wait_for(lambda: stat_int(a, "routing.short_vnodes") == 0 and stat_int(newcomer, "routing.short_vnodes") == 0,
                 120.0, "the recover")
        assert "copied here while a seed's purge runs" in newcomer.log_text()
        wait_for(lambda: "join: purged" in newcomer.log_text(), 120.0, "the purge to end")
        for node in cl.nodes:
            with node.connect() as conn:
                for k, v in keys.items():
                    assert conn.exchange(b"get %s\r\n" % k) == b"VALUE %s 0 6\r\n%s\r\nEND\r\n" % (k, v), (node.node_id, k)
        table = Table(a.raw(b"routingdump json\r\n"))
        assert not cl.stop(check=True)
        held = {}
        for f in (cl.storage / newcomer.node_id / "roma").glob("[0-9].tc"):
            held.update(tchmgr_list(f))
        mine = {k for k in keys if newcomer.node_id in table.nodes_for(k)}
        assert mine == set(held) & set(keys), (len(mine), len(held))
    finally:
        cl.stop(check=False)
        cl.cleanup()


def test_a_joiner_killed_during_its_file_seed_leaves_the_cluster_as_it_was(tmp_path):
    """The newcomer is killed (`kill -9`) while the seed sends it division files (paced to
    50 KB/s so that this takes a while): the sender's division goes back to normal, the
    newcomer leaves the routing table, the transactions the primaries opened to it go with it,
    and every write before, during and after is on both old nodes."""
    small = ["--storage-option", "bnum=1000", "--copy-bandwidth", "0.05"]
    cl = Cluster(tmp_path / "c", addresses=("127.0.0.1", "127.0.0.2"), extra_args=small)
    cl.start()
    try:
        a, b = cl.nodes
        value = b"v" * 700
        keys = {b"ks%d" % i: value for i in range(400)}
        for i, k in enumerate(keys):
            assert cl.nodes[i % 2].raw(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(value), value)) == b"STORED\r\n"
        newcomer = _newcomer(tmp_path, cl, a, small + ["--join-file-seed", "true"])
        wait_for(lambda: "fileseed: sending division" in a.log_text(), 30.0, "the seed to send a file")
        for i in range(50):  # writes while the transactions are open
            k = b"during%d" % i
            assert cl.nodes[i % 2].raw(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(value), value)) == b"STORED\r\n"
            keys[k] = value
        newcomer.kill9()
        cl.nodes.remove(newcomer)
        wait_for(lambda: newcomer.node_id not in a.raw(b"nodelist\r\n").decode()
                 and newcomer.node_id not in b.raw(b"nodelist\r\n").decode(), 15.0, "the leave")
        wait_for(lambda: a.raw(b"stat safecopy_stats\r\n").count(b":normal") == 10, 30.0, "the sender's divisions back to normal")
        queues = lambda: stat_int(a, "stats.replication_queue") + stat_int(b, "stats.replication_queue")  # noqa: E731
        wait_for(lambda: queues() == 0, 30.0, "replica writes for the dead newcomer to be settled")
        dropped = stat_int(a, "stats.replication_dropped") + stat_int(b, "stats.replication_dropped")
        for i in range(50):
            k = b"after%d" % i
            assert cl.nodes[i % 2].raw(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(value), value)) == b"STORED\r\n"
            keys[k] = value
        # No transaction sends to the node that left: nothing new is queued for it or dropped.
        assert queues() == 0
        assert stat_int(a, "stats.replication_dropped") + stat_int(b, "stats.replication_dropped") == dropped
        table = Table(a.raw(b"routingdump json\r\n"))
        assert all(sorted(l) == sorted([a.node_id, b.node_id]) for l in table.v_idx.values())
        for node in (a, b):
            with node.connect() as conn:
                for k, v in keys.items():
                    assert conn.exchange(b"get %s\r\n" % k) == b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (k, len(v), v), (node.node_id, k)
        assert not cl.stop(check=True)
    finally:
        cl.stop(check=False)
        cl.cleanup()


@pytest.mark.parametrize("mode", ["file seed", "records"])
def test_join_racing_cpdb_on_the_source_loses_nothing(tmp_path, mode):
    """A join copies vnodes (or, with a file seed, whole division files) out of divisions that
    cpdb is snapshotting at the same time (each safecopy state held 200 ms longer by the test
    hook): copies and file sends wait for `normal` divisions, cpdb waits for a division a file
    seed holds, writes during the snapshot go to the caches, and afterwards every key is
    everywhere it should be and the snapshot verifies."""
    seeding = ["--join-file-seed", "true" if mode == "file seed" else "false"]
    import os
    import subprocess
    from romatest import ROMAD_BIN
    cpdb = os.environ.get("CPDB_BIN") or os.path.join(os.path.dirname(ROMAD_BIN), "cpdb")
    cl = Cluster(tmp_path / "c", addresses=("127.0.0.1", "127.0.0.2"), env={"ROMAD_TEST_SAFECOPY_DELAY_MS": "200"})
    cl.start()
    try:
        a, b = cl.nodes
        keys = _preload(cl.nodes, 2000, b"cj", b"c")
        snap = subprocess.Popen([cpdb, "--host", "127.0.0.1", str(a.port), "--no-progress"], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        wait_for(lambda: b"safecopy" in a.raw(b"stat safecopy_stats\r\n"), 10.0, "cpdb to start")
        newcomer = _newcomer(tmp_path, cl, a, seeding)
        for i in range(2000, 2600):  # writes while both run
            k, v = b"cj%d" % i, b"c%05d" % i
            assert cl.nodes[i % 3].raw(b"set %s 0 0 6\r\n%s\r\n" % (k, v)) == b"STORED\r\n"
            keys[k] = v
        out, _ = snap.communicate(timeout=120)
        assert snap.returncode == 0, out
        wait_for(lambda: newcomer.raw(b"stat run_join\r\n") == b"stats.run_join false\r\nEND\r\n", 120.0, "the join")
        wait_for(lambda: len({n.raw(b"mklhash 0\r\n") for n in cl.nodes}) == 1, 30.0, "routing to converge")
        wait_for(lambda: a.raw(b"stat safecopy_stats\r\n").count(b":normal") == 10, 30.0, "every division back to normal")
        table = Table(a.raw(b"routingdump json\r\n"))
        assert all(len(l) == 2 for l in table.v_idx.values())
        assert sum(1 for l in table.v_idx.values() if newcomer.node_id in l) > 300
        for node in cl.nodes:
            with node.connect() as conn:
                for k, v in keys.items():
                    assert conn.exchange(b"get %s\r\n" % k) == b"VALUE %s 0 6\r\n%s\r\nEND\r\n" % (k, v), (node.node_id, k)
        hash_dir = a.node_dir / "roma"
        manifests = sorted(hash_dir.glob("snapshot-*.json"))
        assert manifests, out
        v = subprocess.run([cpdb, "verify", str(manifests[-1])], capture_output=True, text=True, timeout=60)
        assert v.returncode == 0, v.stdout + v.stderr
        if mode == "file seed":
            assert "join: seeded from" in newcomer.log_text()
    finally:
        cl.stop(check=False)
        cl.cleanup()


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stream_record(key: bytes, value: bytes, logical: int = 7) -> bytes:
    """One spushv record (R5.8): vn, physical, logical, expire, klen, key, vlen, value."""
    return struct.pack(">IIIII", vnode_of(key), int(time.time()), logical, 0x7FFFFFFF, len(key)) + key + \
        struct.pack(">I", len(value)) + value


def test_spushv_stream_split_anywhere_is_stored_off_loop_and_waits_idle(romad):
    """A vnode stream arriving in pieces (a record cut in two, a pause mid-record): the records
    are stored (off the event loop), the node waits for the rest without spinning, requests on
    other connections are served meanwhile, and the terminator is answered STORED."""
    vn = vnode_of(b"sp0")
    keys = [k for k in (b"sp%d" % i for i in range(200000)) if vnode_of(k) == vn][:40]
    assert len(keys) == 40
    recs = [_stream_record(k, b"value-" + k) for k in keys]
    body = b"".join(recs)
    with romad.connect() as c:
        c.send(b"spushv roma %d\r\n" % vn)
        assert c.read_line() == b"READY\r\n"
        cut = len(recs[0]) + len(recs[1]) // 2
        c.send(body[:cut])                       # one record and half of the next
        wait_for(lambda: romad.raw(b"get %s\r\n" % keys[0]) != b"END\r\n", 10, "the first record stored")
        before = _cpu_seconds(romad.pid)
        time.sleep(1.0)                          # the node now waits for the rest of record 2
        idle = _cpu_seconds(romad.pid) - before
        assert idle < 0.3, f"romad used {idle:.2f} s of CPU in 1 s while waiting for the rest of a record"
        assert romad.raw(b"version\r\n").startswith(b"VERSION ")
        for i in range(cut, len(body), 7):       # the rest in 7-byte pieces
            c.send(body[i:i + 7])
        c.send(b"\0" * 20)
        assert c.read_line(timeout=10) == b"STORED\r\n"
        assert c.exchange(b"version\r\n").startswith(b"VERSION ")
    for k in keys:
        assert romad.raw(b"get %s\r\n" % k) == b"VALUE %s 0 %d\r\nvalue-%s\r\nEND\r\n" % (k, 6 + len(k), k)


def test_spushv_length_warnings_are_settable_and_logged(romad):
    """`set_spushv_klength_warn` / `set_spushv_vlength_warn` (ROMA's runtime setters): a streamed
    record with a longer key or value is stored and logged; `stat` shows the settings."""
    me = romad.node_id
    assert romad.raw(b"stat spushv_.length_warn\r\n") == \
        b"stats.spushv_klength_warn 1024\r\nstats.spushv_vlength_warn 1048576\r\nEND\r\n"
    assert romad.raw(b"set_spushv_klength_warn 0\r\n") == b"CLIENT_ERROR size value must be larger than 0\r\n"
    assert romad.raw(b"set_spushv_vlength_warn\r\n") == b"CLIENT_ERROR number of arguments\r\n"
    assert romad.raw(b"set_spushv_klength_warn 8\r\n") == b'{"%s"=>"STORED"}\r\n' % me.encode()
    assert romad.raw(b"set_spushv_vlength_warn 16\r\n") == b'{"%s"=>"STORED"}\r\n' % me.encode()
    assert romad.raw(b"stat spushv_.length_warn\r\n") == \
        b"stats.spushv_klength_warn 8\r\nstats.spushv_vlength_warn 16\r\nEND\r\n"
    long_key, long_value = b"a-rather-long-key", b"v" * 40
    vn = vnode_of(long_key)
    short = next(k for k in (b"s%d" % i for i in range(200000)) if vnode_of(k) == vn)
    with romad.connect() as c:
        c.send(b"spushv roma %d\r\n" % vn)
        assert c.read_line() == b"READY\r\n"
        c.send(_stream_record(long_key, b"x") + _stream_record(short, long_value) + b"\0" * 20)
        assert c.read_line(timeout=10) == b"STORED\r\n"
    assert romad.raw(b"get " + long_key + b"\r\n") == b"VALUE %s 0 1\r\nx\r\nEND\r\n" % long_key
    wait_for(lambda: "too long key: key = a-rather-long-key" in romad.log_text()
             and f"too long value: key = {short.decode()} vlen = 40" in romad.log_text(), 5, "both warnings")


@pytest.mark.parametrize("mode", ["file seed", "records", "auto"])
def test_copy_bandwidth_limit_paces_the_copies_of_a_join(tmp_path, mode):
    """`--copy-bandwidth` (VNODE_COPY_BANDWIDTH): the vnode copies (or a file seed's division
    files) leaving a node never stream faster than the limit together (plus one 64 KiB chunk per
    copy in flight), the join still completes, and every record is on the newcomer's share.
    "file seed" has small TokyoCabinet bucket arrays (bnum=1000), so the files are about the
    records' size; with "auto" and the default bnum the ten files' bucket arrays alone would take
    far longer at this rate than the records: the newcomer copies records, and says why."""
    seeding = ["--join-file-seed", {"file seed": "true", "records": "false", "auto": "auto"}[mode]]
    small = ["--storage-option", "bnum=1000"] if mode == "file seed" else []
    rate = 100_000  # bytes/s per sending node (--copy-bandwidth 0.1 MB/s)
    cl = Cluster(tmp_path / "c", addresses=("127.0.0.1", "127.0.0.2"),
                 extra_args=["--copy-bandwidth", "0.1", "--copy-parallelism", "3"] + small)
    cl.start()
    newcomer = None
    try:
        a, b = cl.nodes
        assert stat_int(a, "stats.vnode_copy_bandwidth") == rate
        assert stat_int(a, "stats.vnode_copy_parallelism") == 3
        value = b"v" * 700
        keys = [b"bw%d" % i for i in range(400)]
        for k in keys:
            assert a.raw(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(value), value)) == b"STORED\r\n"
        burst = 2 * 3 * 72 * 1024  # two senders, three copies each, one chunk (+ terminator) apiece
        t0 = time.monotonic()
        newcomer = _newcomer(tmp_path, cl, a, seeding + small)
        sent = 0
        while True:
            done = newcomer.raw(b"stat run_join\r\n") == b"stats.run_join false\r\nEND\r\n"
            sent = stat_int(a, "stats.vnode_bytes_sent") + stat_int(b, "stats.vnode_bytes_sent")
            elapsed = time.monotonic() - t0
            assert sent <= 2 * rate * elapsed + burst, f"{sent} bytes streamed in {elapsed:.2f} s: over the limit"
            if done:
                break
            assert elapsed < 120, "the join did not end"
            time.sleep(0.1)
        assert sent >= 150_000, f"only {sent} bytes were copied"
        assert time.monotonic() - t0 >= (sent - burst) / (2 * rate)
        table = cl.table(refresh=True)
        mine = [k for k in keys if newcomer.node_id in table.nodes_for(k)]
        assert len(mine) > 100
        for k in mine:
            assert newcomer.raw(b"get %s\r\n" % k) == b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (k, len(value), value)
        log = newcomer.log_text()
        if mode == "file seed":
            assert "join: seeded from" in log, log[-3000:]
        else:
            assert "join: seeded from" not in log
        if mode == "auto":
            assert "division files" in log and "vnodes are copied as records" in log, log[-3000:]
        assert not cl.stop(check=True)
    finally:
        cl.stop(check=False)
        cl.cleanup()



def test_fileseed_file_holds_the_division_until_the_receiver_closes(romad, tmp_path):
    """`fileseed file` (what a joining node asks its seed for): `FILE <size>`, the division file
    as it was when asked for, `END`. The bytes go out with sendfile(2), so the kernel reads the
    file's pages when the receiver reads them: the division stays in `safecopy_flushed` (writes
    go to its cache) until the receiver closes the connection, even after it has read every
    byte, and only then goes back to `normal` with the writes made meanwhile merged. A receiver
    that closes halfway releases it too. Nothing acknowledged is lost either way."""
    d = 3
    keys = keys_for_division(d, 300, "fs")
    load(romad, {k: b"old-" + k for k in keys})
    new = {k: b"new-" + k for k in keys}
    with romad.connect() as c:
        c.send(b"fileseed file roma %d\r\n" % d)
        head = c.read_line()
        assert head.startswith(b"FILE "), head
        size = int(head.split()[1])
        assert safecopy_states(romad)[d] == "safecopy_flushed"
        assert f"storage.fileseed_divisions [{d}]" in romad.raw(b"stat fileseed\r\n").decode()
        # Written before a byte of the file was read: into the cache, not the file being sent.
        load(romad, new)
        body = c.read_exact(size, timeout=30)
        assert c.read_line() == b"END\r\n"
        # Every byte read, the connection still open: the division is still held.
        assert safecopy_states(romad)[d] == "safecopy_flushed"
        assert get_many(romad, keys) == new
    wait_division(romad, d, "normal", timeout=30)
    assert b"fileseed_divisions" not in romad.raw(b"stat fileseed\r\n")
    # The file received is the division as it was asked for: the old values, none of the new.
    path = tmp_path / "received.tc"
    path.write_bytes(body)
    assert live_records(path) == {k: b"old-" + k for k in keys}
    assert get_many(romad, keys) == new
    # A receiver that goes away halfway releases the division too.
    with romad.connect() as c:
        c.send(b"fileseed file roma %d\r\n" % d)
        assert c.read_line().startswith(b"FILE ")
        c.read_exact(min(size, 1000), timeout=30)
    wait_division(romad, d, "normal", timeout=30)
    assert get_many(romad, keys) == new
    romad.assert_healthy()


def test_roma_adm_follows_a_join_and_drives_balance_and_failover_switches(tmp_path):
    """`roma-adm join HOST:PORT --json` follows a node started with `romad -j` to the join's
    end (issue #12 item 6); after it the new node is primary for its share, `roma-adm balance`
    reports nothing to even out (exit 1, ROMA's relayed `SERVER_ERROR`), `roma-adm
    switch_failover off|on` reaches every node, and `roma-adm nodelist` lists the three. With its
    standard error on a terminal it shows a progress line while it follows."""
    import json
    import subprocess
    from romatest import ROMAD_BIN
    adm = os.environ.get("ROMA_ADM_BIN") or os.path.join(os.path.dirname(ROMAD_BIN), "roma-adm")
    cl = Cluster(tmp_path / "c", addresses=("127.0.0.1", "127.0.0.2"))
    cl.start()
    try:
        a, b = cl.nodes
        _preload([a, b], 300, b"ad", b"a")
        newcomer = _newcomer(tmp_path, cl, a)
        where = f"{newcomer.address}:{newcomer.port}"
        # On a terminal it shows a progress line while it follows the join, and erases it at the end.
        rc, _, shown = run_with_stderr_on_a_terminal([adm, "join", where], timeout=180)
        assert rc == 0, shown
        assert re.search(r"\rjoin: \d+ s, this node primary of \d+ and in \d+ vnodes, short vnodes \d+ ", shown), shown
        assert shown.endswith("\r\x1b[K"), shown[-200:]
        r = subprocess.run([adm, "join", where, "--json"], capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, r
        out = json.loads(r.stdout)
        assert out["ok"] is True and out["node"] == where, out
        assert out["result"]["stats.run_join"] == "false", out
        vnodes = int(out["result"]["routing.vnodes.length"])
        primaries = int(out["result"]["routing.primary"])
        assert abs(primaries - vnodes / 3) <= 1, out["result"]
        assert newcomer.raw(b"stat run_join\r\n") == b"stats.run_join false\r\nEND\r\n"

        r = subprocess.run([adm, "balance", f"{a.address}:{a.port}", "--json"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 1, r
        out = json.loads(r.stdout)
        assert out["ok"] is False and out["reply"].count("SERVER_ERROR Not unbalance") == 3, out

        r = subprocess.run([adm, "switch_failover", "off", where], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stdout.count('"DISABLED"') == 3, r
        for n in cl.nodes:
            assert n.raw(b"stat enabled_failover\r\n") == b"routing.enabled_failover false\r\nEND\r\n", n.node_id
        r = subprocess.run([adm, "switch_failover", "on", str(b.port), "--host", b.address], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stdout.count('"ENABLED"') == 3, r

        r = subprocess.run([adm, "nodelist", where], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and sorted(r.stdout.split()) == sorted(n.node_id for n in cl.nodes), r
        assert not cl.stop(check=True)
    finally:
        cl.stop(check=False)
        cl.cleanup()

