"""Exact reply bytes over raw sockets.

Rows refer to /work/shared/reference/protocol-transcript.md (ROMA 1.3.0 recorded replies).
Where issue #2 mandates memcached behaviour instead of ROMA's, the expected bytes follow the issue
and the row is annotated "(issue)".

Every request is sent on a NEW connection followed by a ``version`` sentinel; the bytes before the
sentinel's reply must equal the expected reply exactly (this also proves "no reply" and
"stream still in sync" without waiting on timeouts).
"""
from __future__ import annotations

import os
import re
import time

import pytest

from romatest import (EXPT_FOREVER, VERSION_REPLY, PeerClosed, division_of_key, is_error_reply,
                      wait_for)

UNKNOWN_FOOBAR = (b"ERROR: 'foobar' is not roma command. Please check command.\r\n"
                  b"(closing telnet connection command is 'quit')\r\n")
ALL_NORMAL = b"[" + b", ".join([b":normal"] * 10) + b"]"


def run_rows(server, rows):
    """rows: (row, label, request, expected).  Each on a new connection; collect all mismatches."""
    problems = []
    for row, label, req, exp in rows:
        try:
            if callable(exp):
                ok, got = exp(server, req)
                if not ok:
                    problems.append(f"row {row} {label}: request {req!r}: {got}")
                continue
            got = server.raw(req)
        except AssertionError as e:
            problems.append(f"row {row} {label}: request {req!r}: {e}")
            continue
        if got != exp:
            problems.append(f"row {row} {label}: request {req!r}\n    expected {exp!r}\n    got      {got!r}")
    assert not problems, "transcript mismatches:\n" + "\n".join(problems)


# ---------------------------------------------------------------------------------------------
# transcript rows
# ---------------------------------------------------------------------------------------------
def test_transcript_rows_1_to_25_storage(romad_any):
    rows = [
        (1, "set", b"set k1 0 0 5\r\nhello\r\n", b"STORED\r\n"),
        (2, "set with flags+exptime", b"set k2 123 3600 5\r\nworld\r\n", b"STORED\r\n"),
        (3, "get hit", b"get k1\r\n", b"VALUE k1 0 5\r\nhello\r\nEND\r\n"),
        (4, "get miss", b"get nokey\r\n", b"END\r\n"),
        (5, "get multi (issue: memcached get format, no cas)", b"get k1 k2 nokey\r\n",
         b"VALUE k1 0 5\r\nhello\r\nVALUE k2 0 5\r\nworld\r\nEND\r\n"),
        (6, "gets single", b"gets k1\r\n", b"VALUE k1 0 5 0\r\nhello\r\nEND\r\n"),
        (7, "gets multi", b"gets k1 k2 nokey\r\n",
         b"VALUE k1 0 5 0\r\nhello\r\nVALUE k2 0 5 0\r\nworld\r\nEND\r\n"),
        (8, "add existing", b"add k1 0 0 3\r\nabc\r\n", b"NOT_STORED\r\n"),
        (9, "add new", b"add k3 0 0 3\r\nabc\r\n", b"STORED\r\n"),
        (10, "replace existing", b"replace k3 0 0 3\r\nxyz\r\n", b"STORED\r\n"),
        (11, "replace missing", b"replace nokey 0 0 3\r\nxyz\r\n", b"NOT_STORED\r\n"),
        (12, "append existing", b"append k3 0 0 3\r\n_ap\r\n", b"STORED\r\n"),
        (13, "prepend existing", b"prepend k3 0 0 3\r\npr_\r\n", b"STORED\r\n"),
        (14, "get after append/prepend", b"get k3\r\n", b"VALUE k3 0 9\r\npr_xyz_ap\r\nEND\r\n"),
        (15, "append missing", b"append nokey 0 0 3\r\n_ap\r\n", b"NOT_STORED\r\n"),
        (16, "prepend missing", b"prepend nokey 0 0 3\r\npr_\r\n", b"NOT_STORED\r\n"),
        (17, "gets k1 (for cas)", b"gets k1\r\n", b"VALUE k1 0 5 0\r\nhello\r\nEND\r\n"),
        (18, "cas match", b"cas k1 0 0 5 0\r\nHELLO\r\n", b"STORED\r\n"),
        (19, "cas mismatch", b"cas k1 0 0 5 0\r\nhello\r\n", b"EXISTS\r\n"),
        (20, "cas missing key", b"cas nokey 0 0 5 1\r\nhello\r\n", b"NOT_FOUND\r\n"),
        (21, "gets k1 after cas", b"gets k1\r\n", b"VALUE k1 0 5 1\r\nHELLO\r\nEND\r\n"),
        (22, "delete hit", b"delete k2\r\n", b"DELETED\r\n"),
        (23, "delete miss", b"delete k2\r\n", b"NOT_FOUND\r\n"),
        (24, "delete noreply (issue: no reply)", b"delete k3 noreply\r\n", b""),
        ("24b", "k3 really deleted by the noreply delete", b"get k3\r\n", b"END\r\n"),
        (25, "delete with time arg", b"delete k1 0\r\n", b"DELETED\r\n"),
        ("25b", "k1 gone", b"get k1\r\n", b"END\r\n"),
    ]
    run_rows(romad_any, rows)


