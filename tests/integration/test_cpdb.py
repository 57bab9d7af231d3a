"""cpdb (online snapshot tool) against a real romad: output compatible with ROMA 1.3
(../shared/reference/cpdb-session.md), durable snapshot files with manifests, verify, restore,
concurrent traffic, crash recovery in every safecopy state, and bad input.

CPDB_BIN (default <repo>/.build/debug/cpdb) and ROMAD_BIN (default <repo>/.build/debug/romad)
select the binaries.
"""
from __future__ import annotations

import ctypes
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from romatest import free_port, run_with_stderr_on_a_terminal, wait_for
from snapshot_support import (CPDB_BIN, StateMonitor, Writer, assert_all_normal, describe, get_many,
                              keys_for_division, live_records, load, load_manifest, manifests_in, run_cpdb,
                              safecopy_states, set_storage_status, spawn_cpdb, status_log_lines, tchmgr_inform,
                              wait_division)

DIVNUM = 10
TS = r"\d{14}"


def pytest_configure_binary():
    if not (os.path.isfile(CPDB_BIN) and os.access(CPDB_BIN, os.X_OK)):
        pytest.skip(f"cpdb binary not found at {CPDB_BIN}: build it or set CPDB_BIN", allow_module_level=True)
    if shutil.which("tchmgr") is None:
        pytest.skip("tchmgr not installed", allow_module_level=True)


pytest_configure_binary()


def sample_data(n=300, prefix="key"):
    return {b"%s%05d" % (prefix.encode(), i): b"value-%05d-" % i + b"x" * (i % 50) for i in range(n)}


def expected_roma_lines(hash_name, data_dir, divisions=range(DIVNUM)):
    """Regexes for ROMA 1.3's cpdb output (cpdb-session.md): dots vary, paths are absolute."""
    out = []
    for i in divisions:
        out.append(rf"waiting for storages\[{re.escape(hash_name)}\]\[{i}\] == safecopy_flushed \.*")
        out.append(rf"copy file : {re.escape(str(data_dir))}/{i}\.tc")
        out.append(rf"waiting for storages\[{re.escape(hash_name)}\]\[{i}\] == normal \.*")
    return out


def assert_lines_match(stdout, patterns):
    lines = stdout.split("\n")
    assert lines[-1] == "", f"output must end with a newline: {stdout!r}"
    lines = lines[:-1]
    assert len(lines) == len(patterns), f"{len(lines)} lines, expected {len(patterns)}:\n{stdout}"
    for n, (line, pat) in enumerate(zip(lines, patterns)):
        assert re.fullmatch(pat, line), f"line {n + 1}: {line!r} does not match {pat!r}\n{stdout}"


def snapshot_files(directory, stamp=TS):
    return sorted(p for p in Path(directory).iterdir() if re.fullmatch(rf"\d+\.tc\.{stamp}", p.name))


