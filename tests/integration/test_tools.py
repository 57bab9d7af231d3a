"""Third-party tools against romad: libmemcached-tools over the protocol, tchmgr on the files."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time

import pytest

from romatest import (EXPT_FOREVER, decode_record, division_of_key, division_of_vnode, encode_record,
                      tchmgr_get, tchmgr_list, tchmgr_put, vnode_of)


def need(tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed (make deps)")


def run(argv, timeout=120, **kw):
    return subprocess.run(argv, capture_output=True, timeout=timeout, **kw)


# ---------------------------------------------------------------------------------------------
# libmemcached-tools
# ---------------------------------------------------------------------------------------------
def test_memccp_memccat_memcrm(romad_any, tmp_path):
    for t in ("memccp", "memccat", "memcrm"):
        need(t)
    s = romad_any
    servers = f"--servers=127.0.0.1:{s.port}"
    blob = tmp_path / "blob.bin"
    content = os.urandom(50_000) + b"\r\nEND\r\n" + os.urandom(1000)
    blob.write_bytes(content)
    text = tmp_path / "notes.txt"
    text.write_bytes(b"hello from memccp\n")

    r = run(["memccp", servers, str(blob), str(text)])
    assert r.returncode == 0, r
    assert s.get(b"blob.bin") == content
    assert s.get(b"notes.txt") == b"hello from memccp\n"

    r = run(["memccat", servers, "blob.bin"])
    assert r.returncode == 0, r
    assert r.stdout in (content, content + b"\n"), "memccat must return the file content"

    r = run(["memcrm", servers, "blob.bin"])
    assert r.returncode == 0, r
    assert s.get(b"blob.bin") is None
    r = run(["memccat", servers, "blob.bin"])
    assert r.returncode != 0, "memccat of a removed key must fail"
    r = run(["memccat", servers, "notes.txt"])
    assert r.returncode == 0 and r.stdout.startswith(b"hello from memccp\n"), r


@pytest.mark.parametrize("test,patterns", [
    ("set", [r"Time to set\s+8000 keys by\s+4 threads"]),
    ("get", [r"Time to set\s+2000 keys:", r"Time to get\s+8000 keys by\s+4 threads"]),
    ("mget", [r"Time to set\s+2000 keys:", r"Time to mget\s+8000 keys by\s+4 threads"]),
])
def test_memcslap(romad, test, patterns):
    need("memcslap")
    r = run(["memcslap", f"--servers=127.0.0.1:{romad.port}", "--concurrency=4", "--execute-number=2000",
             f"--test={test}"], timeout=150)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 0, out
    assert not re.search(r"(?i)fatal|error|fail", out), out
    for p in patterns:
        assert re.search(p, out), f"{p!r} not in memcslap output:\n{out}"
    romad.assert_healthy()


# ---------------------------------------------------------------------------------------------
# tchmgr: the files are ROMA 1.3 TCStorage files
# ---------------------------------------------------------------------------------------------
def _all_records(data_dir, divnum=10):
    found = {}
    for i in range(divnum):
        path = data_dir / f"{i}.tc"
        assert path.exists(), f"{path} missing"
        for k, v in tchmgr_list(path).items():
            assert k not in found, f"key {k!r} stored in two divisions"
            found[k] = (i, v)
    return found


def test_tchmgr_reads_roma_records(romad_factory):
    need("tchmgr")
    s = romad_factory("tc")
    t0 = int(time.time())
    plain = {b"k%03d" % i: b"value-%d" % i for i in range(60)}
    req = b"".join(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(v), v) for k, v in plain.items())
    assert s.raw(req) == b"STORED\r\n" * len(plain)
    binval = b"\x00\r\nbin\xff\r\n"
    script = [
        (b"set foo 0 0 3\r\nbar\r\n", b"STORED\r\n"),
        (b"set twice 0 0 1\r\n1\r\n", b"STORED\r\n"),
        (b"set twice 0 0 1\r\n2\r\n", b"STORED\r\n"),
        (b"set deleted 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"delete deleted\r\n", b"DELETED\r\n"),
        (b"set exp 0 1000 1\r\ne\r\n", b"STORED\r\n"),
        (b"set empty 0 0 0\r\n\r\n", b"STORED\r\n"),
        (b"set n 0 0 2\r\n10\r\n", b"STORED\r\n"),
        (b"incr n 5\r\n", b"15\r\n"),
        (b"set bin 0 0 %d\r\n%s\r\n" % (len(binval), binval), b"STORED\r\n"),
    ]
    for req, exp in script:
        assert s.raw(req) == exp, req
    t1 = int(time.time())
    assert s.stop() == 0
    assert not s.lock_path.exists(), "lock must be removed at clean close"

    expected = dict(plain)
    expected.update({b"foo": b"bar", b"twice": b"2", b"deleted": None, b"exp": b"e", b"empty": b"",
                     b"n": b"15", b"bin": binval})
    clocks = {b"twice": 1, b"deleted": 1, b"n": 1}
    records = _all_records(s.data_dir)
    assert set(records) == set(expected), (
        f"missing {set(expected) - set(records)}, unexpected {set(records) - set(expected)}")
    assert records[b"foo"][0] == 3, "spec test vector: 'foo' -> vn 0x75800000 -> division 3"
    for key, (div, rec) in records.items():
        vn, phys, logical, expt, value = decode_record(rec)
        assert vn == vnode_of(key), f"{key!r}: vn {vn:#x} != {vnode_of(key):#x}"
        assert div == division_of_vnode(vn) == division_of_key(key), f"{key!r} in division {div}"
        assert t0 <= phys <= t1, f"{key!r}: physical clock {phys} outside [{t0}, {t1}]"
        assert logical == clocks.get(key, 0), f"{key!r}: logical clock {logical}"
        if expected[key] is None:
            assert len(rec) == 16 and expt == 0, f"tombstone of {key!r} must be a bare header with expt 0: {rec!r}"
        else:
            assert value == expected[key], key
            if key == b"exp":
                assert t0 + 1000 <= expt <= t1 + 1000, expt
            else:
                assert expt == EXPT_FOREVER, f"{key!r}: expt {expt:#x}"
    # tchmgr get agrees with tchmgr list
    assert tchmgr_get(s.data_dir / "3.tc", b"foo") == records[b"foo"][1]
    r = subprocess.run(["tchmgr", "inform", str(s.data_dir / "3.tc")], capture_output=True, timeout=30)
    assert r.returncode == 0 and b"database type: hash" in r.stdout, r


def test_romad_reads_records_written_with_tchmgr(romad_factory):
    """The reverse direction: a record in ROMA's layout put into the right division by tchmgr."""
    need("tchmgr")
    s = romad_factory("tc")
    assert s.stop() == 0
    now = int(time.time())

    def put(key, logical, expt, value):
        vn = vnode_of(key)
        tchmgr_put(s.data_dir / f"{division_of_vnode(vn)}.tc", key,
                   encode_record(vn, now - 10, logical, expt, value))

    put(b"ext", 41, EXPT_FOREVER, b"external")
    put(b"ext_expired", 7, now - 100, b"old")
    put(b"ext_tomb", 3, 0, b"")
    s.start()
    assert s.raw(b"gets ext\r\n") == b"VALUE ext 0 8 41\r\nexternal\r\nEND\r\n"
    assert s.raw(b"get ext_expired ext_tomb\r\n") == b"END\r\n"
    assert s.raw(b"set ext 0 0 1\r\nz\r\n") == b"STORED\r\n"
    assert s.raw(b"gets ext\r\n") == b"VALUE ext 0 1 42\r\nz\r\nEND\r\n"
    assert s.raw(b"add ext_tomb 0 0 1\r\nt\r\n") == b"STORED\r\n"
    assert s.raw(b"gets ext_tomb\r\n") == b"VALUE ext_tomb 0 1 4\r\nt\r\nEND\r\n"
    assert s.raw(b"delete ext_tomb\r\n") == b"DELETED\r\n"
    assert s.raw(b"get_expt ext_tomb unix\r\n") == b"0\r\nEND\r\n"