def test_transcript_rows_26_to_46_incr_decr(romad_any):
    rows = [
        (26, "set num", b"set n 0 0 2\r\n10\r\n", b"STORED\r\n"),
        (27, "incr hit", b"incr n 5\r\n", b"15\r\n"),
        (28, "decr hit", b"decr n 3\r\n", b"12\r\n"),
        (29, "decr below zero", b"decr n 100\r\n", b"0\r\n"),
        (30, "incr miss", b"incr nokey 1\r\n", b"NOT_FOUND\r\n"),
        (31, "decr miss", b"decr nokey 1\r\n", b"NOT_FOUND\r\n"),
        (32, "set non-numeric", b"set s 0 0 3\r\nabc\r\n", b"STORED\r\n"),
        (33, "incr non-numeric value", b"incr s 1\r\n", b"1\r\n"),
        (34, "decr non-numeric value", b"decr s 1\r\n", b"0\r\n"),
        (35, "incr non-numeric delta", b"incr n abc\r\n", b"0\r\n"),
        (36, "set max u64", b"set big 0 0 20\r\n18446744073709551615\r\n", b"STORED\r\n"),
        (37, "incr overflow", b"incr big 1\r\n", b"0\r\n"),
        (38, "get big after overflow", b"get big\r\n", b"VALUE big 0 1\r\n0\r\nEND\r\n"),
        (39, "set 2^64-2", b"set big2 0 0 20\r\n18446744073709551614\r\n", b"STORED\r\n"),
        (40, "incr to 2^64-1", b"incr big2 1\r\n", b"18446744073709551615\r\n"),
        (41, "incr delta 2^64", b"incr n 18446744073709551616\r\n", b"0\r\n"),
        (42, "incr negative delta", b"incr n -1\r\n", b"0\r\n"),
        (43, "set 12ab", b"set sp 0 0 4\r\n12ab\r\n", b"STORED\r\n"),
        (44, "incr on '12ab'", b"incr sp 1\r\n", b"13\r\n"),
        (45, "incr noreply (issue: no reply)", b"incr n 1 noreply\r\n", b""),
        (46, "get n", b"get n\r\n", b"VALUE n 0 1\r\n1\r\nEND\r\n"),
    ]
    run_rows(romad_any, rows)


def test_transcript_rows_53_to_63_misc(romad_any):
    rows = [
        (53, "set negative length", b"set bl4 0 0 -1\r\n\r\n", b"CLIENT_ERROR Wrong value size.\r\n"),
        ("53b", "nothing stored", b"get bl4\r\n", b"END\r\n"),
        (54, "set missing args", b"set k\r\n", b"CLIENT_ERROR Wrong number of arguments.\r\n"),
        (55, "set zero-length value", b"set z 0 0 0\r\n\r\n", b"STORED\r\n"),
        (56, "get z", b"get z\r\n", b"VALUE z 0 0\r\n\r\nEND\r\n"),
        (57, "get no key", b"get\r\n", b"CLIENT_ERROR Wrong number of arguments.\r\n"),
        (58, "unknown command", b"foobar\r\n", UNKNOWN_FOOBAR),
        (59, "unknown command similar (sett)", b"sett k 0 0 1\r\n",
         b"\r\nERROR: 'sett' is not roma command.\r\nDid you mean this?\r\n\tset\r\n"),
        (60, "empty line", b"\r\n", b""),
        (61, "bare LF line", b"version\n", VERSION_REPLY),
        (62, "uppercase GET", b"GET k1\r\n", b"END\r\n"),
        (63, "key 250 bytes set", b"set " + b"a" * 250 + b" 0 0 1\r\nx\r\n", b"STORED\r\n"),
        ("63b", "key 250 bytes get", b"get " + b"a" * 250 + b"\r\n",
         b"VALUE " + b"a" * 250 + b" 0 1\r\nx\r\nEND\r\n"),
    ]
    run_rows(romad_any, rows)


def _poll_safecopy(expected_line):
    def check(server, req):
        try:
            wait_for(lambda: server.raw(req) == expected_line, 5.0, f"{expected_line!r}")
            return True, None
        except AssertionError:
            return False, f"expected (within 5 s) {expected_line!r}, last got {server.raw(req)!r}"
    return check


def _quit_closes(server, req):
    got = server.raw(req, expect_close=True)
    return got == b"", f"expected no reply and a closed connection, got {got!r}"


