"""recoverlost (issue #12 item 5, spec R8.1 with the §11 item 14 fixes): after both nodes of some
vnodes are gone, the records of those vnodes are put back from one stopped node's files.

Three nodes, rn = 2; two are stopped with SIGTERM (their files closed cleanly), the third sees them
leave; vnodes that listed only those two are lost and auto-assigned to the survivor (empty).
`recoverlost <addr> <port> <stopped node's data dir> <yyyymmddhhmmss>` finds them through
`history_of_lost`, reads the stopped node's `i.tc` files read-only (no lock, cache and snapshot
files ignored) and streams the records with their real clocks: every key written is readable
again. A second run changes nothing (clocks compare equal).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time

from cluster_support import start_cluster, finish_cluster, stat_int
from romatest import ROMAD_BIN, wait_for


def test_recoverlost_puts_back_the_lost_vnodes_from_a_stopped_nodes_files(tmp_path):
    tool = os.environ.get("RECOVERLOST_BIN") or os.path.join(os.path.dirname(ROMAD_BIN), "recoverlost")
    c = start_cluster(tmp_path / "c")
    try:
        a, b, s = c.nodes
        since = time.strftime("%Y%m%d%H%M%S", time.localtime(time.time() - 2))
        keys = [b"lk%d" % i for i in range(600)]
        for i, k in enumerate(keys):
            assert c.nodes[i % 3].raw(b"set %s 0 0 5\r\nv%04d\r\n" % (k, i)) == b"STORED\r\n"
        assert s.raw(b"delete lk7\r\n") == b"DELETED\r\n"
        table = c.table()
        lost_keys = [k for k in keys if set(table.nodes_for(k)) == {a.node_id, b.node_id}]
        assert len(lost_keys) > 50
        # a copy of a's files, with a stray snapshot copy and cache file that must be ignored
        a.stop()
        b.stop()
        wait_for(lambda: s.raw(b"nodelist\r\n") == s.node_id.encode() + b"\r\n", 10.0, "both to leave")
        src = tmp_path / "copy"
        shutil.copytree(a.node_dir, src)
        (src / "roma" / "0.tc.20260101000000").write_bytes(b"not a division")
        (src / "roma" / "1.cache.tc").write_bytes(b"not a division either")
        missing = [k for k in lost_keys if s.raw(b"get " + k + b"\r\n") == b"END\r\n"]
        assert len(missing) == len(lost_keys), "those vnodes' data is gone from the survivor"
        r = subprocess.run([tool, s.host, str(s.port), str(src), since], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "vnodes where data was lost." in r.stdout and "Recover process has succeed." in r.stdout, r.stdout
        assert "was auto assigned at" in r.stdout, r.stdout
        for i, k in enumerate(keys):
            want = b"END\r\n" if k == b"lk7" else b"VALUE %s 0 5\r\nv%04d\r\nEND\r\n" % (k, i)
            assert s.raw(b"get " + k + b"\r\n") == want, k
        before = s.raw(b"gets lk9 lk11\r\n")
        r2 = subprocess.run([tool, s.host, str(s.port), str(src), since], capture_output=True, text=True, timeout=120)
        assert r2.returncode == 0, r2.stdout
        assert s.raw(b"gets lk9 lk11\r\n") == before, "a second run changes nothing"
        bad = subprocess.run([tool, s.host, "x", str(src)], capture_output=True, text=True, timeout=30)
        assert bad.returncode != 0 and "Port number is not numeric." in bad.stderr
    finally:
        finish_cluster(c)
