"""A cluster split by a network partition (issue #12 item 7), in network namespaces this test
creates and removes: one namespace per node and one for the test's client, joined by veth pairs
on a bridge in a hub namespace (10.213.0.0/24; nothing touches the machine's own network).

Three nodes, rn = 2. Node 3's link is cut. Documented behaviour (docs/cluster.md): like ROMA, a
node that cannot reach the others makes them leave its table and the others make it leave theirs
(there is no quorum); each side keeps serving what it holds. Checked on the side the clients still
reach (nodes 1 and 2): node 3 leaves within the detection window, every key acknowledged before
the split stays readable through both nodes, writes keep being acknowledged, and every one of them
is readable afterwards; the routing tables of nodes 1 and 2 agree. After the link is back, node 3
stays out of their table (it rejoins with `romad -j`).
"""
from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest

from romatest import ROMAD_BIN, wait_for

MKROUTE = os.environ.get("MKROUTE_BIN") or os.path.join(os.path.dirname(ROMAD_BIN), "mkroute")
NET = "10.213.0"
CLONE_NEWNET = 0x40000000


def sh(*args: str) -> None:
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"{' '.join(args)}: {r.stderr}"


class Netns:
    """The namespaces, bridge and veth pairs of one test; removed in `close`."""

    def __init__(self, nodes: int):
        self.tag = uuid.uuid4().hex[:6]
        self.hub = f"rtp{self.tag}hub"
        self.names = [f"rtp{self.tag}n{i + 1}" for i in range(nodes)] + [f"rtp{self.tag}cli"]
        self.made: list[str] = []
        sh("ip", "netns", "add", self.hub)
        self.made.append(self.hub)
        sh("ip", "netns", "exec", self.hub, "ip", "link", "add", "br0", "type", "bridge")
        sh("ip", "netns", "exec", self.hub, "ip", "link", "set", "br0", "up")
        for i, ns in enumerate(self.names):
            sh("ip", "netns", "add", ns)
            self.made.append(ns)
            host_end, ns_end = f"h{i}{self.tag}", f"n{i}{self.tag}"
            sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end)
            sh("ip", "link", "set", host_end, "netns", self.hub)
            sh("ip", "link", "set", ns_end, "netns", ns)
            sh("ip", "netns", "exec", self.hub, "ip", "link", "set", host_end, "master", "br0")
            sh("ip", "netns", "exec", self.hub, "ip", "link", "set", host_end, "up")
            addr = f"{NET}.{i + 1 if ns != self.names[-1] else 100}"
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{addr}/24", "dev", ns_end)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", ns_end, "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")

    def cut(self, i: int, up: bool = False) -> None:
        sh("ip", "netns", "exec", self.hub, "ip", "link", "set", f"h{i}{self.tag}", "up" if up else "down")

    def close(self) -> None:
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


_libc = ctypes.CDLL(None, use_errno=True)


def connect_in(ns: str, host: str, port: int, timeout: float = 5.0) -> socket.socket:
    """A TCP connection made from inside namespace `ns` (setns applies to the calling thread
    only, so it is done in a thread of its own; the socket stays in that namespace)."""
    out: dict = {}

    def run():
        try:
            fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            out["s"] = socket.create_connection((host, port), timeout=timeout)
        except Exception as e:  # noqa: BLE001 - handed to the caller
            out["e"] = e
    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "e" in out:
        raise out["e"]
    return out["s"]


def ask(ns: str, host: str, port: int, data: bytes, end: bytes = b"\r\n", timeout: float = 5.0) -> bytes:
    s = connect_in(ns, host, port, timeout)
    try:
        s.sendall(data)
        buf = b""
        while not buf.endswith(end):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf
    finally:
        s.close()


def test_partition_the_side_that_keeps_serving_loses_nothing(tmp_path):
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.fail("this test makes network namespaces: it needs root and iproute2 (make deps installs iproute2)")
    net = Netns(3)
    procs: list[subprocess.Popen] = []
    try:
        port = 10001
        nids = [f"{NET}.{i + 1}_{port}" for i in range(3)]
        rt = tmp_path / "rt"
        rt.mkdir()
        sh(MKROUTE, "-r", "2", "--out", str(rt), *nids)
        for i in range(3):
            log = open(tmp_path / f"n{i + 1}.log", "wb")
            procs.append(subprocess.Popen(["ip", "netns", "exec", net.names[i], ROMAD_BIN, f"{NET}.{i + 1}", "-p", str(port),
                                           "--storage", "tc", "--storage-path", str(tmp_path / "data"),
                                           "--rttable-path", str(rt), "--peer-timeout", "1"],
                                          stdout=log, stderr=subprocess.STDOUT))
        cli = net.names[-1]

        def q(i: int, data: bytes, end: bytes = b"\r\n") -> bytes:
            return ask(cli, f"{NET}.{i}", port, data, end)

        wait_for(lambda: all(q(i, b"get probe\r\n") == b"END\r\n" for i in (1, 2, 3)), 30.0, "the cluster to serve")
        acked = {}
        for n in range(300):
            k, v = b"pk%d" % n, b"v%04d" % n
            assert q(1 + n % 3, b"set %s 0 0 5\r\n%s\r\n" % (k, v)) == b"STORED\r\n"
            acked[k] = v
        net.cut(2)  # node 3 (index 2) loses its link
        t0 = time.monotonic()
        n = 300
        # writes go on through nodes 1 and 2 while they find out
        while time.monotonic() - t0 < 12:
            k, v = b"pk%d" % n, b"v%04d" % n
            r = q(1 + n % 2, b"set %s 0 0 5\r\n%s\r\n" % (k, v))
            if r == b"STORED\r\n":
                acked[k] = v
            else:
                assert r.startswith(b"SERVER_ERROR"), r  # forwarded to node 3 before it left
            n += 1
            nl1 = q(1, b"nodelist\r\n")
            if nids[2].encode() not in nl1 and nids[2].encode() not in q(2, b"nodelist\r\n") and time.monotonic() - t0 > 6:
                break
        took_out = time.monotonic() - t0
        assert nids[2].encode() not in q(1, b"nodelist\r\n") and nids[2].encode() not in q(2, b"nodelist\r\n")
        assert took_out < 12
        for i in range(200):  # and after, every write is acknowledged
            k, v = b"after%d" % i, b"a%04d" % i
            assert q(1 + i % 2, b"set %s 0 0 5\r\n%s\r\n" % (k, v)) == b"STORED\r\n"
            acked[k] = v
        for k, v in acked.items():
            want = b"VALUE %s 0 5\r\n%s\r\nEND\r\n" % (k, v)
            for i in (1, 2):
                assert q(i, b"get %s\r\n" % k, b"END\r\n") == want, (i, k)
        assert q(1, b"mklhash 0\r\n") == q(2, b"mklhash 0\r\n")
        net.cut(2, up=True)
        time.sleep(2)
        assert nids[2].encode() not in q(1, b"nodelist\r\n"), "a node that left does not come back by itself"
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        net.close()
