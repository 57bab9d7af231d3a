"""ROMA's runtime setters that were missing (spec R3.6, R5.8, R6.6, R9.1): each answers as ROMA
does, is relayed to every node with its `r` form, shows in `stat`, and has its effect.

- `set_continuous_limit` (R3.6): over `start` connections a client command may be answered
  `ERROR` and its connection closed; commands from other nodes never are;
- `set_accepted_connection_expire_time` (R3.6): idle accepted connections are closed;
- `set_latency_avg_calc_rule` and friends: reply-time averages logged per period;
- `set_log_shift_size` / `set_log_shift_age`: the daemon's log file is rotated;
- `set_routing_trans_timeout`: a copy whose transaction outlives it is given up;
- `set_spushv_read_timeout`: how long a received vnode stream may stall;
- `dcnice`, `set_reqpushv_timeout_count`, the pool setters, `restart`.
"""
from __future__ import annotations

import os
import signal
import socket
import struct
import threading
import time
from pathlib import Path

import pytest

from cluster_support import parse_stats, stats, two_node_cluster
from romatest import Conn, Romad, free_port, pids_with_in_cmdline, raw, start_daemon, vnode_of, wait_for


def hash_reply(*pairs) -> bytes:
    return b"{" + b", ".join(b'"%s"=>"%s"' % (n.encode(), v.encode()) for n, v in pairs) + b"}\r\n"