def test_divnum_option(romad_factory):
    need("tchmgr")
    s = romad_factory("tc", extra_args=["--divnum", "4"])
    keys = [b"d%02d" % i for i in range(40)]
    assert s.raw(b"".join(b"set %s 0 0 1\r\nv\r\n" % k for k in keys)) == b"STORED\r\n" * len(keys)
    assert b"storages[roma].storage.divnum 4\r\n" in s.raw(b"stat storage\r\n")
    assert s.raw(b"stat safecopy\r\n") == (
        b"storages[roma].storage.safecopy_stats [:normal, :normal, :normal, :normal]\r\nEND\r\n")
    assert s.stop() == 0
    assert sorted(p.name for p in s.data_dir.glob("*.tc")) == ["0.tc", "1.tc", "2.tc", "3.tc"]
    records = _all_records(s.data_dir, divnum=4)
    assert set(records) == set(keys)
    for k, (div, _) in records.items():
        assert div == division_of_key(k, 4), k


def test_storage_option_reaches_tokyocabinet(romad_factory):
    need("tchmgr")
    opt = "bnum=5000#xmsiz=1048576#opts=l"
    s = romad_factory("tc", extra_args=["--storage-option", opt])
    assert b"storages[roma].storage.option %s\r\n" % opt.encode() in s.raw(b"stat storage\r\n")
    assert s.stop() == 0
    r = subprocess.run(["tchmgr", "inform", str(s.data_dir / "0.tc")], capture_output=True, timeout=30)
    info = r.stdout.decode()
    m = re.search(r"bucket number: (\d+)", info)
    assert m and 5000 <= int(m.group(1)) < 10000, info
    assert "large" in info, f"opts=l must set TLARGE:\n{info}"


