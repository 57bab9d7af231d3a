"""Hash names (spec R1.3, R3.17): createhash / mounthash / umounthash / deletehash / defhash and
keys addressed as ``key\\x1Bhash``. ROMA relays these commands to every node and answers with a
Ruby-inspect hash of the results, own entry first; on a single node that is one entry."""
import os


def relay(s, value: str) -> bytes:
    return b'{"127.0.0.1_%d"=>"%s"}\r\n' % (s.port, value.encode())


def test_create_use_unmount_mount_delete(romad):
    s = romad
    assert s.raw(b"createhash foo\r\n") == relay(s, "CREATED")
    assert s.raw(b"createhash foo\r\n") == relay(s, "SERVER_ERROR foo already exists.")
    assert s.raw(b"hashlist\r\n") == b"roma foo\r\n"
    assert os.path.isfile(os.path.join(s.node_dir, "foo", "0.tc"))
    assert s.raw(b"set a\x1bfoo 0 0 1\r\nx\r\n") == b"STORED\r\n"
    assert s.raw(b"get a\x1bfoo\r\n") == b"VALUE a\x1bfoo 0 1\r\nx\r\nEND\r\n"
    assert s.raw(b"get a\r\n") == b"END\r\n"
    # umount keeps the files; mount brings the data back
    assert s.raw(b"umounthash foo\r\n") == relay(s, "UNMOUNTED")
    assert s.raw(b"hashlist\r\n") == b"roma\r\n"
    assert s.raw(b"get a\x1bfoo\r\n") == b"SERVER_ERROR foo does not exists.\r\n"
    assert s.raw(b"umounthash foo\r\n") == b"SERVER_ERROR foo does not find.\r\n"
    assert s.raw(b"mounthash foo\r\n") == relay(s, "MOUNTED")
    assert s.raw(b"mounthash foo\r\n") == b"SERVER_ERROR foo already mounted.\r\n"
    assert s.raw(b"get a\x1bfoo\r\n") == b"VALUE a\x1bfoo 0 1\r\nx\r\nEND\r\n"
    assert s.raw(b"deletehash foo\r\n") == relay(s, "DELETED")
    assert not os.path.exists(os.path.join(s.node_dir, "foo"))
    assert s.raw(b"mounthash foo\r\n") == b"SERVER_ERROR foo does not find.\r\n"


def test_default_hash_cannot_be_unmounted_and_defhash_switches(romad):
    s = romad
    assert s.raw(b"umounthash roma\r\n") == relay(s, "SERVER_ERROR default hash can't unmount.")
    assert s.raw(b"createhash bar\r\n") == relay(s, "CREATED")
    # defhash is per connection: on one connection switch, store, read back
    got = s.raw(b"defhash bar\r\nset k 0 0 1\r\ny\r\nget k\r\ndefhash\r\n")
    assert got == relay(s, "STORED") + b"STORED\r\nVALUE k 0 1\r\ny\r\nEND\r\n" + relay(s, "bar")
    assert s.raw(b"get k\r\n") == b"END\r\n"          # a new connection uses roma again
    assert s.raw(b"get k\x1bbar\r\n") == b"VALUE k\x1bbar 0 1\r\ny\r\nEND\r\n"


def test_hash_admin_usage_and_unsafe_names(romad):
    s = romad
    assert s.raw(b"createhash\r\n") == b"CLIENT_ERROR usage:createhash <name>\r\n"
    assert s.raw(b"deletehash a b\r\n") == b"CLIENT_ERROR usage:deletehash <name>\r\n"
    for bad in (b"../evil", b".hidden", b"a/b"):
        got = s.raw(b"createhash " + bad + b"\r\n")
        assert got.startswith(b"CLIENT_ERROR invalid hash name"), got
    assert not os.path.exists(os.path.join(os.path.dirname(s.node_dir), "evil"))
    assert s.raw(b"version\r\n") == b"VERSION ROMA-1.3.0\r\n"


def test_hashes_survive_restart(romad):
    s = romad
    assert s.raw(b"createhash keep\r\n") == relay(s, "CREATED")
    assert s.raw(b"set z\x1bkeep 0 0 2\r\nzz\r\n") == b"STORED\r\n"
    assert s.stop() == 0
    s.start()
    assert s.raw(b"hashlist\r\n") == b"roma keep\r\n"
    assert s.raw(b"get z\x1bkeep\r\n") == b"VALUE z\x1bkeep 0 2\r\nzz\r\nEND\r\n"