def test_transcript_rows_73_to_91_admin(romad_any):
    port = romad_any.port
    flushed0 = (b"storages[roma].storage.safecopy_stats [:safecopy_flushed, "
                + b", ".join([b":normal"] * 9) + b"]\r\nEND\r\n")
    normal = b"storages[roma].storage.safecopy_stats " + ALL_NORMAL + b"\r\nEND\r\n"
    rows = [
        (73, "version", b"version\r\n", VERSION_REPLY),
        (74, "whoami", b"whoami\r\n", b"ROMA\r\n"),
        (75, "nodelist", b"nodelist\r\n", b"127.0.0.1_%d\r\n" % port),
        (76, "stat safecopy", b"stat safecopy\r\n", normal),
        (78, "set_storage_status 0 safecopy roma", b"set_storage_status 0 safecopy roma\r\n",
         b"PUSHED\r\n"),
        (79, "stat safecopy (after safecopy; polled)", b"stat safecopy\r\n", _poll_safecopy(flushed0)),
        (80, "safecopy again", b"set_storage_status 0 safecopy roma\r\n",
         b"CLIENT_ERROR storage[0] != :normal status\r\n"),
        (81, "set_storage_status 0 normal roma", b"set_storage_status 0 normal roma\r\n", b"PUSHED\r\n"),
        (82, "stat safecopy (after normal; polled)", b"stat safecopy\r\n", _poll_safecopy(normal)),
        (83, "normal again", b"set_storage_status 0 normal roma\r\n",
         b"CLIENT_ERROR storage[0] != :safecopy_flushed status\r\n"),
        (84, "division >= divnum", b"set_storage_status 10 safecopy roma\r\n",
         b"CLIENT_ERROR divnum <= 10\r\n"),
        (85, "bogus status", b"set_storage_status 0 bogus roma\r\n", b"CLIENT_ERROR status parse error\r\n"),
        (86, "too few args", b"set_storage_status 0\r\n", b"CLIENT_ERROR number of arguments (1 for 2)\r\n"),
        (88, "set_gui_run_snapshot true", b"set_gui_run_snapshot true\r\n", b"STORED\r\n"),
        (89, "set_gui_run_snapshot false", b"set_gui_run_snapshot false\r\n", b"STORED\r\n"),
        (90, "quit", b"quit\r\n", _quit_closes),
        (91, "pipelined set+get+delete+get", b"set p 0 0 1\r\n1\r\nget p\r\ndelete p\r\nget p\r\n",
         b"STORED\r\nVALUE p 0 1\r\n1\r\nEND\r\nDELETED\r\nEND\r\n"),
    ]
    run_rows(romad_any, rows)


@pytest.mark.parametrize("req", [
    b"set_storage_status 0 safecopy nohash\r\n",    # row 87: ROMA dropped the connection
    b"set_storage_status -1 safecopy roma\r\n",     # negative division (ROMA: Ruby negative index)
    b"set_storage_status x safecopy roma\r\n",      # non-numeric division
    b"set_storage_status -1 normal roma\r\n",
], ids=["row87-unknown-hash", "negative-division", "non-numeric-division", "negative-division-normal"])
def test_set_storage_status_bad_arguments(romad, req):
    got = romad.raw(req)  # the sentinel proves the connection was kept
    assert got.startswith(b"CLIENT_ERROR ") and got.endswith(b"\r\n") and got.count(b"\r\n") == 1, got
    # nothing changed state
    assert romad.raw(b"stat safecopy\r\n") == (
        b"storages[roma].storage.safecopy_stats " + ALL_NORMAL + b"\r\nEND\r\n")


# ---------------------------------------------------------------------------------------------
# issue (a): multi-key get / gets / flags / clocks
# ---------------------------------------------------------------------------------------------
def test_get_multi_memcached_format_and_gets_cas(romad_any):
    s = romad_any
    assert s.raw(b"set k1 0 0 5\r\nhello\r\nset k2 7 0 5\r\nworld\r\n") == b"STORED\r\nSTORED\r\n"
    assert s.raw(b"get k1 k2\r\n") == b"VALUE k1 0 5\r\nhello\r\nVALUE k2 0 5\r\nworld\r\nEND\r\n"
    # duplicate and missing keys in a multi-get
    got = s.raw(b"get k1 nokey k1\r\n")
    assert got in (b"VALUE k1 0 5\r\nhello\r\nEND\r\n",
                   b"VALUE k1 0 5\r\nhello\r\nVALUE k1 0 5\r\nhello\r\nEND\r\n"), got
    assert s.raw(b"gets k1 k2\r\n") == b"VALUE k1 0 5 0\r\nhello\r\nVALUE k2 0 5 0\r\nworld\r\nEND\r\n"
    # logical clock: +1 per write
    assert s.raw(b"set k1 0 0 1\r\na\r\n") == b"STORED\r\n"
    assert s.raw(b"gets k1\r\n") == b"VALUE k1 0 1 1\r\na\r\nEND\r\n"
    assert s.raw(b"append k1 0 0 1\r\nb\r\n") == b"STORED\r\n"
    assert s.raw(b"gets k1\r\n") == b"VALUE k1 0 2 2\r\nab\r\nEND\r\n"
    assert s.raw(b"cas k1 0 0 1 2\r\nc\r\n") == b"STORED\r\n"
    assert s.raw(b"gets k1\r\n") == b"VALUE k1 0 1 3\r\nc\r\nEND\r\n"
    # a tombstone keeps the clock (R2.7: delete old+1; set after delete old+1)
    assert s.raw(b"delete k1\r\n") == b"DELETED\r\n"
    assert s.raw(b"add k1 0 0 1\r\nd\r\n") == b"STORED\r\n"
    assert s.raw(b"gets k1\r\n") == b"VALUE k1 0 1 5\r\nd\r\nEND\r\n"


def test_flags_are_never_stored(romad_any):
    s = romad_any
    assert s.raw(b"set fl 123 3600 5\r\nworld\r\n") == b"STORED\r\n"
    assert s.raw(b"get fl\r\n") == b"VALUE fl 0 5\r\nworld\r\nEND\r\n"
    assert s.raw(b"gets fl\r\n") == b"VALUE fl 0 5 0\r\nworld\r\nEND\r\n"
    assert s.raw(b"Set fl 1 0 1\r\nx\r\n") == b"STORED\r\n"
    assert s.raw(b"GET fl\r\n") == b"VALUE fl 0 1\r\nx\r\nEND\r\n"


