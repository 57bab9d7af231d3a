"""Write-behind (spec R10.1): the writes a node executes as primary, for the operations mapped by
`wb_command_map`, appended to `<WRITEBEHIND_PATH>/<nid>/<hash>/<YYYYMMDD>/<n>.wb` as
`u32 time, u16 code, u32 klen, key, u32 vlen, value` (big-endian), files rotated at
`shift_size`, at midnight and by `writebehind_rotate`. The expectations follow ROMA's own
test/test_writebehind.rb."""
from __future__ import annotations

import struct
import time
from pathlib import Path

from cluster_support import two_node_cluster, stats
from romatest import Romad


def read_wb(path: Path):
    data = path.read_bytes()
    out, i = [], 0
    while i < len(data):
        t, code, klen = struct.unpack(">IHI", data[i:i + 10])
        i += 10
        key = data[i:i + klen]
        i += klen
        (vlen,) = struct.unpack(">I", data[i:i + 4])
        i += 4
        out.append((t, code, key, data[i:i + vlen]))
        i += vlen
    return out


def wb_node(tmp_path: Path, engine: str = "tc") -> tuple[Romad, Path]:
    wb = tmp_path / "wb"
    cfg = tmp_path / "wb.yaml"
    cfg.write_text(f"WRITEBEHIND_PATH: {wb}\n")
    return Romad(tmp_path / "n", engine=engine, extra_args=["--config", str(cfg)]).start(), wb


def hash_reply(nid: str, value: str) -> bytes:
    return b'{"%s"=>"%s"}\r\n' % (nid.encode(), value.encode())


def test_every_mapped_operation_and_its_previous_value_are_logged_in_order(tmp_path):
    n, wb = wb_node(tmp_path)
    try:
        me = n.node_id
        assert n.raw(b"stat wb_command_map\r\n") == b"stats.wb_command_map {}\r\nEND\r\n"
        m = ("{:set=>1, :set__prev=>11, :delete=>2, :delete__prev=>12, :add=>3, :add__prev=>13, :replace=>4, "
             ":replace__prev=>14, :append=>5, :append__prev=>15, :prepend=>6, :prepend__prev=>16, :cas=>7, "
             ":cas__prev=>17, :incr=>8, :incr__prev=>18, :decr=>9, :decr__prev=>19, :set_expt=>10, :set_expt__prev=>20}")
        assert n.raw(b"wb_command_map " + m.encode() + b"\r\n") == hash_reply(me, m)
        assert n.raw(b"stat wb_command_map\r\n") == b"stats.wb_command_map " + m.encode() + b"\r\nEND\r\n"
        with n.connect() as c:
            assert c.exchange(b"set abc 0 0 1\r\n1\r\n") == b"STORED\r\n"
            assert c.exchange(b"delete abc\r\n") == b"DELETED\r\n"
            assert c.exchange(b"add abc 0 0 1\r\n1\r\n") == b"STORED\r\n"
            assert c.exchange(b"replace abc 0 0 1\r\n2\r\n") == b"STORED\r\n"
            assert c.exchange(b"append abc 0 0 1\r\n3\r\n") == b"STORED\r\n"
            assert c.exchange(b"prepend abc 0 0 1\r\n1\r\n") == b"STORED\r\n"
            cas = int(c.exchange(b"gets abc\r\n").split(b"\r\n")[0].split()[4])
            assert c.exchange(b"cas abc 0 0 3 %d\r\n128\r\n" % cas) == b"STORED\r\n"
            assert c.exchange(b"incr abc 1\r\n") == b"129\r\n"
            assert c.exchange(b"decr abc 1\r\n") == b"128\r\n"
            assert c.exchange(b"set_expt abc 100\r\n") == b"STORED\r\n"
            # not logged: a miss, a failed add, a read
            assert c.exchange(b"delete nokey\r\n") == b"NOT_FOUND\r\n"
            assert c.exchange(b"add abc 0 0 1\r\nx\r\n") == b"NOT_STORED\r\n"
            assert c.exchange(b"get abc\r\n").startswith(b"VALUE abc")
            day = time.strftime("%Y%m%d")
            current = wb / me / "roma" / day / "0.wb"
            assert c.exchange(b"writebehind_get_current_file roma\r\n") == hash_reply(me, str(current))
            st = stats(n, r"write-behind")
            assert st["write-behind.path"] == str(wb) and st["write-behind[roma].path"] == str(current)
            assert int(st["write-behind[roma].size"]) == current.stat().st_size
            assert c.exchange(b"writebehind_rotate roma\r\n") == hash_reply(me, "ROTATED")
            assert c.exchange(b"writebehind_rotate roma\r\n") == hash_reply(me, "NOT_OPEND")
            assert c.exchange(b"writebehind_get_current_file roma\r\n") == hash_reply(me, "NOT_OPEND")
            assert c.exchange(b"writebehind_get_path roma\r\n") == hash_reply(me, str(wb / me / "roma"))
        got = [(code, key, val) for _, code, key, val in read_wb(current)]
        expt = [val for code, _, val in got if code == 10]
        assert len(expt) == 1 and int(expt[0]) > time.time() + 90, "set_expt logs the new expire time"
        assert got == [
            (1, b"abc", b"1"), (12, b"abc", b"1"), (2, b"abc", b"1"), (3, b"abc", b"1"),
            (14, b"abc", b"1"), (4, b"abc", b"2"), (15, b"abc", b"2"), (5, b"abc", b"23"),
            (16, b"abc", b"23"), (6, b"abc", b"123"), (17, b"abc", b"123"), (7, b"abc", b"128"),
            (18, b"abc", b"128"), (8, b"abc", b"129"), (19, b"abc", b"129"), (9, b"abc", b"128"),
            (20, b"abc", b"2147483647"), (10, b"abc", expt[0]),
        ], got
        now = time.time()
        assert all(abs(t - now) < 120 for t, _, _, _ in read_wb(current))
        # the next write opens 1.wb
        assert n.raw(b"set k2 0 0 2\r\nv2\r\n") == b"STORED\r\n"
        assert n.raw(b"writebehind_get_current_file roma\r\n") == hash_reply(me, str(current.parent / "1.wb"))
    finally:
        n.stop()