def test_setters_answer_as_roma_and_show_in_stat(romad):
    me = romad.node_id
    ok = hash_reply((me, "STORED"))
    cases = [
        (b"set_continuous_limit 10:20:30", ok), (b"set_continuous_limit 40:20:30", hash_reply((me, "NOT_STORED"))),
        (b"set_continuous_limit 1:101:3", hash_reply((me, "NOT_STORED"))),
        (b"set_continuous_limit", b"CLIENT_ERROR number of arguments (0 for 1)\r\n"),
        (b"set_accepted_connection_expire_time 300", ok),
        (b"set_accepted_connection_expire_time", b"CLIENT_ERROR number of arguments\r\n"),
        (b"set_connection_pool_maxlength 7", ok),
        (b"set_connection_pool_maxlength 0", b"CLIENT_ERROR length must be greater than zero\r\n"),
        (b"set_emconnection_pool_maxlength 9", ok), (b"set_connection_pool_expire_time 40", ok),
        (b"set_emconnection_pool_expire_time 0", ok),
        (b"set_routing_trans_timeout 3600", ok),
        (b"set_routing_trans_timeout 0", b"CLIENT_ERROR time value must be lager than 0\r\n"),
        (b"set_routing_trans_timeout", b"CLIENT_ERROR number of arguments\r\n"),
        (b"set_spushv_read_timeout 50", ok),
        (b"set_spushv_read_timeout -1", b"CLIENT_ERROR time value must be lager than 0\r\n"),
        (b"set_reqpushv_timeout_count 600", ok),
        (b"dcnice 4", ok), (b"dcnice 6", hash_reply((me, "CLIENT_ERROR You sholud input a priority from 1 to 5."))),
        (b"dcnice", b"CLIENT_ERROR number of arguments (0 for 1)\r\n"),
        (b"set_log_shift_size 2048", ok), (b"set_log_shift_size 0", b"CLIENT_ERROR length must be greater than zero\r\n"),
        (b"set_log_shift_age weekly", ok), (b"set_log_shift_age yearly", b"CLIENT_ERROR invalid arguments\r\n"),
        (b"set_latency_avg_calc_rule on 5 get set", hash_reply((me, "ACTIVATED"))),
        (b"set_latency_avg_calc_rule maybe", b'CLIENT_ERROR argument 1: please input "on" or "off"\r\n'),
        (b"set_latency_avg_calc_rule on 0 get",
         b"CLIENT_ERROR number of arguments (0 for 3) and <count> must be greater than zero\r\n"),
        (b"set_latency_avg_calc_rule on 5 stat", b"NOT SUPPORT [stat] command\r\n"),
        (b"add_latency_avg_calc_cmd get", b"ALREADY SET [get] command\r\n"),
        (b"add_latency_avg_calc_cmd delete incr", hash_reply((me, "SET"))),
        (b"del_latency_avg_calc_cmd decr", b"[decr] command is NOT set\r\n"),
        (b"del_latency_avg_calc_cmd incr", hash_reply((me, "DELETED"))),
        (b"chg_latency_avg_calc_time_count 0", b"CLIENT_ERROR <count> must be greater than zero or nil[DEACTIVATE]\r\n"),
        (b"chg_latency_avg_calc_time_count 7", hash_reply((me, "CHANGED"))),
        # the r forms answer alone
        (b"rset_spushv_read_timeout 60", b"STORED\r\n"), (b"rdcnice 2", b"STORED\r\n"),
    ]
    with romad.connect() as c:
        for line, want in cases:
            assert c.exchange(line + b"\r\n") == want, line
    st = stats(romad, r"continuous|expire_time|maxlength|dcnice|wait_param|latency_|read_timeout|timeout_count|"
                      r"trans_timeout|log_shift|each_vn_dump_sleep")
    assert st["connection.continuous_limit"] == "10:20:30"
    assert st["connection.accepted_connection_expire_time"] == "300"
    assert st["connection.pool_maxlength"] == "7" and st["connection.EMpool_maxlength"] == "9"
    assert st["connection.pool_expire_time"] == "40" and st["connection.EMpool_expire_time"] == "2147483647"
    assert st["stats.routing_trans_timeout"] == "3600.0"
    # ROMA's own suite reads `stat trans` as exactly this line and END: no other stat may match.
    assert romad.raw(b"stat trans\r\n") == b"stats.routing_trans_timeout 3600.0\r\nEND\r\n"
    assert st["stats.spushv_read_timeout"] == "60" and st["stats.reqpushv_timeout_count"] == "600"
    # dcnice 2 (ROMA's table): stream_copy_wait_param 0.005, each_vn_dump_sleep 0.005 every 100 records
    assert st["stats.dcnice"] == "2" and st["stats.stream_copy_wait_param"] == "0.005"
    assert st["storages[roma].storage.each_vn_dump_sleep"] == "0.005"
    assert st["storages[roma].storage.each_vn_dump_sleep_count"] == "100"
    assert st["stats.log_shift_size"] == "2048" and st["stats.log_shift_age"] == "weekly"
    assert st["stats.latency_log"] == "true" and st["stats.latency_check_time_count"] == "7"
    assert st["stats.latency_check_cmd"] == '["get", "set", "delete"]'
    assert romad.raw(b"set_latency_avg_calc_rule off\r\n") == hash_reply((me, "DEACTIVATED"))
    st = stats(romad, r"latency_")
    assert (st["stats.latency_log"], st["stats.latency_check_cmd"], st["stats.latency_check_time_count"]) == \
        ("false", "[]", "false")


def test_setters_are_relayed_to_every_node(tmp_path):
    with two_node_cluster(tmp_path / "c") as cl:
        a, b = cl.nodes
        both = [(b.node_id, "STORED"), (a.node_id, "STORED")]
        for line in (b"set_continuous_limit 300:10:400", b"set_connection_pool_maxlength 3", b"dcnice 1",
                     b"set_routing_trans_timeout 99.5", b"set_log_shift_age 4", b"set_accepted_connection_expire_time 0"):
            assert a.raw(line + b"\r\n") == hash_reply(*both), line
        assert a.raw(b"set_latency_avg_calc_rule on 10 get\r\n") == \
            hash_reply((b.node_id, "ACTIVATED"), (a.node_id, "ACTIVATED"))
        for n in (a, b):
            st = stats(n, r"continuous|pool_maxlength|dcnice|trans_timeout|log_shift_age|latency_check_cmd")
            assert st["connection.continuous_limit"] == "300:10:400", n
            assert st["connection.pool_maxlength"] == "3" and st["stats.dcnice"] == "1"
            assert st["stats.routing_trans_timeout"] == "99.5" and st["stats.log_shift_age"] == "4"
            assert st["stats.latency_check_cmd"] == '["get"]'
        # restart: every connection closes, the node goes on serving, its peers too
        with a.connect() as watcher:
            assert watcher.exchange(b"whoami\r\n") == b"ROMA\r\n"
            assert a.raw(b"restart\r\n") == hash_reply((b.node_id, "RESTARTED"), (a.node_id, "RESTARTED"))
            assert watcher.read_until_close(timeout=10) == b""
        key = b"after-restart"
        assert a.raw(b"set %s 0 0 2\r\nok\r\n" % key) == b"STORED\r\n"
        assert b.raw(b"get %s\r\n" % key) == b"VALUE %s 0 2\r\nok\r\nEND\r\n" % key


