"""Every memcached command through pymemcache (an unmodified memcached client).

A server per engine is shared by the module; each test uses its own key prefix.
"""
from __future__ import annotations

import os
import threading
import uuid

import pytest
from pymemcache.exceptions import MemcacheClientError, MemcacheServerError

from romatest import wait_for


@pytest.fixture
def srv(shared_romad):
    assert shared_romad.alive(), "shared romad died in an earlier test"
    return shared_romad


@pytest.fixture
def mc(srv):
    c = srv.client()
    yield c
    c.close()


@pytest.fixture
def p():
    """unique key prefix"""
    return "t" + uuid.uuid4().hex[:10] + "_"


def test_version(mc):
    assert mc.version() == b"ROMA-1.3.0"


def test_set_get_roundtrip(mc, p):
    assert mc.set(p + "a", b"hello") is True
    assert mc.get(p + "a") == b"hello"
    assert mc.set(p + "s", "text") is True
    assert mc.get(p + "s") == b"text"
    binary = b"\x00\r\n\xff\r\nEND\r\nVALUE x 0 1\r\n" + os.urandom(1000)
    assert mc.set(p + "bin", binary) is True
    assert mc.get(p + "bin") == binary
    assert mc.set(p + "empty", b"") is True
    assert mc.get(p + "empty") == b""
    assert mc.get(p + "missing") is None
    assert mc.get(p + "missing", default=b"dflt") == b"dflt"


def test_get_many_and_set_many(mc, p):
    values = {f"{p}{i}": f"v{i}".encode() for i in range(50)}
    assert mc.set_many(values) == []
    got = mc.get_many(list(values) + [p + "nope1", p + "nope2"])
    assert got == values
    assert mc.get_many([]) == {}


def test_flags_are_not_stored(srv, p):
    class RecordingSerde:
        def __init__(self):
            self.flags = []

        def serialize(self, key, value):
            return value, 77

        def deserialize(self, key, value, flags):
            self.flags.append(flags)
            return value

    serde = RecordingSerde()
    c = srv.client(serde=serde)
    try:
        assert c.set(p + "f", b"x") is True
        assert c.set(p + "g", b"y", flags=12345) is True
        assert c.get(p + "f") == b"x"
        assert c.get_many([p + "f", p + "g"]) == {p + "f": b"x", p + "g": b"y"}
        assert c.gets(p + "g") == (b"y", b"0")
        assert serde.flags == [0, 0, 0, 0]
    finally:
        c.close()


def test_gets_and_cas(mc, p):
    k = p + "c"
    assert mc.gets(k) == (None, None)
    assert mc.cas(k, b"v", 0) is None                 # NOT_FOUND
    assert mc.set(k, b"v0") is True
    assert mc.gets(k) == (b"v0", b"0")                # ROMA logical clock starts at 0
    assert mc.cas(k, b"v1", b"0") is True
    assert mc.gets(k) == (b"v1", b"1")
    assert mc.cas(k, b"stale", 0) is False            # EXISTS
    assert mc.get(k) == b"v1"
    assert mc.set(k, b"v2") is True
    value, cas = mc.gets(k)
    assert (value, cas) == (b"v2", b"2")
    assert mc.cas(k, b"v3", int(cas)) is True
    assert mc.get(k) == b"v3"


def test_gets_many(mc, p):
    mc.set(p + "a", b"1")
    mc.set(p + "b", b"2")
    mc.set(p + "b", b"22")
    assert mc.gets_many([p + "a", p + "b", p + "c"]) == {p + "a": (b"1", b"0"), p + "b": (b"22", b"1")}


def test_add_replace_append_prepend(mc, p):
    k = p + "k"
    assert mc.replace(k, b"x") is False
    assert mc.append(k, b"x") is False
    assert mc.prepend(k, b"x") is False
    assert mc.add(k, b"mid") is True
    assert mc.add(k, b"again") is False
    assert mc.append(k, b"_end") is True
    assert mc.prepend(k, b"start_") is True
    assert mc.get(k) == b"start_mid_end"
    assert mc.replace(k, b"new") is True
    assert mc.get(k) == b"new"
    assert mc.gets(k) == (b"new", b"3")