def test_r2_7_clock_and_expiry_effects(romad_any):
    """incr keeps the old expt; append takes the new one; set_expt keeps the value (R2.7)."""
    s = romad_any
    t0 = int(time.time())
    assert s.raw(b"set n 0 1000 1\r\n5\r\n") == b"STORED\r\n"
    e1 = int(s.raw(b"get_expt n unix\r\n").split(b"\r\n")[0])
    assert t0 + 1000 <= e1 <= int(time.time()) + 1000
    assert s.raw(b"incr n 1\r\n") == b"6\r\n"
    assert s.raw(b"get_expt n unix\r\n") == b"%d\r\nEND\r\n" % e1, "incr must keep the expiry"
    assert s.raw(b"gets n\r\n") == b"VALUE n 0 1 1\r\n6\r\nEND\r\n"
    assert s.raw(b"append n 0 0 1\r\n0\r\n") == b"STORED\r\n"
    assert s.raw(b"get_expt n unix\r\n") == b"%d\r\nEND\r\n" % EXPT_FOREVER, "append replaces expiry"
    assert s.raw(b"set_expt n 500\r\n") == b"STORED\r\n"
    assert s.raw(b"gets n\r\n") == b"VALUE n 0 2 3\r\n60\r\nEND\r\n"
    assert s.raw(b"set_expt nokey 500\r\n") == b"NOT_STORED\r\n"


def test_esc_hash_suffix(romad_any):
    """R1.3 / R3.9: key\\x1Bhname addresses a hash; get echoes the token, gets strips the suffix."""
    s = romad_any
    assert s.raw(b"set hk\x1broma 0 0 1\r\nx\r\n") == b"STORED\r\n"
    assert s.raw(b"get hk\r\n") == b"VALUE hk 0 1\r\nx\r\nEND\r\n"
    assert s.raw(b"get hk\x1broma\r\n") == b"VALUE hk\x1broma 0 1\r\nx\r\nEND\r\n"
    assert s.raw(b"gets hk\x1broma\r\n") == b"VALUE hk 0 1 0\r\nx\r\nEND\r\n"
    assert s.raw(b"get hk\x1bnohash\r\n") == b"SERVER_ERROR nohash does not exists.\r\n"
    # data block of a storage command for an unknown hash is consumed (stream in sync)
    assert s.raw(b"set hk\x1bnohash 0 0 1\r\nx\r\n") == b"SERVER_ERROR nohash does not exists.\r\n"


# ---------------------------------------------------------------------------------------------
# issue (b): noreply, touch, verbosity, flush_all
# ---------------------------------------------------------------------------------------------
def test_noreply_on_every_command(romad_any):
    s = romad_any
    with s.connect() as c:
        pipeline = (
            b"set a 0 0 1 noreply\r\n1\r\n"
            b"add b 0 0 1 noreply\r\n2\r\n"
            b"add a 0 0 1 noreply\r\nX\r\n"          # fails silently
            b"replace a 0 0 2 noreply\r\n10\r\n"
            b"append a 0 0 1 noreply\r\n0\r\n"
            b"prepend a 0 0 1 noreply\r\n1\r\n"
            b"cas a 0 0 4 3 noreply\r\n2000\r\n"
            b"cas a 0 0 1 3 noreply\r\nX\r\n"        # stale unique, fails silently
            b"incr a 5 noreply\r\n"
            b"decr a 1000 noreply\r\n"
            b"set c 0 0 1 noreply\r\nc\r\n"
            b"delete c noreply\r\n"
            b"delete nokey noreply\r\n"
            b"incr nokey 1 noreply\r\n"
            b"touch nokey 10 noreply\r\n"
            b"replace nokey 0 0 1 noreply\r\nx\r\n"
        )
        assert c.exchange(pipeline) == b"", "noreply commands must not produce any reply"
        assert c.exchange(b"gets a b c\r\n") == (
            b"VALUE a 0 4 6\r\n1005\r\nVALUE b 0 1 0\r\n2\r\nEND\r\n")
        t0 = int(time.time())
        assert c.exchange(b"touch a 1000 noreply\r\n") == b""
        expt = int(c.exchange(b"get_expt a unix\r\n").split(b"\r\n")[0])
        assert t0 + 1000 <= expt <= int(time.time()) + 1000
        assert c.exchange(b"get nokey\r\n") == b"END\r\n"


def test_touch(romad_any):
    s = romad_any
    assert s.raw(b"set t 0 0 1\r\nx\r\n") == b"STORED\r\n"
    t0 = int(time.time())
    assert s.raw(b"touch t 1000\r\n") == b"TOUCHED\r\n"
    expt = int(s.raw(b"get_expt t unix\r\n").split(b"\r\n")[0])
    assert t0 + 1000 <= expt <= int(time.time()) + 1000
    assert s.raw(b"get t\r\n") == b"VALUE t 0 1\r\nx\r\nEND\r\n"
    assert s.raw(b"touch nokey 1000\r\n") == b"NOT_FOUND\r\n"
    assert s.raw(b"touch t 0\r\n") == b"TOUCHED\r\n"
    assert s.raw(b"get_expt t unix\r\n") == b"%d\r\nEND\r\n" % EXPT_FOREVER
    assert s.raw(b"touch t -1\r\n") == b"TOUCHED\r\n"
    assert s.raw(b"get t\r\n") == b"END\r\n", "touch with a negative exptime expires the item"


def test_verbosity(romad_any):
    assert romad_any.raw(b"verbosity 1\r\n") == b"OK\r\n"
    assert romad_any.raw(b"verbosity 0 noreply\r\n") == b""


