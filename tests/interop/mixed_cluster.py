#!/usr/bin/env python3
"""A Ruby ROMA 1.3.0 node and two romad nodes serving one cluster from one routing table.

Not part of `make test`: it needs ROMA's Ruby source, which only the project's fetch tool brings
(see ../../shared/reference/ruby-roma-setup/README.md: prepare-roma.sh, and the one-line change
that makes ROMA listen on its own address instead of 0.0.0.0, so everything stays on loopback).

    ROMA_SRC=/work/roma-ruby ROMAD_BIN=.build/debug/romad python3 tests/interop/mixed_cluster.py

Nodes: 127.0.0.1_10001 (Ruby), 127.0.0.2_10002 and 127.0.0.3_10003 (romad), rn = 2, the table
made by ROMA's own mkroute. Checks, through every node: sets, gets, gets of many keys, add/incr/
delete/cas; every key is readable from both nodes of its vnode (each answers from its own
storage, since it is in the list); stat counters add up (every write replicated once); the
routing fingerprint (mklhash 0) is the same everywhere, and nobody dropped anybody.
Every process started is stopped by PID at the end.
"""
import os, shutil, signal, socket, subprocess, sys, tempfile, time, hashlib

ROMA_SRC = os.environ.get("ROMA_SRC", "/work/roma-ruby")
ROMAD = os.environ.get("ROMAD_BIN", ".build/debug/romad")
CONFIG = os.path.join(os.path.dirname(__file__), "../../../shared/reference/ruby-roma-setup/config.rb")
NODES = [("127.0.0.1", 10001, "ruby"), ("127.0.0.2", 10002, "romad"), ("127.0.0.3", 10003, "romad")]


class Conn:
    def __init__(self, host, port, timeout=15):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.f = self.s.makefile("rb")

    def cmd(self, data, lines=1):
        self.s.sendall(data)
        return b"".join(self.f.readline() for _ in range(lines))

    def get(self, key):
        self.s.sendall(b"get " + key + b"\r\n")
        out = self.f.readline()
        if out.startswith(b"VALUE "):
            out += self.f.readline() + self.f.readline()
        return out

    def until_end(self, data):
        self.s.sendall(data)
        out = b""
        while not out.endswith(b"END\r\n"):
            line = self.f.readline()
            if not line:
                raise AssertionError("connection closed")
            out += line
            if out.startswith((b"SERVER_ERROR", b"CLIENT_ERROR", b"ERROR")):
                break
        return out


def vnode(key: bytes) -> int:
    return int.from_bytes(hashlib.sha1(key).digest()[-4:], "big") & 0xFF800000


def wait(pred, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if pred():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def main():
    run = tempfile.mkdtemp(prefix="mixed-")
    for d in ("logs", "routing", "data", "wb"):
        os.makedirs(os.path.join(run, d))
    cfg = open(CONFIG).read().replace("$RUNDIR", run)
    open(os.path.join(run, "config.rb"), "w").write(cfg)
    nids = [f"{h}_{p}" for h, p, _ in NODES]
    subprocess.run(["ruby", "-I", f"{ROMA_SRC}/lib", f"{ROMA_SRC}/bin/mkroute", "-r", "2", *nids],
                   cwd=os.path.join(run, "routing"), check=True, stdout=subprocess.DEVNULL)
    procs = []
    try:
        for h, p, kind in NODES:
            if kind == "ruby":
                argv = ["ruby", "-I", f"{ROMA_SRC}/lib", f"{ROMA_SRC}/bin/romad", h, "-p", str(p), "--config", f"{run}/config.rb"]
            else:
                argv = [ROMAD, h, "-p", str(p), "--storage", "tc", "--storage-path", f"{run}/sdata",
                        "--rttable-path", f"{run}/routing", "--peer-timeout", "2"]
            procs.append(subprocess.Popen(argv, cwd=run, stdout=open(f"{run}/out_{p}.log", "w"), stderr=subprocess.STDOUT))
        for h, p, _ in NODES:  # Ruby ROMA serves data commands ~10 s after every node answers
            wait(lambda: Conn(h, p, 2).cmd(b"get x\r\n") == b"END\r\n", 60, f"{h}:{p} to serve")
        cs = [Conn(h, p) for h, p, _ in NODES]
        N = 300
        for n in range(N):
            r = cs[n % 3].cmd(b"set mx%d 0 0 4\r\nv%03d\r\n" % (n, n))
            assert r == b"STORED\r\n", (n, r)
        table = {}
        import json
        dump = cs[1].until_end(b"routingdump json\r\n")
        _, _, vidx = json.loads(dump[: dump.rindex(b"\r\nEND")])
        for n in range(N):
            key = b"mx%d" % n
            want = b"VALUE %s 0 4\r\nv%03d\r\nEND\r\n" % (key, n)
            for i, c in enumerate(cs):
                got = c.get(key)
                assert got == want, (key, NODES[i], "through every node", got)
            for nid in vidx[str(vnode(key))]:  # each listed node answers from its own storage
                h, p = nid.rsplit("_", 1)
                got = Conn(h, int(p)).get(key)
                assert got == want, (key, nid, "replica", got)
        for i, c in enumerate(cs):
            got = c.until_end(b"gets mx1 mx2 mx3 mx4 mx5 mx6\r\n")
            assert got.count(b"VALUE ") == 6, (i, got)
        assert cs[0].cmd(b"add mx7 0 0 1\r\nz\r\n") == b"NOT_STORED\r\n"
        assert cs[1].cmd(b"add mx7 0 0 1\r\nz\r\n") == b"NOT_STORED\r\n"
        assert cs[2].cmd(b"set n1 0 0 1\r\n5\r\n") == b"STORED\r\n"
        assert cs[0].cmd(b"incr n1 2\r\n") == b"7\r\n" and cs[1].cmd(b"incr n1 3\r\n") == b"10\r\n"
        assert cs[0].cmd(b"delete mx8\r\n") == b"DELETED\r\n" and cs[2].cmd(b"get mx8\r\n") == b"END\r\n"
        assert cs[1].cmd(b"delete mx9\r\n") == b"DELETED\r\n" and cs[0].cmd(b"get mx9\r\n") == b"END\r\n"
        writes = reds = 0
        for c in cs:
            st = dict(l.split(b" ", 1) for l in c.until_end(b"stat write_count|redundant_count\r\n").split(b"\r\n")[:-2])
            writes += int(st[b"stats.write_count"])
            reds += int(st[b"stats.redundant_count"])
        print(f"writes executed {writes}, replica writes received {reds}")
        hashes = {c.cmd(b"mklhash 0\r\n") for c in cs}
        assert len(hashes) == 1, hashes
        for c in cs:
            assert c.cmd(b"nodelist\r\n") == " ".join(nids).encode() + b"\r\n"
        print("mixed cluster OK: %d keys through 1 Ruby ROMA + 2 romad nodes, each on both replicas, same table everywhere" % N)
    finally:
        for pr in procs:
            pr.kill()
            pr.wait()
        shutil.rmtree(run, ignore_errors=True)


if __name__ == "__main__":
    main()