# ---------------------------------------------------------------------------------------------
# the romad executable itself
# ---------------------------------------------------------------------------------------------

def test_romad_overrides_tokyocabinets_sched_yield():
    """TokyoCabinet's key-hashing loop calls sched_yield(); romad defines it as a no-op (see
    Sources/CTokyoCabinetNoYield), exported so the dynamic linker binds TokyoCabinet's call to it.
    Without it a request hands its core to any runnable thread (a snapshot copy) for a time slice."""
    r = run(["nm", "-D", "--defined-only", os.environ["ROMAD_BIN"]])
    assert r.returncode == 0, r.stderr
    assert re.search(rb"^[0-9a-f]+ T sched_yield$", r.stdout, re.M), "romad does not export its sched_yield"
    # ...and the library really calls it (if a future build drops the call, this test says so).
    lib = subprocess.run(["pkg-config", "--variable=libdir", "tokyocabinet"], capture_output=True, text=True).stdout.strip()
    r = run(["nm", "-D", "--undefined-only", os.path.join(lib, "libtokyocabinet.so")])
    assert r.returncode == 0, r.stderr
    assert b"sched_yield" in r.stdout


# ---------------------------------------------------------------------------------------------
# roma-bench's slow-request log (used to line slow requests up with a kernel trace)
# ---------------------------------------------------------------------------------------------

def test_roma_bench_logs_slow_requests(romad):
    """--log-slow-us N prints `slow <CLOCK_MONOTONIC ns> <µs>` on stderr for each measured request
    slower than N µs: with N = 1 that is every request; the times lie within the run."""
    bench = os.path.join(os.path.dirname(os.environ["ROMAD_BIN"]), "roma-bench")
    t0 = time.monotonic_ns()
    r = run([bench, "--host", "127.0.0.1", "--port", str(romad.port), "--requests", "200", "--mix", "1:1",
             "--keys", "50", "--connections", "2", "--json", "--log-slow-us", "1"])
    t1 = time.monotonic_ns()
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stderr.decode().splitlines() if l.startswith("slow ")]
    assert len(lines) == 200, r.stderr[-500:]
    for line in lines:
        m = re.fullmatch(r"slow (\d+) (\d+)", line)
        assert m, line
        assert t0 <= int(m[1]) <= t1
        assert int(m[2]) >= 1
    assert run([bench, "--port", str(romad.port), "--log-slow-us", "0"]).returncode != 0
    romad.assert_healthy()