def test_continuous_limit_sheds_client_commands_over_start_but_never_peer_commands(romad):
    """R3.6 with `start:rate:full` = 1:0:2: with two connections open, d = 1 and the chance is
    0 + 100 × 1 / 1 = 100 %: every client command is answered, then `ERROR`, then the connection
    closes. System commands (`stat`) and commands other nodes send (`rset`) are never shed."""
    me = romad.node_id
    # without a setting: memcached's 1024 connections (ROMA's config.rb sets 200:30:300)
    assert romad.raw(b"stat continuous_limit\r\n") == b"connection.continuous_limit 1024:100:1024\r\nEND\r\n"
    with romad.connect() as admin:
        assert admin.exchange(b"set_continuous_limit 1:0:2\r\n") == hash_reply((me, "STORED"))
        with romad.connect() as c:
            assert c.exchange(b"stat continuous_limit\r\n") == b"connection.continuous_limit 1:0:2\r\nEND\r\n"
            c.send(b"rset peerkey 0 1 0 1\r\nv\r\n")
            assert c.read_line() == b"STORED\r\n"
            c.send(b"set k 0 0 1\r\nv\r\n")
            assert c.read_until_close(timeout=10) == b"STORED\r\nERROR\r\n"
        assert admin.exchange(b"set_continuous_limit 1024:100:1024\r\n") == hash_reply((me, "STORED"))
        assert admin.exchange(b"get k\r\n") == b"VALUE k 0 1\r\nv\r\nEND\r\n", "the shed command itself ran"
    wait_for(lambda: "Connection count > 1:closed" in romad.log_text(), 5, "ROMA's warning")
    # at the default limit, 300 connections (more than ROMA's 200, as a memcached benchmark
    # opens: memtier's default is 4 x 50) are served as usual
    conns = [Conn(romad.port) for _ in range(300)]
    try:
        for c in conns:
            assert c.exchange(b"get k\r\n") == b"VALUE k 0 1\r\nv\r\nEND\r\n"
    finally:
        for c in conns:
            c.close()


def test_idle_accepted_connections_expire(romad):
    me = romad.node_id
    with romad.connect() as busy, romad.connect() as idle:
        assert busy.exchange(b"set_accepted_connection_expire_time 2\r\n") == hash_reply((me, "STORED"))
        assert idle.exchange(b"whoami\r\n") == b"ROMA\r\n"
        t0 = time.monotonic()
        closed = threading.Event()

        def watch():
            try:
                idle.read_until_close(timeout=30)
            finally:
                closed.set()
        threading.Thread(target=watch, daemon=True).start()
        # the busy connection keeps talking and stays open
        while not closed.is_set() and time.monotonic() - t0 < 25:
            assert busy.exchange(b"whoami\r\n") == b"ROMA\r\n"
            time.sleep(0.2)
        assert closed.is_set(), "the idle connection was not closed"
        assert time.monotonic() - t0 >= 2
        assert busy.exchange(b"whoami\r\n") == b"ROMA\r\n"
    wait_for(lambda: "connection expired from 127.0.0.1:" in romad.log_text(), 5, "the expiry log line")
    assert romad.raw(b"set_accepted_connection_expire_time 0\r\n") == hash_reply((me, "STORED"))