# ==============================================================================================
# output format, files, manifest, verify
# ==============================================================================================
def test_default_run_matches_roma_output_and_writes_verified_snapshots(romad):
    data = sample_data()
    load(romad, data)
    log_before = status_log_lines(romad)
    r = run_cpdb(romad.port)  # exactly `cpdb <port>`: localhost, like ROMA
    assert r.returncode == 0, describe(r)
    assert r.stderr == "", describe(r)
    data_dir = romad.data_dir.resolve()
    assert_lines_match(r.stdout, expected_roma_lines("roma", data_dir) + ["finished"])
    assert_all_normal(romad)

    snaps = snapshot_files(data_dir)
    assert [p.name.split(".")[0] for p in snaps] == [str(i) for i in range(DIVNUM)]
    assert not [p for p in data_dir.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp")], \
        "temporary files left behind"
    assert not list(data_dir.glob("*.cache.tc")), "cache files left behind"
    (manifest_path,) = manifests_in(data_dir)
    m = load_manifest(manifest_path)
    assert m["node"] == romad.node_id and m["hash"] == "roma" and m["divnum"] == DIVNUM
    assert m["mode"] == "sequential" and m["storage_class"] == "TCStorage" and m["engine_options"] == ""
    assert m["storage_path"] == str(data_dir)
    assert manifest_path.name == f"snapshot-{m['run_timestamp']}.json"
    total = 0
    for f, p in zip(m["files"], snaps):
        assert f["file"] == p.name and f["source"] == str(data_dir / f"{f['division']}.tc")
        assert f["size"] == p.stat().st_size
        info = tchmgr_inform(p)
        assert int(info["record number"]) == f["records"]
        # nothing was written during the run: the copy equals the live file
        assert p.read_bytes() == (data_dir / f"{f['division']}.tc").read_bytes()
        recs = live_records(p)
        assert len(recs) == f["records"]
        for k, v in recs.items():
            assert data[k] == v
        total += len(recs)
    assert total == len(data)

    # status.log: per division, in order, the four transitions
    new = [l.split(" ", 1)[1] for l in status_log_lines(romad)[len(log_before):]]
    want = []
    for i in range(DIVNUM):
        want += [f"{i} safecopy_flushing", f"{i} safecopy_flushed", f"{i} cachecleaning", f"{i} normal"]
    assert new == want

    # stats show the GUI markers cpdb set
    st = romad.raw(b"stat gui_\r\n")
    assert b"stats.gui_run_snapshot false\r\n" in st, st
    assert re.search(rb"stats.gui_last_snapshot \d+/\d\d/\d\dT\d\d:\d\d:\d\d\r\n", st), st

    # verify: OK on the fresh snapshot, names the file after one flipped byte
    v = run_cpdb("verify", manifest_path)
    assert v.returncode == 0, describe(v)
    assert v.stdout.count("OK ") == DIVNUM
    victim = snaps[4]
    b = bytearray(victim.read_bytes())
    b[len(b) // 2] ^= 0x10
    victim.write_bytes(bytes(b))
    v = run_cpdb("verify", manifest_path)
    assert v.returncode != 0, describe(v)
    assert f"FAILED {victim}" in v.stdout, describe(v)
    assert v.stdout.count("OK ") == DIVNUM - 1
    assert victim.name in v.stderr
    victim.unlink()
    v = run_cpdb("verify", manifest_path)
    assert v.returncode != 0 and "missing" in v.stdout, describe(v)
    romad.assert_healthy()


def test_consistent_mode_is_one_cut_with_one_timestamp(romad, tmp_path):
    data = sample_data(200)
    load(romad, data)
    log_before = len(status_log_lines(romad))
    dest = tmp_path / "snaps"
    r = run_cpdb("--consistent", "--dest", dest, "--host", "127.0.0.1", romad.port)
    assert r.returncode == 0, describe(r)
    data_dir = romad.data_dir.resolve()
    pats = [r"waiting for storages\[roma\]\[all\] == safecopy_flushed \.*"]
    pats += [rf"copy file : {re.escape(str(data_dir))}/{i}\.tc" for i in range(DIVNUM)]
    pats += [r"waiting for storages\[roma\]\[all\] == normal \.*", "finished"]
    assert_lines_match(r.stdout, pats)
    assert_all_normal(romad)
    snaps = snapshot_files(dest)
    assert len(snaps) == DIVNUM
    assert len({p.name.split(".", 2)[2] for p in snaps}) == 1, "one timestamp for all files"
    assert not list(data_dir.glob("*.tc.*")), "--dest: nothing written beside the data files"
    (mp,) = manifests_in(dest)
    m = load_manifest(mp)
    assert m["mode"] == "consistent"
    assert sum(len(live_records(p)) for p in snaps) == len(data)
    # point in time: every division entered safecopy before any left it
    new = [l.split(" ", 1)[1] for l in status_log_lines(romad)[log_before:]]
    flushing = [i for i, l in enumerate(new) if l.endswith("safecopy_flushing")]
    cleaning = [i for i, l in enumerate(new) if l.endswith("cachecleaning")]
    assert len(flushing) == len(cleaning) == DIVNUM
    assert max(flushing) < min(cleaning), new
    assert run_cpdb("verify", mp).returncode == 0


@pytest.mark.parametrize("flags", [["--no-direct-io", "--priority", "low"], ["--consistent", "--priority", "normal"]])
def test_page_cache_writes_and_other_priorities(romad, tmp_path, flags):
    """The buffered writer (no O_DIRECT) and the non-idle schedulings produce the same snapshot."""
    data = sample_data(300)
    load(romad, data)
    dest = tmp_path / "snaps"
    r = run_cpdb(*flags, "--dest", dest, "--host", "127.0.0.1", romad.port)
    assert r.returncode == 0, describe(r)
    assert r.stdout.splitlines()[-1] == "finished"
    snaps = snapshot_files(dest)
    assert len(snaps) == DIVNUM
    assert sum(len(live_records(p)) for p in snaps) == len(data)
    assert not [p for p in dest.iterdir() if p.name.endswith(".tmp")], "no temporary file left"
    (mp,) = manifests_in(dest)
    assert run_cpdb("verify", mp).returncode == 0
    assert_all_normal(romad)


def _cpdb_with_stderr_on_a_terminal(*args) -> tuple[int, str, str]:
    """Runs cpdb with its stderr on a pseudo-terminal and its stdout on a pipe; returns the exit
    status, stdout and everything written to the terminal."""
    return run_with_stderr_on_a_terminal([CPDB_BIN, *args])


def test_progress_line_on_a_terminal_only(romad_factory, tmp_path):
    """On a terminal, cpdb draws a progress line (bytes, rate, ETA) on stderr and clears it at the
    end; stdout keeps ROMA's lines. --no-progress, or stderr not a terminal, draws none."""
    s = romad_factory("tc")
    load(s, sample_data(3000))
    rc, out, term = _cpdb_with_stderr_on_a_terminal("--dest", tmp_path / "a", "--host", "127.0.0.1", s.port)
    assert rc == 0, (out, term)
    assert out.rstrip().endswith("finished"), out
    draws = re.findall(r"\rcpdb: ([\d.]+ (?:B|KiB|MiB)) / ([\d.]+ (?:B|KiB|MiB)) \((\d+)%\)  [\d.]+ (?:B|KiB|MiB)/s  ETA \S+",
                       term)
    assert draws, repr(term)
    assert draws[-1][0] == draws[-1][1] and draws[-1][2] == "100", draws[-1]
    assert term.endswith("\r\x1b[K"), repr(term[-40:])          # the line is cleared at the end
    rc, out, term = _cpdb_with_stderr_on_a_terminal("--no-progress", "--dest", tmp_path / "b", "--host",
                                                    "127.0.0.1", s.port)
    assert rc == 0 and "cpdb: " not in term and "ETA" not in term, repr(term)
    r = run_cpdb("--dest", tmp_path / "c", "--host", "127.0.0.1", s.port)       # stderr is a pipe
    assert r.returncode == 0 and "ETA" not in r.stderr, describe(r)
    assert_all_normal(s)


def test_json_summary_keep_and_multiple_runs(romad, tmp_path):
    load(romad, sample_data(100))
    dest = tmp_path / "keep"
    runs = []
    for n in range(3):
        r = run_cpdb("--json", "--keep", 2, "--dest", dest, "--host", "127.0.0.1", romad.port)
        assert r.returncode == 0, describe(r)
        s = json.loads(r.stdout)
        assert s["ok"] is True and s["error"] is None and s["node"] == romad.node_id
        assert s["mode"] == "sequential"
        (h,) = s["hashes"]
        assert h["hash"] == "roma" and len(h["files"]) == DIVNUM
        assert Path(h["manifest"]).exists()
        for f in h["files"]:
            assert Path(f["snapshot"]).stat().st_size == f["size"]
            assert len(f["sha256"]) == 64
        runs.append(h["manifest"])
        if n == 2:
            assert len(s["retention_deleted"]) == DIVNUM + 1
    manifests = manifests_in(dest)
    assert [str(p) for p in manifests] == runs[1:], "the two newest runs are kept"
    assert len(snapshot_files(dest)) == 2 * DIVNUM
    for mp in manifests:
        assert run_cpdb("verify", mp).returncode == 0
    assert_all_normal(romad)


def test_hash_option_and_several_hashes(romad_factory, tmp_path):
    s = romad_factory("tc", start=False)
    for h in ("roma", "other"):
        (s.node_dir / h).mkdir(parents=True)
    s.start()
    load(s, sample_data(50))
    r = run_cpdb("--hash", "other", "--host", "127.0.0.1", s.port)
    assert r.returncode == 0, describe(r)
    assert_lines_match(r.stdout, expected_roma_lines("other", (s.node_dir / "other").resolve()) + ["finished"])
    assert not snapshot_files(s.node_dir / "roma")
    r = run_cpdb("--hash", "nope", "--host", "127.0.0.1", s.port)
    assert r.returncode != 0 and "no hash named nope" in r.stderr, describe(r)
    dest = tmp_path / "both"
    r = run_cpdb("--consistent", "--dest", dest, "--host", "127.0.0.1", s.port)
    assert r.returncode == 0, describe(r)
    for h in ("other", "roma"):
        assert len(snapshot_files(dest / h)) == DIVNUM
        (mp,) = manifests_in(dest / h)
        assert load_manifest(mp)["hash"] == h
    assert_all_normal(s, "roma")
    assert_all_normal(s, "other")


# ==============================================================================================
# (a) concurrent writers, (b) exact flush-point contents, (c) reads in every state
# ==============================================================================================
@pytest.mark.parametrize("mode", ["sequential", "consistent"])
def test_writers_at_full_speed_during_cpdb(romad_factory, tmp_path, mode):
    # 40 ms pause before each flush and cache cleaning: every division spends time in each state
    s = romad_factory("tc", env={"ROMAD_TEST_SAFECOPY_DELAY_MS": "40"})
    load(s, sample_data(200))
    writers = [Writer(s, w, seed=1 if mode == "sequential" else 2) for w in range(4)]
    monitor = StateMonitor(s)
    for t in writers + [monitor]:
        t.start()
    wait_for(lambda: all(w.ops > 20 for w in writers), 10, "writers running")
    args = ["--dest", tmp_path / "snap", "--host", "127.0.0.1", s.port]
    # The writers keep both cores busy, and cpdb's copy, romad's flush and cache cleaning run at
    # idle priority: each step waits up to its starvation guard's window (1 s) before it gets
    # CPU, so a debug build takes 35-60 s here (measured); the bound leaves room for that.
    r = run_cpdb(*(["--consistent"] if mode == "consistent" else []), *args, timeout=240)
    ops_during = sum(w.ops for w in writers)
    for t in writers + [monitor]:
        t.stop.set()
    for t in writers + [monitor]:
        t.join(10)
    assert r.returncode == 0, describe(r)
    errors = [e for w in writers for e in w.errors] + monitor.errors
    assert errors == [], errors[:20]
    seen_states = {st for _, st in monitor.seen}
    assert {"safecopy_flushing", "safecopy_flushed", "cachecleaning"} <= seen_states, seen_states
    assert ops_during > 100
    assert_all_normal(s)
    # every acknowledged final state is readable
    for w in writers:
        got = get_many(s, list(w.state))
        bad = {k: (got[k], v) for k, v in w.state.items() if got[k] != v}
        assert not bad, f"writer {w.wid}: {len(bad)} keys differ, e.g. {list(bad.items())[:5]}"
    (mp,) = manifests_in(tmp_path / "snap")
    assert run_cpdb("verify", mp).returncode == 0
    for p in snapshot_files(tmp_path / "snap"):
        tchmgr_inform(p)


def test_snapshot_holds_exactly_the_state_at_the_flush_point(romad_factory):
    """Phase A keys are written before cpdb; phase B writes to division i are made only after
    division i was seen in safecopy. Every snapshot file holds exactly phase A of its division;
    the live node holds phase B."""
    s = romad_factory("tc", env={"ROMAD_TEST_SAFECOPY_DELAY_MS": "150"})
    a_keys = {i: keys_for_division(i, 12, f"a{i}_") for i in range(DIVNUM)}
    phase_a = {k: b"A-" + k for ks in a_keys.values() for k in ks}
    load(s, phase_a)
    b_new = {i: keys_for_division(i, 5, f"b{i}_") for i in range(DIVNUM)}
    phase_b_done = {}
    b_errors = []
    lock = threading.Lock()

    def on_state(i, state):
        if state not in ("safecopy_flushing", "safecopy_flushed"):
            return
        with lock:
            if i in phase_b_done:
                return
            phase_b_done[i] = state
        try:
            with s.connect() as c:
                for k in b_new[i]:
                    c.send(b"set %s 0 0 3\r\nB-1\r\n" % k)
                    assert c.read_line() == b"STORED\r\n"
                k0, k1 = a_keys[i][0], a_keys[i][1]
                c.send(b"set %s 0 0 3\r\nB-2\r\n" % k0)   # overwrite an A key
                assert c.read_line() == b"STORED\r\n"
                c.send(b"delete %s\r\n" % k1)              # delete an A key
                assert c.read_line() == b"DELETED\r\n"
        except Exception as e:  # noqa: BLE001
            b_errors.append(f"division {i}: {e!r}")

    monitor = StateMonitor(s, on_state=on_state)
    monitor.start()
    r = run_cpdb("--host", "127.0.0.1", s.port)
    monitor.stop.set()
    monitor.join(10)
    assert r.returncode == 0, describe(r)
    assert b_errors == [] and monitor.errors == [], (b_errors, monitor.errors)
    assert sorted(phase_b_done) == list(range(DIVNUM)), f"phase B not done for every division: {phase_b_done}"
    (mp,) = manifests_in(s.data_dir)
    m = load_manifest(mp)
    for f in m["files"]:
        i = f["division"]
        p = s.data_dir / f["file"]
        info = tchmgr_inform(p)
        assert int(info["record number"]) == f["records"] == len(a_keys[i])
        got = live_records(p)
        assert got == {k: phase_a[k] for k in a_keys[i]}, f"division {i}: snapshot differs from phase A"
    # the live node has phase B
    live = get_many(s, [k for i in range(DIVNUM) for k in b_new[i] + a_keys[i][:2]])
    for i in range(DIVNUM):
        assert all(live[k] == b"B-1" for k in b_new[i])
        assert live[a_keys[i][0]] == b"B-2"
        assert live[a_keys[i][1]] is None
    assert_all_normal(s)


def test_reads_return_the_newest_value_in_every_state(romad_factory):
    s = romad_factory("tc", env={"ROMAD_TEST_SAFECOPY_DELAY_MS": "1200"})
    k, kdel, knew, kcnt = keys_for_division(0, 4, "r_")
    load(s, {k: b"v1", kdel: b"gone-soon", kcnt: b"10"})

    def check(state, expected):
        assert safecopy_states(s)[0] == state
        got = get_many(s, list(expected))
        assert got == expected, f"in {state}: {got} != {expected}"
        assert safecopy_states(s)[0] == state, f"left {state} during the reads; raise the delay"

    with s.connect() as c:
        def cmd(line):
            c.send(line)
            return c.read_line()

        assert set_storage_status(s, 0, "safecopy") == b"PUSHED\r\n"
        check("safecopy_flushing", {k: b"v1", kdel: b"gone-soon", knew: None})
        assert cmd(b"set %s 0 0 2\r\nv2\r\n" % k) == b"STORED\r\n"
        assert cmd(b"delete %s\r\n" % kdel) == b"DELETED\r\n"
        assert cmd(b"incr %s 5\r\n" % kcnt) == b"15\r\n"
        check("safecopy_flushing", {k: b"v2", kdel: None, kcnt: b"15"})
        wait_division(s, 0, "safecopy_flushed")
        check("safecopy_flushed", {k: b"v2", kdel: None, kcnt: b"15"})
        assert cmd(b"set %s 0 0 2\r\nv3\r\n" % k) == b"STORED\r\n"
        assert cmd(b"set %s 0 0 1\r\nn\r\n" % knew) == b"STORED\r\n"
        check("safecopy_flushed", {k: b"v3", knew: b"n", kcnt: b"15"})
        assert set_storage_status(s, 0, "normal") == b"PUSHED\r\n"
        check("cachecleaning", {k: b"v3", kdel: None, knew: b"n", kcnt: b"15"})
        assert cmd(b"set %s 0 0 2\r\nv4\r\n" % k) == b"STORED\r\n"     # goes to main, newer than the cache
        assert cmd(b"incr %s 1\r\n" % kcnt) == b"16\r\n"
        check("cachecleaning", {k: b"v4", kdel: None, knew: b"n", kcnt: b"16"})
        wait_division(s, 0, "normal")
        check("normal", {k: b"v4", kdel: None, knew: b"n", kcnt: b"16"})


# ==============================================================================================
# (d) kill -9 in every safecopy state
# ==============================================================================================
@pytest.mark.parametrize("state", ["safecopy_flushing", "safecopy_flushed", "cachecleaning"])
def test_kill9_in_each_state_loses_nothing(romad_factory, state):
    s = romad_factory("tc", env={"ROMAD_TEST_SAFECOPY_DELAY_MS": "1500"})
    s.expect_clean_exit = False
    base = {b"base%03d" % i: b"b%03d" % i for i in range(100)}
    load(s, base)
    acked = dict(base)
    assert set_storage_status(s, 0, "safecopy") == b"PUSHED\r\n"
    if state in ("safecopy_flushed", "cachecleaning"):
        wait_division(s, 0, "safecopy_flushed")
    if state == "cachecleaning":
        # something to merge, then start the merge
        more = {k: b"cache-" + k for k in keys_for_division(0, 20, "c_")}
        load(s, more)
        acked.update(more)
        assert set_storage_status(s, 0, "normal") == b"PUSHED\r\n"
    assert safecopy_states(s)[0] == state
    during = {k: b"during-" + k for k in keys_for_division(0, 30, "d_") + [b"base000", b"base001"]}
    load(s, during)
    acked.update(during)
    with s.connect() as c:
        c.send(b"delete base002\r\n")
        assert c.read_line() == b"DELETED\r\n"
    acked[b"base002"] = None
    assert safecopy_states(s)[0] == state, "state changed before the kill; raise the delay"
    log_before = status_log_lines(s)
    s.send_signal(signal.SIGKILL)
    s.wait_exit(10)
    assert (s.data_dir / "0.cache.tc").exists(), "the cache survives the crash"
    s.start()
    assert_all_normal(s)
    got = get_many(s, list(acked))
    lost = {k: (got[k], v) for k, v in acked.items() if got[k] != v}
    assert not lost, f"{len(lost)} acknowledged writes lost, e.g. {list(lost.items())[:5]}"
    assert not (s.data_dir / "0.cache.tc").exists()
    new = [l.split(" ", 1)[1] for l in status_log_lines(s)[len(log_before):]]
    assert new[-3:] == ["0 safecopy_flushed", "0 cachecleaning", "0 normal"], new
    assert "merged" in s.log_text() and "leftover cache" in s.log_text(), s.log_text()


# ==============================================================================================
# (e) restore round trip
# ==============================================================================================
def test_restore_round_trip(romad_factory, tmp_path):
    s = romad_factory("tc")
    s1 = sample_data(250)
    load(s, s1)
    with s.connect() as c:
        c.send(b"delete key00007\r\n")
        assert c.read_line() == b"DELETED\r\n"
    del s1[b"key00007"]
    # ROMA's layout: snapshot files and manifest beside the data files
    snapdir = s.data_dir
    r = run_cpdb("--host", "127.0.0.1", s.port)
    assert r.returncode == 0, describe(r)
    (mp,) = manifests_in(snapdir)

    # change everything after the snapshot
    load(s, {b"key00001": b"changed", b"key00007": b"back", b"new-after-snapshot": b"x"})
    with s.connect() as c:
        c.send(b"delete key00002\r\n")
        assert c.read_line() == b"DELETED\r\n"

    # refused while the node runs (its lock is held); nothing changes
    before = sorted(p.name for p in s.data_dir.iterdir())
    r = run_cpdb("restore", mp, "--yes")
    assert r.returncode != 0 and "held by a running process" in r.stderr, describe(r)
    assert sorted(p.name for p in s.data_dir.iterdir()) == before
    # refused without confirmation
    assert s.stop() == 0
    r = run_cpdb("restore", mp)
    assert r.returncode != 0 and "--yes" in r.stderr, describe(r)
    assert sorted(p.name for p in s.data_dir.iterdir()) == sorted(set(before) - {"lock"})

    r = run_cpdb("restore", mp, "--yes")
    assert r.returncode == 0, describe(r)
    assert "restore finished" in r.stdout
    m = load_manifest(mp)
    for f in m["files"]:
        assert (s.data_dir / f"{f['division']}.tc").read_bytes() == (snapdir / f["file"]).read_bytes()
    aside = list(s.data_dir.glob("before-restore-*"))
    assert len(aside) == 1 and len(list(aside[0].glob("*.tc"))) == DIVNUM
    assert len(snapshot_files(s.data_dir)) == DIVNUM, "snapshot files stay in place"

    s.start()
    assert_all_normal(s)
    got = get_many(s, list(s1) + [b"key00007", b"new-after-snapshot"])
    assert {k: got[k] for k in s1} == s1
    assert got[b"key00007"] is None and got[b"new-after-snapshot"] is None

    # the same snapshot into another storage path: a node started there serves it too
    assert s.stop() == 0
    other = tmp_path / "other-storage"
    r = run_cpdb("restore", mp, "--storage-path", other, "--yes")
    assert r.returncode == 0, describe(r)
    s2 = romad_factory("tc", start=False, port=s.port, storage_path=other)
    s2.start()
    got = get_many(s2, list(s1) + [b"new-after-snapshot"])
    assert {k: got[k] for k in s1} == s1 and got[b"new-after-snapshot"] is None
    assert_all_normal(s2)


# ==============================================================================================
# (f) bad input
# ==============================================================================================
def assert_untouched(server, log_before):
    assert status_log_lines(server) == log_before, "cpdb changed division states"
    assert_all_normal(server)
    server.assert_healthy()


def test_usage_and_unknown_port():
    r = run_cpdb()
    assert r.returncode != 0, describe(r)
    assert r.stdout.splitlines()[0] == "cpdb [port]"
    port = free_port()
    r = run_cpdb("--host", "127.0.0.1", port)
    assert r.returncode == 1, describe(r)
    assert f"127.0.0.1:{port}" in r.stderr and "refused" in r.stderr.lower(), describe(r)
    assert r.stdout == ""
    r = run_cpdb("notaport")
    assert r.returncode != 0 and "invalid port" in r.stderr, describe(r)
    r = run_cpdb("--priority", "fast", "10001")
    assert r.returncode == 64 and "--priority must be idle, low or normal" in r.stderr, describe(r)


def test_memory_engine_is_refused(romad_factory):
    s = romad_factory("memory")
    r = run_cpdb(s.port)
    assert r.returncode != 0, describe(r)
    assert "ERROR:cpdb supports just TCStorage system, your storage type is RubyHashStorage\n" in r.stdout
    assert "finished" not in r.stdout
    assert_all_normal(s)
    assert b"stats.gui_run_snapshot false" in s.raw(b"stat gui_run\r\n")
    s.assert_healthy()


def test_busy_division_is_refused_and_nothing_else_is_touched(romad):
    assert set_storage_status(romad, 3, "safecopy") == b"PUSHED\r\n"
    wait_division(romad, 3, "safecopy_flushed")
    log_before = status_log_lines(romad)
    r = run_cpdb("--host", "127.0.0.1", romad.port)
    assert r.returncode != 0, describe(r)
    states = ", ".join(":safecopy_flushed" if i == 3 else ":normal" for i in range(DIVNUM))
    assert r.stdout == (f"storages[roma].storage.safecopy_stats [{states}]\n"
                        "ERROR: Status except the :normal exists.\n"), describe(r)
    assert status_log_lines(romad) == log_before
    assert safecopy_states(romad) == ["safecopy_flushed" if i == 3 else "normal" for i in range(DIVNUM)]
    assert not snapshot_files(romad.data_dir)
    assert set_storage_status(romad, 3, "normal") == b"PUSHED\r\n"
    wait_division(romad, 3, "normal")
    romad.assert_healthy()


SCHED_OTHER, SCHED_IDLE = 0, 5


def thread_policies(pid):
    """{thread name: [(scheduling policy, nice), ...]} of a process, from
    /proc/<pid>/task/*/stat (fields 41 and 19)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            stat = (task / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        out.setdefault(name, []).append((int(fields[38]), int(fields[16])))
    return out


def test_background_work_runs_below_the_request_threads(romad):
    """Flush and cache cleaning run on pool threads under SCHED_IDLE, the event loops stay
    SCHED_OTHER at nice 0: a waking event loop then preempts background work at once
    (docs/snapshots.md)."""
    assert set_storage_status(romad, 2, "safecopy") == b"PUSHED\r\n"
    wait_division(romad, 2, "safecopy_flushed")
    assert set_storage_status(romad, 2, "normal") == b"PUSHED\r\n"
    wait_division(romad, 2, "normal")
    threads = thread_policies(romad.pid)
    pool = [p for name, ps in threads.items() if name.startswith("TP-") for p in ps]
    loops = [p for name, ps in threads.items() if name.startswith("NIO-ELT") for p in ps]
    assert loops and all(p == (SCHED_OTHER, 0) for p in loops), threads
    assert (SCHED_IDLE, 0) in pool, f"no SCHED_IDLE pool thread after a flush and a cache cleaning: {threads}"
    romad.assert_healthy()


def cpdb_caught_waiting(server, args, while_waiting, timeout=60):
    """Spawns cpdb with `args` against `server`, waits until division 0 is safecopy_flushing (the
    test slows the node's flush down), calls `while_waiting(proc)`, then waits for cpdb to end.
    Returns (exit status, stdout, stderr); cpdb is killed if anything fails on the way."""
    p = spawn_cpdb(*args, "--host", "127.0.0.1", server.port)
    try:
        wait_division(server, 0, "safecopy_flushing", timeout=10)
        while_waiting(p)
        out, err = p.communicate(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode, out, err


def io_priority(tid):
    """(class, level) of a thread's disk I/O priority (ioprio_get(2); glibc has no wrapper)."""
    libc = ctypes.CDLL(None, use_errno=True)
    sys_ioprio_get = 252  # x86_64
    v = libc.syscall(sys_ioprio_get, 1, tid)
    assert v >= 0, os.strerror(ctypes.get_errno())
    return v >> 13, v & 0x1FFF


@pytest.mark.skipif(platform.machine() != "x86_64", reason="ioprio_get syscall number is x86_64's")
@pytest.mark.parametrize("priority, policy, ioclass", [(None, SCHED_IDLE, 2), ("low", SCHED_OTHER, 2),
                                                       ("normal", SCHED_OTHER, None)])
def test_cpdb_takes_its_priority_before_anything_else(romad_factory, priority, policy, ioclass):
    """cpdb's main thread (which talks to the node) runs under --priority (taken before parsing): SCHED_IDLE
    by default, nice 10 for `low`, both with best-effort I/O (explicitly: a SCHED_IDLE thread's I/O
    would otherwise be in the idle class, which the node's page faults must not wait behind). (Each flush
    and cache cleaning of the node is slowed down so that cpdb is caught waiting.)"""
    s = romad_factory("tc", env={"ROMAD_TEST_SAFECOPY_DELAY_MS": "150"})
    load(s, sample_data(20))

    def check(p):
        stat = Path(f"/proc/{p.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        assert int(fields[38]) == policy, f"policy {fields[38]}"
        if priority == "low":
            assert int(fields[16]) == 10
        if ioclass is not None:
            assert io_priority(p.pid)[0] == ioclass

    rc, out, err = cpdb_caught_waiting(s, ["--priority", priority] if priority else [], check)
    assert rc == 0, f"{out}\n{err}"
    assert_all_normal(s)


@pytest.mark.parametrize("where", ["below-a-file", "proc"])
def test_unwritable_destination(romad, tmp_path, where):
    load(romad, sample_data(20))
    log_before = status_log_lines(romad)
    if where == "below-a-file":
        f = tmp_path / "plainfile"
        f.write_text("x")
        dest = f / "snap"
    else:
        dest = Path("/proc/nonexistent/snap")
    r = run_cpdb("--dest", dest, "--host", "127.0.0.1", romad.port)
    assert r.returncode != 0, describe(r)
    assert "destination unusable" in r.stderr and str(dest) in r.stderr, describe(r)
    assert "finished" not in r.stdout
    assert_untouched(romad, log_before)


@pytest.fixture
def tiny_tmpfs(tmp_path):
    mnt = tmp_path / "full"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}); the full-destination case needs one")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


@pytest.mark.parametrize("mode", ["sequential", "consistent"])
def test_full_destination(romad, tiny_tmpfs, mode):
    load(romad, sample_data(50))
    log_before = status_log_lines(romad)
    extra = ["--consistent"] if mode == "consistent" else []
    # 1. the free-space check refuses before touching anything
    r = run_cpdb(*extra, "--dest", tiny_tmpfs, "--host", "127.0.0.1", romad.port)
    assert r.returncode != 0 and "not enough space" in r.stderr, describe(r)
    assert_untouched(romad, log_before)
    # 2. without it, the copy runs out of space: the divisions go back to normal, nothing is left
    r = run_cpdb(*extra, "--no-space-check", "--dest", tiny_tmpfs, "--host", "127.0.0.1", romad.port)
    assert r.returncode != 0, describe(r)
    assert "No space left on device" in r.stderr, describe(r)
    assert "finished" not in r.stdout
    assert list(tiny_tmpfs.iterdir()) == [], f"left behind: {list(tiny_tmpfs.iterdir())}"
    assert_all_normal(romad)
    romad.assert_healthy()
    log = [l.split(" ", 1)[1] for l in status_log_lines(romad)[len(log_before):]]
    assert log[-1].endswith(" normal") and len(log) % 4 == 0, log


def test_interrupted_cpdb_puts_the_division_back(romad_factory):
    s = romad_factory("tc", env={"ROMAD_TEST_SAFECOPY_DELAY_MS": "500"})
    load(s, sample_data(20))
    rc, out, err = cpdb_caught_waiting(s, [], lambda p: p.send_signal(signal.SIGINT), timeout=30)
    assert rc == 130, f"{rc}\n{out}\n{err}"
    assert "interrupted" in err
    assert_all_normal(s)
    assert not snapshot_files(s.data_dir) and not manifests_in(s.data_dir)
    s.assert_healthy()