def test_incr_decr(mc, p):
    k = p + "n"
    assert mc.incr(k, 1) is None
    assert mc.decr(k, 1) is None
    mc.set(k, b"10")
    assert mc.incr(k, 5) == 15
    assert mc.decr(k, 3) == 12
    assert mc.decr(k, 100) == 0
    assert mc.incr(k, 2 ** 64 - 1) == 2 ** 64 - 1
    assert mc.incr(k, 1) == 0
    assert mc.get(k) == b"0"


def test_delete(mc, p):
    k = p + "d"
    mc.set(k, b"x")
    assert mc.delete(k) is True
    assert mc.delete(k) is False
    assert mc.get(k) is None
    mc.set(p + "1", b"1")
    mc.set(p + "2", b"2")
    assert mc.delete_many([p + "1", p + "2", p + "3"]) is True
    assert mc.get_many([p + "1", p + "2"]) == {}


def test_touch(mc, p):
    k = p + "t"
    assert mc.touch(k, 100) is False
    mc.set(k, b"x", expire=1)
    assert mc.touch(k, 1000) is True
    assert mc.get(k) == b"x"


def test_expire(mc, p):
    k = p + "e"
    assert mc.set(k, b"x", expire=1) is True
    assert mc.get(k) == b"x"
    wait_for(lambda: mc.get(k) is None, 4.0, "a 1-second item to expire")
    assert mc.set(k, b"y", expire=-1) is True
    assert mc.get(k) is None


def test_noreply_variants(srv, p):
    c = srv.client(default_noreply=True)
    try:
        k = p + "nr"
        assert c.set(k, b"1") is True
        assert c.add(k, b"dup") is True                # noreply: always True, must not store
        assert c.add(p + "other", b"o") is True
        assert c.replace(k, b"10") is True
        assert c.append(k, b"0") is True
        assert c.prepend(k, b"1") is True
        assert c.cas(k, b"2000", 3, noreply=True) is True
        assert c.incr(k, 5, noreply=True) is None
        assert c.decr(k, 1000, noreply=True) is None
        assert c.set(p + "gone", b"g") is True
        assert c.delete(p + "gone") is True
        # if any of the above had produced a reply, the client would now be out of sync
        assert c.version() == b"ROMA-1.3.0"
        assert c.gets(k) == (b"1005", b"6")
        assert c.touch(k, 1000) is True
        assert c.touch(p + "absent", 1000) is True
        assert c.version() == b"ROMA-1.3.0"
        assert c.get(p + "other") == b"o"
        assert c.get(p + "gone") is None
    finally:
        c.close()


def test_set_many_noreply_pipeline(srv, p):
    c = srv.client(default_noreply=True)
    try:
        values = {f"{p}{i}": os.urandom(100) for i in range(500)}
        assert c.set_many(values) == []
        assert c.version() == b"ROMA-1.3.0"
        assert c.get_many(list(values)) == values
    finally:
        c.close()


def test_oversized_value_is_rejected_and_client_recovers(mc, p):
    big = b"x" * (1024 * 1024 + 1)
    with pytest.raises((MemcacheClientError, MemcacheServerError)):
        mc.set(p + "big", big)
    assert mc.get(p + "big") is None
    ok = b"y" * (1024 * 1024)
    assert mc.set(p + "max", ok) is True
    assert mc.get(p + "max") == ok


def test_quit_and_reconnect(mc, p):
    mc.set(p + "q", b"1")
    mc.quit()
    assert mc.get(p + "q") == b"1"   # pymemcache reconnects


def test_concurrent_clients(srv, p):
    errors = []

    def worker(n):
        c = srv.client()
        try:
            for i in range(200):
                k = f"{p}{n}_{i}"
                v = f"{n}:{i}".encode() * (i % 7 + 1)
                assert c.set(k, v) is True
                assert c.get(k) == v
                if i % 3 == 0:
                    assert c.incr(f"{p}ctr", 1) is not None
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        finally:
            c.close()

    c = srv.client()
    c.set(f"{p}ctr", b"0")
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert c.get(f"{p}ctr") == str(8 * 67).encode()   # incr is atomic
    c.close()


def test_flush_all(romad_any):
    c = romad_any.client()
    try:
        c.set("a", b"1")
        c.set("b", b"2")
        assert c.flush_all() is True
        assert c.get_many(["a", "b"]) == {}
        c.set("a", b"3")
        assert c.flush_all(noreply=True) is True
        assert c.version() == b"ROMA-1.3.0"
        assert c.get("a") is None
        c.set("a", b"4")
        assert c.get("a") == b"4"
    finally:
        c.close()