def test_latency_statistics_are_logged_per_period(romad):
    me = romad.node_id
    assert romad.raw(b"set_log_level debug\r\n") == b"STORED\r\n"
    assert romad.raw(b"set_latency_avg_calc_rule on 1 get set\r\n") == hash_reply((me, "ACTIVATED"))
    with romad.connect() as c:
        assert c.exchange(b"set lk 0 0 1\r\nv\r\n") == b"STORED\r\n"

        def logged():
            c.exchange(b"get lk\r\n")
            return "Latency average[get]: " in romad.log_text()
        wait_for(logged, 10, "a latency average line for get", interval=0.1)
    line = next(ln for ln in romad.log_text().splitlines() if "Latency average[get]: " in ln)
    assert "(denominator=" in line and " max=" in line and " min=" in line, line
    assert romad.raw(b"chg_latency_avg_calc_time_count nil\r\n") == hash_reply((me, "CHANGED"))
    assert romad.raw(b"stat latency_log\r\n") == b"stats.latency_log false\r\nEND\r\n"


def test_daemon_log_file_is_rotated_by_size_and_keeps_shift_age_files(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"LOG_PATH: {logs}\nLOG_SHIFT_SIZE: 100000\nLOG_SHIFT_AGE: 3\nSTORAGE_PATH: {tmp_path / 'data'}\n"
                   f"STORAGE_CLASS: memory\n")
    port = free_port()
    nid = f"127.0.0.1_{port}"
    try:
        start_daemon(cfg, port)
        assert raw(port, b"stat log_shift\r\n") == b"stats.log_shift_size 100000\r\nstats.log_shift_age 3\r\nEND\r\n"
        assert raw(port, b"set_log_shift_size 300\r\n") == hash_reply((nid, "STORED"))
        log = logs / f"{nid}.log"
        # every setter logs a line: enough lines for several rotations
        with Conn(port) as c:
            for i in range(12):
                assert c.exchange(b"set_spushv_read_timeout %d\r\n" % (100 + i)) == hash_reply((nid, "STORED"))
        names = sorted(p.name for p in logs.iterdir())
        assert names == [f"{nid}.log", f"{nid}.log.0", f"{nid}.log.1"], names
        assert "set_spushv_read_timeout 111" in log.read_text() + (logs / f"{nid}.log.0").read_text()
        assert raw(port, b"set_log_shift_age 0\r\n") == hash_reply((nid, "STORED"))
        with Conn(port) as c:
            for i in range(5):
                c.exchange(b"set_spushv_read_timeout %d\r\n" % (200 + i))
        assert sorted(p.name for p in logs.iterdir()) == names, "age 0: no more rotation"
        assert "set_spushv_read_timeout 204" in log.read_text()
        # a huge age keeps every file, and shifts only the files there are
        assert raw(port, b"set_log_shift_age 99999999999999999999\r\n") == hash_reply((nid, "STORED"))
        with Conn(port) as c:
            for i in range(8):
                c.exchange(b"set_spushv_read_timeout %d\r\n" % (300 + i))
        more = sorted(p.name for p in logs.iterdir())
        assert len(more) > len(names) and all(f"{nid}.log.{i}" in more for i in range(len(more) - 1)), more
    finally:
        for pid in pids_with_in_cmdline(str(cfg)):
            os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not pids_with_in_cmdline(str(cfg)), 20, "the daemon to exit")


def _record(key: bytes, value: bytes) -> bytes:
    return struct.pack(">IIIII", vnode_of(key), int(time.time()), 1, 0x7FFFFFFF, len(key)) + key + \
        struct.pack(">I", len(value)) + value