@pytest.mark.parametrize("cmd,reply", [
    (b"flush_all\r\n", b"OK\r\n"),
    (b"flush_all 0\r\n", b"OK\r\n"),
    (b"flush_all noreply\r\n", b""),
    (b"flush_all 0 noreply\r\n", b""),
])
def test_flush_all(romad_any, cmd, reply):
    s = romad_any
    assert s.raw(b"set f1 0 0 1\r\n1\r\nset f2 0 0 1\r\n2\r\n") == b"STORED\r\nSTORED\r\n"
    assert s.raw(cmd) == reply
    assert s.raw(b"get f1 f2\r\n") == b"END\r\n"
    assert s.raw(b"set f1 0 0 1\r\n3\r\n") == b"STORED\r\n", "the server must accept writes after flush_all"
    assert s.raw(b"get f1\r\n") == b"VALUE f1 0 1\r\n3\r\nEND\r\n"


def test_flush_all_with_delay(romad):
    s = romad
    assert s.raw(b"set f1 0 0 1\r\n1\r\n") == b"STORED\r\n"
    assert s.raw(b"flush_all 1\r\n") == b"OK\r\n"
    wait_for(lambda: s.raw(b"get f1\r\n") == b"END\r\n", 5.0, "f1 to be flushed after the delay")


# ---------------------------------------------------------------------------------------------
# issue (c): wrong argument counts: an error, never a desync
# ---------------------------------------------------------------------------------------------
SUCCESS_LINES = {b"VERSION ROMA-1.3.0", b"OK", b"END", b"STORED", b"DELETED", b"NOT_FOUND", b"TOUCHED",
                 b"NOT_STORED", b"EXISTS"}


@pytest.mark.parametrize("req", [
    b"stats noreply\r\n",
    b"verbosity\r\n", b"verbosity a b c\r\n", b"delete a b c d e\r\n",
    b"gets\r\n", b"incr k\r\n", b"decr k\r\n", b"set_expt k\r\n", b"touch k\r\n", b"incr\r\n",
    b"touch\r\n", b"delete\r\n", b"get_expt\r\n", b"get_expt k unix x\r\n",
])
def test_wrong_argument_count_gets_error_and_stays_in_sync(romad, req):
    assert romad.raw(b"set k 0 0 1\r\n7\r\n") == b"STORED\r\n"
    with romad.connect() as c:
        try:
            got = c.exchange(req)
        except PeerClosed as e:
            pytest.fail(f"{req!r} closed the connection instead of replying with an error: {e}")
        assert is_error_reply(got), f"{req!r} -> {got!r} (expected ERROR/CLIENT_ERROR)"
        lines = set(got.split(b"\r\n"))
        assert not (lines & SUCCESS_LINES), f"{req!r} -> {got!r} looks like it was executed"
        c.assert_in_sync()
    assert romad.raw(b"get k\r\n") == b"VALUE k 0 1\r\n7\r\nEND\r\n", "k must be untouched"


@pytest.mark.parametrize("req,expect", [
    (b"delete dk\r\n", b"DELETED\r\n"),
    (b"delete dk noreply\r\n", b""),
    (b"delete dk 0\r\n", b"DELETED\r\n"),
    (b"delete dk 0 noreply\r\n", b""),
])
def test_delete_allowed_forms(romad, req, expect):
    assert romad.raw(b"set dk 0 0 1\r\nx\r\n") == b"STORED\r\n"
    assert romad.raw(req) == expect
    assert romad.raw(b"get dk\r\n") == b"END\r\n"


@pytest.mark.parametrize("req", [
    b"set k 0 0 5 extra junk\r\nhello\r\n",
    b"set k abc 0 5 x y\r\nhello\r\n",
    b"cas k 0 0 5\r\nhello\r\n",                  # cas without unique
    b"add k 0 0 5 1 2 3\r\nhello\r\n",
    b"append k 0 0 5 x y\r\nhello\r\n",
    b"cas k 0 0 5 0 noreply extra\r\nhello\r\n",
])
def test_malformed_storage_line_with_readable_length_skips_data(romad, req):
    with romad.connect() as c:
        got = c.exchange(req)
        assert got.startswith(b"CLIENT_ERROR") and got.count(b"\r\n") == 1 and got.endswith(b"\r\n"), (
            f"{req!r} -> {got!r}: expected exactly one CLIENT_ERROR line (data block skipped)")
        c.assert_in_sync()
    assert romad.raw(b"get k\r\n") == b"END\r\n", "nothing may be stored by a malformed command"


def test_trailing_space_is_not_an_extra_token(romad):
    """R3.1: trailing empty tokens are dropped (peers send `set k 1 0 5 \\r\\n`)."""
    assert romad.raw(b"set k 1 0 5 \r\nhello\r\n") == b"STORED\r\n"
    assert romad.raw(b"get k \r\n") == b"VALUE k 0 5\r\nhello\r\nEND\r\n"


# ---------------------------------------------------------------------------------------------
# issue (d): empty key from doubled spaces
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cmd,fmt", [(b"get", b"VALUE %s 0 1\r\n%s\r\n"), (b"gets", b"VALUE %s 0 1 0\r\n%s\r\n")])
def test_doubled_space_empty_key(romad, cmd, fmt):
    assert romad.raw(b"set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\n") == b"STORED\r\nSTORED\r\n"
    with romad.connect() as c:
        got = c.exchange(cmd + b" a  b\r\n")
        skipped = fmt % (b"a", b"1") + fmt % (b"b", b"2") + b"END\r\n"
        assert got == skipped or (is_error_reply(got) and got.count(b"\r\n") == 1), got
        assert c.exchange(b"get a\r\n") == b"VALUE a 0 1\r\n1\r\nEND\r\n"