def test_shift_size_rotates_and_bad_arguments_are_refused(tmp_path):
    n, wb = wb_node(tmp_path, engine="memory")
    try:
        me = n.node_id
        assert n.raw(b"wb_command_map\r\n") == b"CLIENT_ERROR number of arguments\r\n"
        assert n.raw(b"wb_command_map [1]\r\n") == b"CLIENT_ERROR hash string parse error\r\n"
        assert n.raw(b"set_wb_shift_size 0\r\n") == b"CLIENT_ERROR length must be greater than zero\r\n"
        assert n.raw(b"writebehind_rotate\r\n") == b"CLIENT_ERROR number of arguments (0 for 1)\r\n"
        assert n.raw(b"set_wb_shift_size 900\r\n") == hash_reply(me, "STORED")
        assert n.raw(b"wb_command_map {:set=>1}\r\n") == hash_reply(me, "{:set=>1}")
        with n.connect() as c:
            for i in range(100):
                assert c.exchange(b"set key-%04d 0 0 8\r\nval-%04d\r\n" % (i, i)) == b"STORED\r\n"
            c.exchange(b"writebehind_rotate roma\r\n")
        day = wb / me / "roma" / time.strftime("%Y%m%d")
        # 100 records of 30 bytes, a new file once one reached 900 bytes: 0.wb … 3.wb (ROMA's test)
        assert sorted(p.name for p in day.iterdir()) == ["0.wb", "1.wb", "2.wb", "3.wb"]
        records = [r for f in sorted(day.iterdir(), key=lambda p: int(p.stem)) for r in read_wb(f)]
        assert [(k, v) for _, _, k, v in records] == [(b"key-%04d" % i, b"val-%04d" % i) for i in range(100)]
        assert stats(n, r"write-behind.shift_size")["write-behind.shift_size"] == "900"
    finally:
        n.stop()


def test_only_the_primary_logs_a_write_and_the_map_is_relayed(tmp_path):
    wb = tmp_path / "wb"
    cfg = tmp_path / "wb.yaml"
    cfg.write_text(f"WRITEBEHIND_PATH: {wb}\nWB_COMMAND_MAP: {{set: 1, delete: 2}}\n")
    with two_node_cluster(tmp_path / "c", extra_args=["--config", str(cfg)]) as cl:
        a, b = cl.nodes
        for node in (a, b):
            assert node.raw(b"stat wb_command_map\r\n") == b"stats.wb_command_map {:set=>1, :delete=>2}\r\nEND\r\n"
        keys = [b"p%d" % i for i in range(60)]
        for i, k in enumerate(keys):
            assert cl.nodes[i % 2].raw(b"set %s 0 0 1\r\nv\r\n" % k) == b"STORED\r\n"
        assert a.raw(b"delete p0\r\n") == b"DELETED\r\n"
        assert a.raw(b"writebehind_rotate roma\r\n") == \
            b'{"%s"=>"ROTATED", "%s"=>"ROTATED"}\r\n' % (b.node_id.encode(), a.node_id.encode())
        table = cl.table(refresh=True)
        logged = {}
        for node in (a, b):
            for f in (wb / node.node_id / "roma").glob("*/*.wb"):
                for _, code, key, _ in read_wb(f):
                    logged.setdefault((code, key), []).append(node.node_id)
        for k in keys:
            assert logged.get((1, k)) == [table.nodes_for(k)[0]], (k, logged.get((1, k)))
        assert logged.get((2, b"p0")) == [table.nodes_for(b"p0")[0]]
        assert a.raw(b"wb_command_map {}\r\n") == b"CLIENT_ERROR hash string parse error\r\n"
        assert a.raw(b"wb_command_map {:x=>0}\r\n").count(b"{:x=>0}") == 2