def test_copy_older_than_routing_trans_timeout_is_given_up(romad):
    """With `set_routing_trans_timeout 0.001` and `dcnice 5` (a 10 ms pause after each 64 KiB
    chunk), a copy is given up after its first chunk: the source closes the stream without its
    terminator and drops the transaction (the vnode's list is unchanged)."""
    vn = vnode_of(b"tt0")
    keys = [k for k in (b"tt%d" % i for i in range(400000)) if vnode_of(k) == vn][:200]
    value = b"x" * 2000
    with romad.connect() as c:
        for k in keys:
            assert c.exchange(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(value), value)) == b"STORED\r\n"
    route_before = romad.raw(b"getroute %d\r\n" % vn)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    fake = f"127.0.0.1_{srv.getsockname()[1]}"
    got = {}

    def receive():
        s, _ = srv.accept()
        s.settimeout(30)
        f = s.makefile("rb")
        got["line"] = f.readline()
        s.sendall(b"READY\r\n")
        data = b""
        while True:
            time.sleep(0.1)  # a slow receiver
            chunk = s.recv(16384)
            if not chunk:
                break
            data += chunk
        got["bytes"] = len(data)
        got["terminated"] = data.endswith(b"\0" * 20)
        s.close()
    t = threading.Thread(target=receive, daemon=True)
    t.start()
    try:
        assert romad.raw(b"set_routing_trans_timeout 0.001\r\n") == hash_reply((romad.node_id, "STORED"))
        assert romad.raw(b"dcnice 5\r\n") == hash_reply((romad.node_id, "STORED"))
        assert romad.raw(b"reqpushv %d %s false\r\n" % (vn, fake.encode())) == b"PUSHED\r\n"
        t.join(60)
        assert not t.is_alive(), "the source never closed the stream"
        assert got["line"] == b"spushv roma %d\r\n" % vn
        assert not got["terminated"] and got["bytes"] < 100_000, got
        wait_for(lambda: "transaction older than routing_trans_timeout" in romad.log_text(), 10, "the give-up log line")
        assert romad.raw(b"getroute %d\r\n" % vn) == route_before
        assert romad.raw(b"get %s\r\n" % keys[0]).startswith(b"VALUE")
    finally:
        srv.close()