# ---------------------------------------------------------------------------------------------
# issue (e): limits, unknown commands, misc commands
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", [b"b" * 251, b"c" * 1000, b"a\x01b", b"a\x7fb", b"a\tb", b"a\x00b",
                                 b"x\x1fy"],
                         ids=["251", "1000", "ctrl-01", "del-7f", "tab", "nul", "ctrl-1f"])
def test_bad_key_is_rejected_and_stream_stays_in_sync(romad, key):
    with romad.connect() as c:
        for req in (b"set %s 0 0 1\r\nx\r\n" % key,          # data block must be swallowed
                    b"add %s 0 0 3\r\nabc\r\n" % key,
                    b"get %s\r\n" % key,
                    b"gets %s\r\n" % key,
                    b"delete %s\r\n" % key,
                    b"incr %s 1\r\n" % key,
                    b"touch %s 1\r\n" % key):
            got = c.exchange(req)
            assert got.startswith(b"CLIENT_ERROR") and got.count(b"\r\n") == 1, f"{req[:40]!r}... -> {got!r}"
    rnums = [v for k, v in _stat_lines(romad.raw(b"stat rnum\r\n"))]
    assert rnums == [b"0"] * 10, f"a rejected key must not create a record: rnum {rnums}"


def test_non_ascii_key_is_accepted(romad_any):
    k = "café".encode()
    assert romad_any.raw(b"set %s 0 0 1\r\nx\r\n" % k) == b"STORED\r\n"
    assert romad_any.raw(b"get %s\r\n" % k) == b"VALUE %s 0 1\r\nx\r\nEND\r\n" % k


def test_value_size_limit(romad_any):
    s = romad_any
    big = os.urandom(1048576)
    with s.connect(timeout=20) as c:
        assert c.exchange(b"set max 0 0 1048576\r\n" + big + b"\r\n", timeout=20) == b"STORED\r\n"
        got = c.exchange(b"set over 0 0 1048577\r\n" + big + b"x\r\n", timeout=20)
        assert got.startswith(b"CLIENT_ERROR") and got.count(b"\r\n") == 1, got
        c.send(b"get over\r\n")
        assert c.read_value_reply() == b"END\r\n", "an over-limit value must not be stored"
        c.send(b"get max\r\n")
        assert c.read_value_reply(timeout=20) == b"VALUE max 0 1048576\r\n" + big + b"\r\nEND\r\n"


def test_append_cannot_grow_a_value_beyond_the_limit(romad):
    """The limit is on values, so append/prepend may not build one above 1 MiB (memcached:
    SERVER_ERROR out of memory storing object)."""
    s = romad
    big = b"v" * 1048576
    with s.connect(timeout=20) as c:
        assert c.exchange(b"set max 0 0 1048576\r\n" + big + b"\r\n", timeout=20) == b"STORED\r\n"
        for cmd in (b"append", b"prepend"):
            got = c.exchange(cmd + b" max 0 0 1\r\nx\r\n", timeout=20)
            assert got == b"NOT_STORED\r\n" or got.startswith((b"CLIENT_ERROR", b"SERVER_ERROR")), (
                f"{cmd.decode()} beyond the value limit: {got!r}")
        c.send(b"get max\r\n")
        assert c.read_value_reply(timeout=20) == b"VALUE max 0 1048576\r\n" + big + b"\r\nEND\r\n"


def test_commands_after_quit_are_not_executed(romad):
    got = romad.raw(b"set a 0 0 1\r\n1\r\nquit\r\nset b 0 0 1\r\n2\r\n", expect_close=True)
    assert got == b"STORED\r\n"
    assert romad.raw(b"get a b\r\n") == b"VALUE a 0 1\r\n1\r\nEND\r\n"


def test_unknown_commands(romad):
    assert romad.raw(b"foobar\r\n") == UNKNOWN_FOOBAR
    assert romad.raw(b"sett k 0 0 1\r\n") == (
        b"\r\nERROR: 'sett' is not roma command.\r\nDid you mean this?\r\n\tset\r\n")
    assert romad.raw(b"\r\n\r\n\n") == b""


def test_info_commands(romad):
    s = romad
    assert s.raw(b"whoami\r\n") == b"ROMA\r\n"
    assert s.raw(b"nodelist\r\n") == b"127.0.0.1_%d\r\n" % s.port
    assert s.raw(b"hashlist\r\n") == b"roma\r\n"
    # defhash is a relayed command in ROMA (def_command_with_relay): the reply is the
    # Ruby-inspect hash of every node's answer, own entry first.
    assert s.raw(b"defhash\r\n") == b'{"127.0.0.1_%d"=>"roma"}\r\n' % s.port
    assert s.raw(b"defhash roma\r\n") == b'{"127.0.0.1_%d"=>"STORED"}\r\n' % s.port
    got = s.raw(b"defhash nohash\r\n")
    assert got == b"CLIENT_ERROR nohash does not find.\r\n", got


def test_case_insensitive_command_names(romad):
    assert romad.raw(b"SET K 0 0 1\r\nv\r\n") == b"STORED\r\n"
    assert romad.raw(b"GET K\r\n") == b"VALUE K 0 1\r\nv\r\nEND\r\n"
    assert romad.raw(b"Gets K\r\n") == b"VALUE K 0 1 0\r\nv\r\nEND\r\n"
    assert romad.raw(b"get k\r\n") == b"END\r\n", "keys are case-sensitive"
    assert romad.raw(b"VERSION\r\n") == VERSION_REPLY


