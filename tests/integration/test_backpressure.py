"""A client that pipelines requests but never reads its replies must not make the server buffer
replies without bound: romad stops reading from that connection until the client catches up."""
import socket
import time

from romatest import proc_field


def rss_kib(pid: int) -> int:
    return proc_field(pid, "status", "VmRSS:", 1)


def test_unread_replies_do_not_grow_memory(romad):
    s = romad
    value = b"v" * 500_000
    assert s.raw(b"set big 0 0 %d\r\n%s\r\n" % (len(value), value)) == b"STORED\r\n"
    before = rss_kib(s.pid)
    c = socket.create_connection(("127.0.0.1", s.port))
    c.setblocking(False)
    request = b"get big\r\n" * 1000   # each asks for 500 KB: 500 MB of replies per chunk
    sent = 0
    deadline = time.monotonic() + 10
    # Keep sending until the server stops reading (our send buffer fills) or 20000 requests went out.
    while time.monotonic() < deadline and sent < 20000 * 9:
        try:
            sent += c.send(request)
        except BlockingIOError:
            break
    grown_mib = (rss_kib(s.pid) - before) / 1024
    # 20000 unread replies would be 10 GB; a bounded server holds a few replies at most.
    assert grown_mib < 300, f"server RSS grew by {grown_mib:.0f} MiB with unread replies"
    # Reading resumes: the client gets complete replies once it reads.
    c.setblocking(True)
    c.settimeout(10)
    got = b""
    while len(got) < len(value) + 40:
        got += c.recv(1 << 20)
    assert got.startswith(b"VALUE big 0 500000\r\nvvvv")
    c.close()
    # Other clients were never affected.
    assert s.raw(b"version\r\n") == b"VERSION ROMA-1.3.0\r\n"