def test_spushv_read_timeout_bounds_a_stalled_stream(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("DATA_READ_TIMEOUT: 1\n")
    n = Romad(tmp_path / "n", engine="memory", extra_args=["--config", str(cfg)]).start()
    try:
        assert n.raw(b"set_spushv_read_timeout 2\r\n") == hash_reply((n.node_id, "STORED"))
        vn = vnode_of(b"st")
        with n.connect() as c:
            c.send(b"spushv roma %d\r\n" % vn)
            assert c.read_line() == b"READY\r\n"
            rec = _record(b"st", b"value")
            t0 = time.monotonic()
            c.send(rec[:10])  # part of a record, then nothing
            c.read_until_close(timeout=30)
            waited = time.monotonic() - t0
        assert 1.5 <= waited < 15, waited
        wait_for(lambda: "data block not completed within 2.0 s" in n.log_text(), 5, "the timeout log line")
        assert n.raw(b"whoami\r\n") == b"ROMA\r\n"
    finally:
        n.stop()


def test_cleanup_regexp_lists_matching_keys_in_klist_on_the_next_clean_up_pass(tmp_path):
    """`set_cleanup_regexp <re>` (R6.5): refused while failover is off; else `STORED` per hash,
    and the next clean-up pass writes `key,physical,logical` for each matching key it holds to
    `<hash dir>/klist.txt` (then the pattern is cleared)."""
    single = Romad(tmp_path / "single", engine="memory").start()
    try:
        assert single.raw(b"stat enabled_failover\r\n") == b"routing.enabled_failover false\r\nEND\r\n"
        assert single.raw(b"set_cleanup_regexp ^u\r\n") == b"CLIENT_ERROR failover disable now!!\r\n"
        assert single.raw(b"set_cleanup_regexp\r\n") == b"CLIENT_ERROR number of arguments 0 to 1\r\n"
    finally:
        single.stop()
    cfg = tmp_path / "c.yaml"
    cfg.write_text("STORAGE_CLEAN_UP_INTERVAL: 1\n")
    with two_node_cluster(tmp_path / "c", extra_args=["--config", str(cfg)]) as cl:
        a, b = cl.nodes
        wait_for(lambda: a.raw(b"stat enabled_failover\r\n") == b"routing.enabled_failover true\r\nEND\r\n", 20,
                 "failover on")
        keys = [b"user:%d" % i for i in range(20)] + [b"other%d" % i for i in range(20)]
        for k in keys:
            assert a.raw(b"set %s 0 0 1\r\nv\r\n" % k) == b"STORED\r\n"
        assert a.raw(b"set_cleanup_regexp ^user:\r\n") == b"STORED\r\n"
        assert a.raw(b"stat cleanup_regexp\r\n") == b"storages[roma].storage.cleanup_regexp ^user:\r\nEND\r\n"
        klist = Path(stats(a, r"storage\[0\]\.path")["storages[roma].storage[0].path"]).parent / "klist.txt"
        wait_for(klist.exists, 30, "klist.txt from the next clean-up pass")
        lines = klist.read_text().splitlines()
        # rn = 2 on two nodes: this node holds every key
        assert sorted(ln.split(",")[0] for ln in lines) == sorted(k.decode() for k in keys if k.startswith(b"user:"))
        now = time.time()
        for ln in lines:
            _, physical, logical = ln.split(",")
            assert abs(int(physical) - now) < 120 and int(logical) >= 0
        wait_for(lambda: a.raw(b"stat cleanup_regexp\r\n") == b"storages[roma].storage.cleanup_regexp \r\nEND\r\n", 10,
                 "the pattern cleared")
        assert not (Path(stats(b, r"storage\[0\]\.path")["storages[roma].storage[0].path"]).parent / "klist.txt").exists()


def test_extreme_setting_values_are_taken_without_harm(romad):
    """Huge, negative and odd values of every setter: answered as ROMA would, and the node goes
    on serving — a stalled vnode stream with a huge read timeout, peer pools with huge expiry."""
    me = romad.node_id
    huge = b"99999999999999999999999"
    for line in (b"set_spushv_read_timeout " + huge, b"set_reqpushv_timeout_count " + huge,
                 b"set_accepted_connection_expire_time " + huge, b"set_connection_pool_expire_time " + huge,
                 b"set_emconnection_pool_expire_time " + huge, b"set_connection_pool_maxlength " + huge,
                 b"set_emconnection_pool_maxlength " + huge, b"set_log_shift_size " + huge,
                 b"set_log_shift_age " + huge, b"set_wb_shift_size " + huge, b"set_routing_trans_timeout 1e400",
                 b"set_accepted_connection_expire_time -5", b"set_connection_pool_expire_time -1"):
        assert romad.raw(line + b"\r\n") == hash_reply((me, "STORED")), line
    assert romad.raw(b"set_continuous_limit " + huge + b":1:" + huge + b"\r\n") == hash_reply((me, "NOT_STORED"))
    assert romad.raw(b"set_latency_avg_calc_rule on " + huge + b" get\r\n") == hash_reply((me, "ACTIVATED"))
    assert romad.raw(b"wb_command_map {:set=>" + huge + b"}\r\n").startswith(b'{"%s"=>"{:set=>' % me.encode())
    st = stats(romad, r"accepted_connection_expire_time|routing_trans_timeout")
    assert st["connection.accepted_connection_expire_time"] == "0"
    assert st["stats.routing_trans_timeout"] == "Infinity"
    with romad.connect() as c:
        c.send(b"spushv roma %d\r\n" % vnode_of(b"x"))
        assert c.read_line() == b"READY\r\n"
        c.send(_record(b"x", b"y")[:7])
        assert romad.raw(b"set k 0 0 1\r\nv\r\n") == b"STORED\r\n"
        assert romad.raw(b"get k\r\n") == b"VALUE k 0 1\r\nv\r\nEND\r\n"
    assert romad.raw(b"set_latency_avg_calc_rule off\r\n") == hash_reply((me, "DEACTIVATED"))
    assert romad.alive()