# ---------------------------------------------------------------------------------------------
# set_expt / get_expt (R3.9, R3.12) and expiry (R2.3, R2.4)
# ---------------------------------------------------------------------------------------------
def test_get_expt_and_set_expt(romad_any):
    s = romad_any
    assert s.raw(b"get_expt nokey\r\n") == b"END\r\n"
    assert s.raw(b"get_expt nokey unix\r\n") == b"END\r\n"
    assert s.raw(b"set e 0 0 1\r\nx\r\n") == b"STORED\r\n"
    assert s.raw(b"get_expt e unix\r\n") == b"2147483647\r\nEND\r\n"
    assert s.raw(b"get_expt e\r\n") == b"2038-01-19 03:14:07 +0000\r\nEND\r\n"  # server runs with TZ=UTC
    assert s.raw(b"get_expt e bogus\r\n") == b"CLIENT_ERROR Wrong format of arguments.\r\n"
    t0 = int(time.time())
    assert s.raw(b"set_expt e 100\r\n") == b"STORED\r\n"
    v = int(s.raw(b"get_expt e unix\r\n").split(b"\r\n")[0])
    assert t0 + 100 <= v <= int(time.time()) + 100
    absolute = int(time.time()) + 5000000   # > 30 days: absolute UNIX time (R2.4)
    assert s.raw(b"set_expt e %d\r\n" % absolute) == b"STORED\r\n"
    assert s.raw(b"get_expt e unix\r\n") == b"%d\r\nEND\r\n" % absolute
    assert s.raw(b"get_expt e\r\n") == (time.strftime("%Y-%m-%d %H:%M:%S +0000", time.gmtime(absolute))
                                        .encode() + b"\r\nEND\r\n")
    assert s.raw(b"get e\r\n") == b"VALUE e 0 1\r\nx\r\nEND\r\n"
    # a tombstone still has a record: expt 0 (R3.12)
    assert s.raw(b"delete e\r\n") == b"DELETED\r\n"
    assert s.raw(b"get_expt e unix\r\n") == b"0\r\nEND\r\n"
    assert s.raw(b"set_expt e 100\r\n") == b"NOT_STORED\r\n"


def test_get_expt_uses_server_local_zone(romad_factory):
    if not os.path.exists("/usr/share/zoneinfo/Asia/Tokyo"):
        pytest.skip("no tzdata")
    s = romad_factory("tc", env={"TZ": "Asia/Tokyo"})
    assert s.raw(b"set e 0 0 1\r\nx\r\n") == b"STORED\r\n"
    assert s.raw(b"get_expt e\r\n") == b"2038-01-19 12:14:07 +0900\r\nEND\r\n"


def test_expiry_relative_absolute_negative(romad_any):
    s = romad_any
    assert s.raw(b"set short 0 1 1\r\nx\r\n") == b"STORED\r\n"
    assert s.raw(b"set neg 0 -1 1\r\nx\r\n") == b"STORED\r\n"
    assert s.raw(b"set past 0 %d 1\r\nx\r\n" % (int(time.time()) - 3600)) == b"STORED\r\n"
    assert s.raw(b"set fut 0 %d 1\r\nx\r\n" % (int(time.time()) + 3600)) == b"STORED\r\n"
    assert s.raw(b"get neg\r\n") == b"END\r\n", "negative exptime must expire immediately"
    assert s.raw(b"get past\r\n") == b"END\r\n", "absolute exptime in the past must be expired"
    assert s.raw(b"get fut\r\n") == b"VALUE fut 0 1\r\nx\r\nEND\r\n"
    wait_for(lambda: s.raw(b"get short\r\n") == b"END\r\n", 4.0, "key with exptime 1 to expire")
    # expired keys behave as absent for every command
    assert s.raw(b"incr short 1\r\n") == b"NOT_FOUND\r\n"
    assert s.raw(b"append short 0 0 1\r\ny\r\n") == b"NOT_STORED\r\n"
    assert s.raw(b"add short 0 0 1\r\nz\r\n") == b"STORED\r\n"
    assert s.raw(b"get short\r\n") == b"VALUE short 0 1\r\nz\r\nEND\r\n"


# ---------------------------------------------------------------------------------------------
# stat / stats
# ---------------------------------------------------------------------------------------------
STORAGE_HEADER = [
    (b"stats.run_iterate_storage", b"false"),
    (b"stats.run_storage_clean_up", b"false"),
    (b"storages[roma].storage.storage_path", None),
    (b"storages[roma].storage.st_class", b"TCStorage"),
    (b"storages[roma].storage.divnum", b"10"),
    (b"storages[roma].storage.option", b""),
    (b"storages[roma].storage.each_vn_dump_sleep", b"0.001"),
    (b"storages[roma].storage.each_vn_dump_sleep_count", b"100"),
    (b"storages[roma].storage.each_vn_dump_files", b"nil"),
    (b"storages[roma].storage.each_clean_up_sleep", b"0.01"),
    (b"storages[roma].storage.cleanup_regexp", b""),
    (b"storages[roma].storage.logic_clock_expire", b"300"),
    (b"storages[roma].storage.safecopy_stats", ALL_NORMAL),
]


