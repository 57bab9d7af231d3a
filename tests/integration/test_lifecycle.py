"""Process lifecycle: persistence, the lock file, signals, balse / shutdown_self, command line."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time

import pytest

from romatest import ROMAD_BIN, VERSION_REPLY, Romad, pid_alive

SHUTDOWN_SELF_PROMPT = (b"\r\n" + b"=" * 65 + b"\r\n"
                        b"CAUTION!!: \r\n\tThis command kill the instance!\r\n"
                        b"\tThere is some possibility of occuring redundancy down!\r\n"
                        + b"=" * 65 + b"\r\n"
                        b"\r\nAre you sure to shutdown this instance?(yes/no)\r\n")


def test_data_directory_layout(romad):
    d = romad.data_dir
    assert d == romad.storage_path / f"127.0.0.1_{romad.port}" / "roma"
    for i in range(10):
        assert (d / f"{i}.tc").is_file(), f"{i}.tc missing in {d}: {sorted(os.listdir(d))}"
    assert romad.lock_path.exists(), "lock must exist while romad runs"
    assert (d / "status.log.1").exists(), "status.log.1 must exist"
    assert romad.raw(b"hashlist\r\n") == b"roma\r\n"


def test_startup_log_names_data_dir_engine_and_port(romad):
    log = romad.log_text()
    assert str(romad.port) in log, log
    assert str(romad.node_dir) in log or str(romad.data_dir) in log, f"start-up line must name the data dir:\n{log}"
    assert re.search(r"(?i)\btc\b|tokyo", log), f"start-up line must name the engine:\n{log}"


def test_memory_engine_writes_no_tc_files(romad_factory):
    s = romad_factory("memory")
    assert s.raw(b"set k 0 0 1\r\nv\r\n") == b"STORED\r\n"
    assert list(s.storage_path.rglob("*.tc")) == []
    assert s.stop() == 0


def test_persistence_across_sigterm_restart(romad):
    s = romad
    bulk = {b"bulk%04d" % i: os.urandom(40).hex().encode() for i in range(1000)}
    assert s.raw(b"".join(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(v), v) for k, v in bulk.items())) == \
        b"STORED\r\n" * len(bulk)
    binval = b"\x00\xff\r\nEND\r\n"
    for req, exp in [
        (b"set a 0 0 5\r\nhello\r\n", b"STORED\r\n"),
        (b"set a 0 0 5\r\nHELLO\r\n", b"STORED\r\n"),
        (b"set b 0 1000 3\r\nbbb\r\n", b"STORED\r\n"),
        (b"set e 0 0 0\r\n\r\n", b"STORED\r\n"),
        (b"set bin 0 0 %d\r\n%s\r\n" % (len(binval), binval), b"STORED\r\n"),
        (b"set d 0 0 1\r\nd\r\n", b"STORED\r\n"),
        (b"delete d\r\n", b"DELETED\r\n"),
        (b"set n 0 0 1\r\n1\r\n", b"STORED\r\n"),
        (b"incr n 41\r\n", b"42\r\n"),
    ]:
        assert s.raw(req) == exp, req
    expt_b = s.raw(b"get_expt b unix\r\n")
    stat_before = s.raw(b"stat rnum\r\n")
    pid = s.pid
    assert s.stop(signal.SIGTERM) == 0
    assert not s.lock_path.exists(), "lock must be removed at clean shutdown"
    assert not pid_alive(pid)

    s.start()
    assert s.pid != pid
    assert s.raw(b"gets a\r\n") == b"VALUE a 0 5 1\r\nHELLO\r\nEND\r\n"
    assert s.raw(b"gets b\r\n") == b"VALUE b 0 3 0\r\nbbb\r\nEND\r\n"
    assert s.raw(b"get_expt b unix\r\n") == expt_b
    assert s.raw(b"get e\r\n") == b"VALUE e 0 0\r\n\r\nEND\r\n"
    assert s.raw(b"get bin\r\n") == b"VALUE bin 0 %d\r\n%s\r\nEND\r\n" % (len(binval), binval)
    assert s.raw(b"get d\r\n") == b"END\r\n"
    assert s.raw(b"get_expt d unix\r\n") == b"0\r\nEND\r\n", "the tombstone must persist"
    assert s.raw(b"gets n\r\n") == b"VALUE n 0 2 1\r\n42\r\nEND\r\n"
    assert s.raw(b"stat rnum\r\n") == stat_before
    with s.connect(timeout=20) as c:
        c.send(b"get " + b" ".join(bulk) + b"\r\n")
        expected = b"".join(b"VALUE %s 0 %d\r\n%s\r\n" % (k, len(v), v) for k, v in bulk.items()) + b"END\r\n"
        assert c.read_exact(len(expected), timeout=20) == expected
    # and it keeps working after the restart
    assert s.raw(b"set a 0 0 1\r\nz\r\n") == b"STORED\r\n"
    assert s.raw(b"gets a\r\n") == b"VALUE a 0 1 2\r\nz\r\nEND\r\n"


# ---------------------------------------------------------------------------------------------
# lock file
# ---------------------------------------------------------------------------------------------
def test_lock_file_names_the_owner_pid(romad):
    content = romad.lock_path.read_bytes()
    assert str(romad.pid).encode() in content, f"lock content {content!r} does not name pid {romad.pid}"


def test_second_instance_on_same_data_dir_is_refused(romad, tmp_path):
    first = romad
    assert first.raw(b"set keep 0 0 4\r\nkeep\r\n") == b"STORED\r\n"
    second = Romad(tmp_path / "second", port=first.port, storage_path=first.storage_path)
    second.spawn()
    try:
        rc = second.wait_exit(20)
        assert rc is not None, "second romad on a locked data dir must exit"
    finally:
        second.kill9()
    log = second.log_text()
    assert rc != 0, f"second instance must fail (exit {rc}):\n{log}"
    assert str(first.pid) in log, f"the refusal must name the owner's PID {first.pid}:\n{log}"
    # the first one is untouched
    assert first.alive() and first.lock_path.exists()
    assert first.raw(b"get keep\r\n") == b"VALUE keep 0 4\r\nkeep\r\nEND\r\n"


def test_lock_held_by_another_live_process_is_refused(romad):
    """A lock naming a live process that holds it.  The test process writes its own PID and also
    holds an exclusive flock on the file, so a PID-liveness check and a flock check must both
    refuse; the refusal must name the PID."""
    import fcntl
    s = romad
    assert s.stop() == 0
    live_pid = os.getpid()
    with open(s.lock_path, "w") as fh:
        fh.write(f"{live_pid}\n")
        fh.flush()
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        s.expect_clean_exit = False   # this start is supposed to fail
        s.spawn()
        rc = s.wait_exit(20)
        if rc is None:
            s.kill9()
            pytest.fail("romad started although its lock is held by a live process")
        assert rc != 0
        assert str(live_pid) in s.log_text(), s.log_text()
        assert s.lock_path.read_text() == f"{live_pid}\n", "a refused start must not touch the lock"


def test_stale_lock_after_kill9_is_taken_over(romad):
    s = romad
    assert s.raw(b"set k 0 0 5\r\nvalue\r\n") == b"STORED\r\n"
    old_pid = s.pid
    s.kill9()
    assert s.lock_path.exists(), "kill -9 leaves the lock behind (precondition)"
    assert not pid_alive(old_pid)
    s.start()
    assert s.alive()
    content = s.lock_path.read_bytes()
    assert str(old_pid).encode() not in content, f"the stale lock must be replaced: {content!r}"
    s.assert_healthy()


def test_acknowledged_writes_survive_kill9(romad):
    s = romad
    assert s.raw(b"".join(b"set w%d 0 0 2\r\n%02d\r\n" % (i, i) for i in range(100))) == b"STORED\r\n" * 100
    s.kill9()
    s.start()
    got = s.raw(b"get " + b" ".join(b"w%d" % i for i in range(100)) + b"\r\n")
    assert got == b"".join(b"VALUE w%d 0 2\r\n%02d\r\n" % (i, i) for i in range(100)) + b"END\r\n"


# ---------------------------------------------------------------------------------------------
# signals
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_clean_shutdown(romad_any, sig):
    s = romad_any
    assert s.raw(b"set k 0 0 1\r\nv\r\n") == b"STORED\r\n"
    t = time.monotonic()
    s.send_signal(sig)
    rc = s.wait_exit(5)
    assert rc is not None, f"romad did not exit within 5 s of {sig!r}"
    assert rc == 0, f"exit status {rc} after {sig!r}:\n{s.log_text()}"
    assert time.monotonic() - t < 5
    assert not s.lock_path.exists()


def _first_connection(s: Romad) -> socket.socket:
    """The first connection a just-spawned node accepts (polled every 2 ms, up to 20 s)."""
    deadline = time.monotonic() + 20
    while True:
        assert s.alive(), s.log_text()
        try:
            return socket.create_connection(("127.0.0.1", s.port), timeout=5)
        except OSError:
            assert time.monotonic() < deadline, "romad never listened"
            time.sleep(0.002)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_as_soon_as_listening(romad_factory, sig):
    """A node that accepts connections must already honour SIGTERM/SIGINT (no window in which
    the signal kills it uncleanly or is ignored)."""
    for attempt in range(5):
        s = romad_factory("tc", start=False)
        s.expect_clean_exit = False   # asserted below, with a better message
        s.spawn()
        _first_connection(s).close()
        s.send_signal(sig)
        rc = s.wait_exit(5)
        assert rc is not None, f"attempt {attempt}: {sig!r} right after listen was ignored (no exit in 5 s)"
        assert rc == 0, f"attempt {attempt}: exit status {rc} for {sig!r} right after listen:\n{s.log_text()}"


def test_a_lone_node_serves_data_commands_as_soon_as_it_listens(romad_factory):
    """A node alone in its routing table serves data commands from its first accepted
    connection: never the "not roma command" answers of a node still waiting for its peers
    (R3.7). The start-up pauses right after the bind (test hook), so a client connecting then
    lands in the moment where it once got `ERROR: 'set' is not roma command.`"""
    s = romad_factory("tc", start=False, env={"ROMAD_TEST_AFTER_BIND_PAUSE_MS": "1500"})
    s.spawn()
    with _first_connection(s) as c:
        c.sendall(b"set early 0 0 2\r\nhi\r\nget early\r\n")
        want = b"STORED\r\nVALUE early 0 2\r\nhi\r\nEND\r\n"
        got = b""
        while len(got) < len(want) and not got.startswith(b"\r\n"):
            chunk = c.recv(4096)
            if not chunk:
                break
            got += chunk
        assert got == want
    s.wait_ready()
    assert s.get(b"early") == b"hi"


def test_sigterm_with_idle_and_half_sent_clients(romad):
    s = romad
    idle = [s.connect() for _ in range(5)]
    half = s.connect()
    half.send(b"set partial 0 0 10\r\nabc")
    busy = s.connect()
    busy.send(b"get")
    try:
        assert s.raw(b"version\r\n") == VERSION_REPLY
        s.send_signal(signal.SIGTERM)
        rc = s.wait_exit(5)
        assert rc is not None, "idle or half-sent clients must not keep romad alive after SIGTERM (5 s)"
        assert rc == 0
        assert not s.lock_path.exists()
        for c in idle:
            c.read_until_close(5)   # closed by the server (raises on timeout)
    finally:
        for c in idle + [half, busy]:
            c.close()
    s.start()
    assert s.raw(b"get partial\r\n") == b"END\r\n"


def test_inflight_pipeline_completes_on_sigterm(romad):
    s = romad
    n = 400
    req = b"".join(b"set ip%d 0 0 4\r\n%04d\r\nget ip%d\r\n" % (i, i, i) for i in range(n))
    replies = [b"STORED\r\n" if j % 2 == 0 else b"VALUE ip%d 0 4\r\n%04d\r\nEND\r\n" % (j // 2, j // 2)
               for j in range(2 * n)]
    expected = b"".join(replies)
    with s.connect(timeout=10) as c:
        c.send(req)                           # everything is sent before the signal
        first = c.read_exact(len(replies[0]))  # the server is working on it
        s.send_signal(signal.SIGTERM)
        got = first + c.read_until_close(10)
    # no torn reply: what arrived is a whole number of complete replies
    acc, complete = b"", 0
    for r in replies:
        if got.startswith(acc + r):
            acc += r
            complete += 1
        else:
            break
    assert acc == got, f"torn or wrong reply after {complete} complete replies: {got[len(acc):len(acc) + 80]!r}"
    assert complete == len(replies), f"only {complete} of {len(replies)} replies before close"
    assert got == expected
    assert s.wait_exit(10) == 0
    s.start()
    assert s.raw(b"get ip0 ip%d\r\n" % (n - 1)) == (
        b"VALUE ip0 0 4\r\n0000\r\nVALUE ip%d 0 4\r\n%04d\r\nEND\r\n" % (n - 1, n - 1))


# ---------------------------------------------------------------------------------------------
# balse / shutdown_self (R3.16)
# ---------------------------------------------------------------------------------------------
def test_balse_yes_stops_the_node(romad):
    s = romad
    assert s.raw(b"set k 0 0 1\r\nv\r\n") == b"STORED\r\n"
    with s.connect() as c:
        c.send(b"balse\r\n")
        assert c.read_line() == b"Are you sure?(yes/no)\r\n"
        c.send(b"yes\r\n")
        got = c.read_until_close(10)
    assert got == b'{"127.0.0.1_%d"=>"BYE"}\r\n' % s.port, got
    rc = s.wait_exit(10)
    assert rc == 0, f"balse must stop the node with exit 0 (got {rc})"
    assert not s.lock_path.exists()
    s.start()
    assert s.raw(b"get k\r\n") == b"VALUE k 0 1\r\nv\r\nEND\r\n"


@pytest.mark.parametrize("answer", [b"no\r\n", b"YES\r\n", b"yes please\r\n"])
def test_balse_not_yes_closes_connection_only(romad, answer):
    s = romad
    with s.connect() as c:
        c.send(b"balse\r\n")
        assert c.read_line() == b"Are you sure?(yes/no)\r\n"
        c.send(answer)
        assert c.read_until_close(5) == b""
    assert s.alive()
    s.assert_healthy()


def test_shutdown_self_yes(romad):
    s = romad
    with s.connect() as c:
        c.send(b"shutdown_self\r\n")
        assert c.read_exact(len(SHUTDOWN_SELF_PROMPT)) == SHUTDOWN_SELF_PROMPT
        c.send(b"yes\r\n")
        assert c.read_until_close(10) == b"BYE\r\n"
    assert s.wait_exit(10) == 0
    assert not s.lock_path.exists()


def test_shutdown_self_no(romad):
    s = romad
    with s.connect() as c:
        c.send(b"shutdown_self\r\n")
        assert c.read_exact(len(SHUTDOWN_SELF_PROMPT)) == SHUTDOWN_SELF_PROMPT
        c.send(b"no\r\n")
        assert c.read_until_close(5) == b""
    assert s.alive()
    s.assert_healthy()


def test_shutdown_self_with_argument(romad):
    assert romad.raw(b"shutdown_self now\r\n") == b"ERROR: shutdown_instance has irregular argument.\r\n"
    assert romad.alive()


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------
def _run_romad(args, tmp_path, timeout=20):
    return subprocess.run([ROMAD_BIN, *args], capture_output=True, timeout=timeout, cwd=str(tmp_path),
                          stdin=subprocess.DEVNULL)


def test_cli_non_numeric_port(tmp_path):
    r = _run_romad(["127.0.0.1", "-p", "abc", "--storage-path", str(tmp_path)], tmp_path)
    assert r.returncode != 0
    assert b"Port number is not numeric." in r.stdout + r.stderr, r


def test_cli_version(tmp_path):
    r = _run_romad(["--version"], tmp_path)
    assert r.returncode == 0 and b"1.3.0" in r.stdout + r.stderr, r


def test_cli_bad_storage_option_fails(romad_factory):
    s = romad_factory("tc", start=False, extra_args=["--storage-option", "foo=1"])
    s.expect_clean_exit = False   # this start is supposed to fail
    s.spawn()
    rc = s.wait_exit(20)
    if rc is None:
        s.kill9()
        pytest.fail("romad started with an invalid storage option")
    assert rc != 0
    assert "foo" in s.log_text(), s.log_text()


def test_cli_name_option(romad_factory):
    s = romad_factory("tc", extra_args=["-n", "MYCLUSTER"])
    assert s.raw(b"whoami\r\n") == b"MYCLUSTER\r\n"
    assert b"stats.name MYCLUSTER\r\n" in s.raw(b"stats name\r\n")


def test_shutdown_yes_stops_the_node(romad):
    """`shutdown` (R3.16): ROMA's cluster-wide stop; on one node it stops this node."""
    s = romad
    with s.connect() as c:
        c.send(b"shutdown\r\n")
        assert c.read_line() == b"*** ARE YOU REALLY SURE TO SHUTDOWN? *** (yes/no)\r\n"
        c.send(b"yes\r\n")
        got = c.read_until_close(10)
    assert got == b'{"127.0.0.1_%d"=>"BYE"}\r\n' % s.port, got
    assert s.wait_exit(10) == 0
    assert not s.lock_path.exists()
