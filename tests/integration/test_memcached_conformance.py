"""Issue #10: on memcached's own commands romad answers what memcached 1.6 answers.

The judge is memcached itself: libmemcached's conformance suite (`memccapable -a`) must pass
27/27, and for every request of ``ACCEPTED`` (requests memcached 1.6 accepts) romad's reply
bytes must equal those of a real memcached started by the test (only the version number in
`VERSION …` differs). Requests memcached refuses keep ROMA's replies (issue #2, README table).
Also here: `!!` (spec R3.4) and the one-line `SERVER_ERROR` of ROMA commands this node does not
implement yet.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

from romatest import Conn, PeerClosed, free_port, wait_for

MEMCACHED = shutil.which("memcached")
MEMCCAPABLE = shutil.which("memccapable")


@pytest.fixture(scope="module")
def memcached():
    """A real memcached 1.6 on a loopback port (stopped by PID at the end)."""
    if not MEMCACHED:
        pytest.fail("memcached is not installed (make deps installs it)")
    port = free_port()
    argv = [MEMCACHED, "-p", str(port), "-U", "0", "-l", "127.0.0.1", "-m", "64"]
    if os.geteuid() == 0:
        argv += ["-u", "nobody"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return proc.poll() is not None
    wait_for(up, 10.0, "memcached to listen")
    assert proc.poll() is None, proc.stderr.read().decode(errors="replace")
    yield port
    proc.kill()
    proc.wait(timeout=10)


def conversation(port: int, requests: list[bytes]) -> bytes:
    """Sends each chunk on one new connection, reading whatever answers until the line is quiet
    (a request that must answer nothing cannot be awaited otherwise), then ends with `version`
    as a sentinel and returns everything before its reply."""
    out = b""
    # Requests that answer VERSION themselves: the sentinel is the one after them.
    expected = 1 + sum(r.lower().startswith(b"version") for r in requests)
    with Conn(port) as c:
        for req in requests:
            c.send(req)
        c.send(b"version\r\n")
        deadline = time.monotonic() + 5
        while c.buf.count(b"VERSION ") < expected or not c.buf.endswith(b"\r\n"):
            c._fill(deadline, "version sentinel")
        out = c.buf[: c.buf.rindex(b"VERSION ")]
    return out


def normalise(reply: bytes) -> bytes:
    return reply.replace(b"VERSION 1.6.18", b"VERSION x").replace(b"VERSION ROMA-1.3.0", b"VERSION x")


# Requests memcached 1.6 accepts, in order on one connection (each list is one conversation).
ACCEPTED = {
    "version with extra tokens": [b"version foo bar\r\n", b"version noreply\r\n"],
    "verbosity forms": [b"verbosity 1\r\n", b"verbosity 1 noreply\r\n", b"verbosity noreply\r\n",
                        b"verbosity 1 2\r\n", b"verbosity foo\r\n", b"verbosity foo noreply\r\n",
                        b"verbosity -1\r\n", b"verbosity 99999999999999999999999\r\n"],
    "storage extra token ignored": [b"set k 0 0 1 foo\r\na\r\n", b"get k\r\n",
                                    b"add k 0 0 1 bar\r\nb\r\n", b"replace k 0 0 1 x\r\nc\r\n",
                                    b"append k 0 0 1 x\r\nd\r\n", b"prepend k 0 0 1 x\r\ne\r\n",
                                    b"get k\r\n"],
    "storage noreply": [b"set k 0 0 1 noreply\r\na\r\n", b"add k 0 0 1 noreply\r\nb\r\n",
                        b"replace k 0 0 1 noreply\r\nc\r\n", b"append k 0 0 1 noreply\r\nd\r\n",
                        b"prepend k 0 0 1 noreply\r\ne\r\n", b"get k\r\n",
                        b"set k 0 0 x noreply\r\n"],
    "cas": [b"set c 0 0 1\r\na\r\n", b"cas c 0 0 1 999 noreply\r\nb\r\n", b"cas nokey 0 0 1 1\r\na\r\n",
            b"cas nokey 0 0 1 1 noreply\r\na\r\n", b"get c\r\n"],
    "delete forms": [b"set d 0 0 1\r\na\r\n", b"delete d noreply\r\n", b"delete d\r\n", b"delete d 0\r\n",
                     b"delete d 0 noreply\r\n", b"delete d 5\r\n", b"delete d 5 noreply\r\n",
                     b"delete d x y\r\n", b"delete noreply\r\n", b"delete d noreply x\r\n"],
    "incr decr": [b"set n 0 0 1\r\n5\r\n", b"incr n 1\r\n", b"incr n 1 2\r\n", b"incr n 1 noreply\r\n",
                  b"decr n 2 noreply\r\n", b"get n\r\n", b"incr nokey 1\r\n", b"incr nokey 1 noreply\r\n",
                  b"incr n x noreply\r\n", b"decr n 100\r\n"],
    "touch": [b"set t 0 0 1\r\na\r\n", b"touch t 10\r\n", b"touch t 10 x\r\n", b"touch t 10 noreply\r\n",
              b"touch nokey 10\r\n", b"touch nokey 10 noreply\r\n", b"touch t x noreply\r\n"],
    "flush_all forms": [b"set f 0 0 1\r\na\r\n", b"flush_all\r\n", b"flush_all noreply\r\n", b"flush_all 0\r\n",
                        b"flush_all 0 noreply\r\n", b"flush_all 0 0\r\n", b"flush_all 0 foo\r\n",
                        b"flush_all -1\r\n", b"flush_all x noreply\r\n", b"get f\r\n"],
    "get gets": [b"set g 0 0 2\r\nhi\r\n", b"get g\r\n", b"get g nokey g\r\n", b"get noreply\r\n",
                 b"get a b c\r\n"],
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_same_bytes_as_memcached(romad_any, memcached, name):
    reqs = ACCEPTED[name]
    mine = conversation(romad_any.port, reqs)
    theirs = conversation(memcached, reqs)
    assert normalise(mine) == normalise(theirs), f"{name}: romad {mine!r} != memcached {theirs!r}"


@pytest.mark.parametrize("req", [b"quit extra\r\n", b"quit noreply\r\n", b"quit\r\n"])
def test_quit_with_extra_tokens_closes_like_memcached(romad, memcached, req):
    for port in (romad.port, memcached):
        with Conn(port) as c:
            c.send(req)
            assert c.read_until_close(5) == b"", f"port {port}: {req!r} must close without a reply"


def test_exact_replies(romad):
    assert romad.raw(b"version foo bar\r\n") == b"VERSION ROMA-1.3.0\r\n"
    assert romad.raw(b"verbosity noreply\r\n") == b""
    assert romad.raw(b"verbosity 1 2\r\n") == b"OK\r\n"


def test_memccapable_all_ascii_tests_pass(romad):
    if not MEMCCAPABLE:
        pytest.fail("memccapable is not installed (make deps installs libmemcached-tools)")
    r = subprocess.run([MEMCCAPABLE, "-a", "-h", "127.0.0.1", "-p", str(romad.port)],
                       capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert "All tests passed" in out, out
    assert out.count("[pass]") == 27 and "[FAIL]" not in out, out
    assert r.returncode == 0, out


# --- `!!` (spec R3.4) ---------------------------------------------------------------------------

def test_bang_bang_alone_answers_nothing(romad):
    with Conn(romad.port) as c:
        c.send(b"!!\r\n!!\r\n!! x\r\nwhoami\r\n")
        assert c.read_line() == b"ROMA\r\n", "nothing before whoami's reply, and the connection stays open"
        c.send(b"!!\r\n")
        assert c.read_line() == b"ROMA\r\n"


def test_bang_bang_repeats_version(romad):
    with Conn(romad.port) as c:
        c.send(b"version\r\n!!\r\n!! extra tokens\r\n")
        assert c.read_line() == b"VERSION ROMA-1.3.0\r\n"
        assert c.read_line() == b"VERSION ROMA-1.3.0\r\n"
        assert c.read_line() == b"VERSION ROMA-1.3.0\r\n"


def test_unknown_command_does_not_become_previous(romad):
    with Conn(romad.port) as c:
        c.send(b"whoami\r\nfoobar\r\n!!\r\n")
        assert c.read_line() == b"ROMA\r\n"
        assert c.read_until(b"'quit')\r\n") == (b"ERROR: 'foobar' is not roma command. Please check command.\r\n"
                                                b"(closing telnet connection command is 'quit')\r\n")
        assert c.read_line() == b"ROMA\r\n", "!! repeats whoami, the last known command"


def test_bang_bang_after_set_reads_a_new_data_block(romad):
    with Conn(romad.port) as c:
        c.send(b"set bb 0 0 3\r\nabc\r\n!!\r\nxyz\r\nget bb\r\n")
        assert c.read_line() == b"STORED\r\n"
        assert c.read_line() == b"STORED\r\n"
        assert c.read_value_reply() == b"VALUE bb 0 3\r\nxyz\r\nEND\r\n"
        c.send(b"!!\r\n")
        assert c.read_value_reply() == b"VALUE bb 0 3\r\nxyz\r\nEND\r\n", "!! repeats the get"
        c.assert_in_sync()


def test_bang_bang_is_per_connection(romad):
    with Conn(romad.port) as a, Conn(romad.port) as b:
        assert a.exchange(b"whoami\r\n") == b"ROMA\r\n"
        assert b.exchange(b"!!\r\n") == b"", "another connection's command is not 'previous'"


def test_suggestion_never_proposes_the_word_typed(romad):
    got = romad.raw(b"sett\r\n")
    assert got == b"\r\nERROR: 'sett' is not roma command.\r\nDid you mean this?\r\n\tset\r\n"
    for word in (b"Set", b"GETS", b"versionn"):
        got = romad.raw(word + b"x\r\n")
        assert not got.startswith(b"SERVER_ERROR"), got
        assert b"\t" + word + b"x\r\n" not in got, got