def test_slowtrace_attributes_a_slow_request_to_what_ran(tmp_path):
    """bench/slowtrace.py: a request slow for 3 ms while cpu0 ran `hog` gets `hog` 3000 µs on cpu0."""
    trace = tmp_path / "trace.txt"
    trace.write_text(
        "  <idle>-0 [000] d..2. 100.000000: sched_switch: prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R"
        " ==> next_comm=hog next_pid=42 next_prio=120\n"
        "  hog-42 [000] d..2. 100.004000: sched_switch: prev_comm=hog prev_pid=42 prev_prio=120 prev_state=R"
        " ==> next_comm=NIO-ELT-1-#1 next_pid=7 next_prio=120\n"
        "  <idle>-0 [001] d..2. 100.000000: sched_switch: prev_comm=swapper/1 prev_pid=0 prev_prio=120 prev_state=R"
        " ==> next_comm=swapper/1 next_pid=0 next_prio=120\n"
        "  x-1 [001] d..2. 100.005000: sched_switch: prev_comm=swapper/1 prev_pid=0 prev_prio=120 prev_state=R"
        " ==> next_comm=other next_pid=9 next_prio=120\n")
    slow = tmp_path / "slow.log"
    slow.write_text("roma-bench: running\nslow 100001000000 3000\n")
    script = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "slowtrace.py")
    r = run(["python3", script, str(trace), str(slow)])
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert re.search(r"^100\.001000 3000 µs \| cpu0: hog/42 3000 \| cpu1: swapper/1/0 3000", out, re.M), out
    assert "1 slow requests" in out


def _bench_module():
    import importlib.util
    path = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "bench.py")
    spec = importlib.util.spec_from_file_location("bench_driver", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bench_measures_how_late_cpdb_sees_a_state_change(tmp_path):
    """bench.py's wait lag: the end of each `waiting for …` line of cpdb against the latest change
    to that state in status.log (for `all`, the last division to get there)."""
    import types
    bench = _bench_module()
    hash_dir = tmp_path / "localhost_10001" / "roma"
    hash_dir.mkdir(parents=True)
    (hash_dir / "status.log.1").write_text(
        "2026-11-26T01:00:00.500000 0 safecopy_flushing\n"
        "2026-11-26T01:00:01.250000 0 safecopy_flushed\n"
        "2026-11-26T01:00:02.5 1 safecopy_flushed\n"          # ROMA's usec is not padded: 5 µs
        "garbage line\n")
    changes = bench.status_log_changes(types.SimpleNamespace(data_dir=str(tmp_path), port=10001))
    assert sorted(changes) == [(0, "safecopy_flushed"), (0, "safecopy_flushing"), (1, "safecopy_flushed")]
    t0 = changes[(0, "safecopy_flushing")][0]
    assert abs(changes[(0, "safecopy_flushed")][0] - t0 - 0.75) < 1e-6
    assert abs(changes[(1, "safecopy_flushed")][0] - t0 - 1.500005) < 1e-6
    ends = [("waiting for storages[roma][0] == safecopy_flushed .", t0 + 0.753),
            ("waiting for storages[roma][all] == safecopy_flushed", t0 + 1.504005),
            ("waiting for storages[roma][1] == normal", t0 + 2.0),       # no such change: skipped
            ("copy file : /x/0.tc", t0 + 2.1)]
    lags = bench.wait_lags_ms(ends, changes)
    assert [round(x, 3) for x in lags] == [3.0, 4.0]