def _stat_lines(reply: bytes):
    assert reply.endswith(b"END\r\n"), reply[-200:]
    body = reply[: -len(b"END\r\n")]
    assert body == b"" or body.endswith(b"\r\n")
    out = []
    for line in body.split(b"\r\n")[:-1]:
        k, sep, v = line.partition(b" ")
        assert sep == b" " and k, f"stat line not '<key> <value>': {line!r}"
        out.append((k, v))
    return out


def _keys_by_division(keys):
    n = [0] * 10
    for k in keys:
        n[division_of_key(k)] += 1
    return n


@pytest.mark.parametrize("cmd", [b"stat storage\r\n", b"stats storage\r\n"])
def test_stat_storage_exact_format(romad, cmd):
    s = romad
    keys = [b"key%03d" % i for i in range(40)]
    assert s.raw(b"".join(b"set %s 0 0 1\r\nv\r\n" % k for k in keys)) == b"STORED\r\n" * 40
    lines = _stat_lines(s.raw(cmd))
    header = lines[:len(STORAGE_HEADER)]
    assert [k for k, _ in header] == [k for k, _ in STORAGE_HEADER]
    for (k, v), (ek, ev) in zip(header, STORAGE_HEADER):
        if ev is not None:
            assert v == ev, f"{k!r}: got {v!r}, expected {ev!r}"
    sp = dict(header)[b"storages[roma].storage.storage_path"].decode()
    assert os.path.isabs(sp) and os.path.realpath(sp) == os.path.realpath(s.data_dir), sp
    per_div = lines[len(STORAGE_HEADER):]
    assert len(per_div) == 30, per_div
    expected_rnum = _keys_by_division(keys)
    for i in range(10):
        (pk, pv), (rk, rv), (fk, fv) = per_div[3 * i: 3 * i + 3]
        assert pk == b"storages[roma].storage[%d].path" % i
        assert rk == b"storages[roma].storage[%d].rnum" % i
        assert fk == b"storages[roma].storage[%d].fsiz" % i
        assert os.path.realpath(pv.decode()) == os.path.realpath(s.data_dir / f"{i}.tc")
        assert os.path.isabs(pv.decode())
        assert int(rv) == expected_rnum[i], f"division {i}: rnum {rv!r}, expected {expected_rnum[i]}"
        # fsiz is TokyoCabinet's tchdbfsiz (ROMA's `fsiz`); the file on disk may be larger while open
        assert 0 < int(fv) <= os.path.getsize(s.data_dir / f"{i}.tc"), f"division {i} fsiz {fv!r}"


def test_stat_safecopy_exact(romad_any):
    assert romad_any.raw(b"stat safecopy\r\n") == (
        b"storages[roma].storage.safecopy_stats " + ALL_NORMAL + b"\r\nEND\r\n")


def test_stats_full(romad):
    s = romad
    reply = s.raw(b"stats\r\n")
    lines = _stat_lines(reply)
    assert reply.startswith(b"version 1.3.0\r\n"), reply[:100]
    d = dict(lines)
    assert d.get(b"stats.name") == b"ROMA"
    assert d.get(b"stats.port") == str(s.port).encode()
    assert d.get(b"stats.address") == b"127.0.0.1"
    assert d.get(b"storages[roma].storage.st_class") == b"TCStorage"
    assert d.get(b"storages[roma].storage.divnum") == b"10"
    for i in range(10):
        assert b"storages[roma].storage[%d].path" % i in d
    # the storage section of `stats` equals `stat storage` minus the counters that may have moved
    storage_only = [kv for kv in lines if kv[0].startswith(b"storages[")]
    filtered = [kv for kv in _stat_lines(s.raw(b"stat storage\r\n")) if kv[0].startswith(b"storages[")]
    assert [k for k, _ in storage_only] == [k for k, _ in filtered]


def test_stats_regexp_filter(romad):
    lines = _stat_lines(romad.raw(b"stats st_class\r\n"))
    assert lines == [(b"storages[roma].storage.st_class", b"TCStorage")]
    assert romad.raw(b"stat zz_no_such_stat_zz\r\n") == b"END\r\n"
    for k, _ in _stat_lines(romad.raw(b"stat storage\r\n")):
        assert re.search(rb"storage", k), k


def test_status_log_records_safecopy_transitions(romad):
    """R7.9: status.log.1 gets '<ts> <division> <state>' lines for every transition."""
    s = romad
    assert s.raw(b"set_storage_status 2 safecopy roma\r\n") == b"PUSHED\r\n"
    wait_for(lambda: b":safecopy_flushed" in s.raw(b"stat safecopy\r\n"), 5, "safecopy_flushed")
    assert (s.data_dir / "2.cache.tc").exists(), "R7.2: the cache DB 2.cache.tc must exist during safecopy"
    assert s.raw(b"set_storage_status 2 normal roma\r\n") == b"PUSHED\r\n"
    wait_for(lambda: s.raw(b"stat safecopy\r\n").count(b":normal") == 10, 5, "back to normal")
    wait_for(lambda: not (s.data_dir / "2.cache.tc").exists(), 5, "2.cache.tc removed after normal")
    log = (s.data_dir / "status.log.1").read_text()
    states = [ln.split()[1:] for ln in log.splitlines() if ln.strip()]
    assert states == [["2", "safecopy_flushing"], ["2", "safecopy_flushed"], ["2", "cachecleaning"],
                      ["2", "normal"]], log
    for ln in log.splitlines():
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+ \d+ \w+$", ln), ln
