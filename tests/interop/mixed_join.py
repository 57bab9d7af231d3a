#!/usr/bin/env python3
"""Membership across Ruby ROMA 1.3.0 and romad: the operator's way over, a node at a time.

Not part of `make test` (it needs ROMA's Ruby source; see mixed_cluster.py beside this file).

    ROMA_SRC=/work/roma-ruby ROMAD_BIN=$PWD/.build/release/romad python3 tests/interop/mixed_join.py [romad-joins|ruby-joins|failover|migrate]

(`ROMAD_ARGS` adds arguments to every romad started, e.g. `--copy-parallelism 4`.)

- `romad-joins`: two Ruby ROMA nodes (127.0.0.1_10001, 127.0.0.2_10002, rn = 2, ROMA's own mkroute)
  hold keys; a romad node on 127.0.0.3 joins with `-j 127.0.0.1:10001` while a writer keeps
  writing through the Ruby nodes. Our newcomer pulls its share from Ruby's `spushv` streams.
- `ruby-joins`: two romad nodes hold keys; a Ruby ROMA node joins with `-j`, pulling from our
  streams (it sleeps 1 s per vnode, so this one takes minutes).
- `failover`: `romad-joins`, then Ruby node 1 is killed with SIGKILL while the writer goes on
  through the other two; romad's probes make it leave, `recover` through romad restores two
  copies of every vnode.
- `migrate`: `romad-joins`, then the rest of the way over with the writer still running: Ruby
  node 1 is drained with ROMA's own `release` (its streams into romad and Ruby) and stopped, a
  second romad node joins on 127.0.0.1 through the romad node, Ruby node 2 is released and
  stopped. Two romad nodes are left holding every key.

Checked after the join: the same `mklhash 0` on every node, every vnode has two nodes, the
newcomer is in vnodes, every acknowledged write (before and during the join) is read through
every node and from every node listed for its vnode. Every process is stopped by PID.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from mixed_cluster import CONFIG, ROMA_SRC, ROMAD, Conn, vnode, wait  # noqa: E402

HOSTS = [("127.0.0.1", 10001), ("127.0.0.2", 10002), ("127.0.0.3", 10003)]


def argv_for(kind, h, p, run, join=None):
    if kind == "ruby":
        a = ["ruby", "-I", f"{ROMA_SRC}/lib", f"{ROMA_SRC}/bin/romad", h, "-p", str(p), "--config", f"{run}/config.rb"]
    else:
        a = [ROMAD, h, "-p", str(p), "--storage", "tc", "--storage-path", f"{run}/sdata",
             "--rttable-path", f"{run}/routing", "--peer-timeout", "2"] + os.environ.get("ROMAD_ARGS", "").split()
    if join:
        a += ["-j", join]
    return a


def routing(c):
    dump = c.until_end(b"routingdump json\r\n")
    return json.loads(dump[: dump.rindex(b"\r\nEND")])


class Writer(threading.Thread):
    """Sets through whichever nodes are in `targets`, one every 5 ms; remembers what was STORED."""

    def __init__(self, targets, acked, mode):
        super().__init__()
        self.mode = mode
        self.targets, self.acked, self.errors, self.done = list(targets), acked, [], 0
        # Writes whose primary is a Ruby node still starting (Ruby answers them as unknown
        # commands, and romad, forwarding, says so; Ruby relays the first line of that reply,
        # an empty one), or was just killed and has not left yet.
        self.refused = 0
        self.stop, self.conns = threading.Event(), {}

    def retarget(self, targets):
        self.targets = list(targets)
        n = self.done
        wait(lambda: self.done >= n + 2, 10, "the writer to move on")

    def run(self):
        n = 0
        while not self.stop.is_set():
            hp = self.targets[n % len(self.targets)]
            c = self.conns.get(hp) or self.conns.setdefault(hp, Conn(*hp))
            k, v = b"during%d" % n, b"d%06d" % n
            r = c.cmd(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(v), v))
            if r == b"STORED\r\n":
                self.acked[k] = v
            elif r == b"SERVER_ERROR Message forward failed.\r\n" and self.mode in ("ruby-joins", "failover"):
                self.refused += 1
            else:
                self.errors.append((k, hp, r))
            n += 1
            self.done += 1
            time.sleep(0.005)


def start(procs, kind, hp, run, join=None, serving=True):
    h, p = hp
    procs[hp] = subprocess.Popen(argv_for(kind, h, p, run, join=join), cwd=run,
                                 stdout=open(f"{run}/out_{p}.log", "w"), stderr=subprocess.STDOUT)
    if serving:
        wait_serving(hp)


def wait_serving(hp):
    h, p = hp
    wait(lambda: Conn(h, p, 2).cmd(b"get x\r\n") == b"END\r\n", 120, f"{h}:{p} to serve")


def join(procs, kind, hp, seed, run):
    t0 = time.time()
    start(procs, kind, hp, run, join=f"{seed[0]}:{seed[1]}")
    c = Conn(*hp, 30)
    wait(lambda: b"run_join false" in c.until_end(b"stat run_join\r\n"), 1800, f"the join of {hp} to end")
    return time.time() - t0


def nid(hp):
    return f"{hp[0]}_{hp[1]}"


def check(live, acked, what):
    """One table everywhere, two nodes per vnode, every acknowledged key on every node and replica."""
    cs = [Conn(*hp, 30) for hp in live]
    wait(lambda: len({c.cmd(b"mklhash 0\r\n") for c in cs}) == 1, 60, "one routing table everywhere")
    _, _, vidx = routing(cs[0])
    nids = sorted(nid(hp) for hp in live)
    per = {n: sum(n in v for v in vidx.values()) for n in nids}
    prim = {n: sum(v[0] == n for v in vidx.values()) for n in nids}
    assert all(len(v) == 2 and len(set(v)) == 2 for v in vidx.values()), "every vnode on two nodes"
    assert all(per.values()), ("every node holds vnodes", per)
    conns = {nid(hp): c for hp, c in zip(live, cs)}
    keys = dict(acked)
    for k, v in keys.items():
        want = b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (k, len(v), v)
        for c in cs:
            got = c.get(k)
            assert got == want, (k, "through a node", got)
        for n in vidx[str(vnode(k))]:
            got = conns[n].get(k)
            assert got == want, (k, n, "replica", got)
    # A released node stays in `nodes` until it is stopped and found gone (romad's probes send
    # `leave` to every node within seconds).
    want = " ".join(nids).encode() + b"\r\n"
    wait(lambda: all(c.cmd(b"nodelist\r\n") == want for c in cs), 60, f"every nodelist to be {want!r}")
    print(f"{what}: vnodes held {per}; primary {prim}; {len(keys)} acknowledged keys read through every node "
          f"and on every listed replica, none lost")


def release(procs, hp, live, writer):
    """ROMA's release on a node, then stop it once no vnode lists it."""
    writer.retarget([x for x in live if x != hp])
    t0 = time.time()
    r = Conn(*hp).cmd(b"release\r\n")
    assert r == b"STARTED\r\n", r
    others = [Conn(*x, 30) for x in live if x != hp]

    def drained():
        _, _, vidx = routing(others[0])
        return not any(nid(hp) in v for v in vidx.values())
    wait(drained, 1800, f"{hp} to be released")

    def restreamed():  # romad nodes ask the primaries of vnodes pushed to them to stream them again
        for c in others:
            st = c.until_end(b"stat vnode_restreams\r\n")
            if b"stats.vnode_restreams " in st and b"stats.vnode_restreams 0\r\n" not in st:
                return False
        return True
    wait(restreamed, 1800, "the vnodes pushed by the released node to be streamed again by their primaries")
    took = time.time() - t0
    procs.pop(hp).kill()
    live.remove(hp)
    return took


def main(mode):
    old_kind, new_kind = ("romad", "ruby") if mode == "ruby-joins" else ("ruby", "romad")
    run = tempfile.mkdtemp(prefix="mixedjoin-")
    for d in ("logs", "routing", "data", "wb"):
        os.makedirs(os.path.join(run, d))
    open(os.path.join(run, "config.rb"), "w").write(open(CONFIG).read().replace("$RUNDIR", run))
    subprocess.run(["ruby", "-I", f"{ROMA_SRC}/lib", f"{ROMA_SRC}/bin/mkroute", "-r", "2", *map(nid, HOSTS[:2])],
                   cwd=os.path.join(run, "routing"), check=True, stdout=subprocess.DEVNULL)
    procs = {}
    writer = None
    try:
        for hp in HOSTS[:2]:  # a node serves once every node of its table answers
            start(procs, old_kind, hp, run, serving=False)
        for hp in HOSTS[:2]:
            wait_serving(hp)
        live = list(HOSTS[:2])
        acked = {}
        for n in range(600):
            k, v = b"pre%d" % n, b"p%05d" % n
            assert Conn(*live[n % 2]).cmd(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(v), v)) == b"STORED\r\n", n
            acked[k] = v
        writer = Writer(live, acked, mode)
        writer.start()
        took = join(procs, new_kind, HOSTS[2], HOSTS[0], run)
        live.append(HOSTS[2])
        print(f"join of a {new_kind} node into a {old_kind} cluster took {took:.1f} s")
        check(live, acked, "after the join")
        if mode == "migrate":
            took = release(procs, HOSTS[0], live, writer)
            print(f"release of Ruby node {nid(HOSTS[0])} took {took:.1f} s")
            check(live, acked, "after the first release")
            fourth = ("127.0.0.1", 10004)
            took = join(procs, "romad", fourth, HOSTS[2], run)
            live.append(fourth)
            writer.retarget(live)
            print(f"join of a second romad node through the first took {took:.1f} s")
            check(live, acked, "after the second join")
            took = release(procs, HOSTS[1], live, writer)
            print(f"release of Ruby node {nid(HOSTS[1])} took {took:.1f} s")
            check(live, acked, "after the second release (romad only)")
        if mode == "failover":
            dead = HOSTS[0]
            writer.retarget([x for x in live if x != dead])
            procs.pop(dead).kill()
            live.remove(dead)
            t0 = time.time()
            cs = [Conn(*hp, 30) for hp in live]

            def left():
                _, _, vidx = routing(cs[-1])
                return not any(nid(dead) in v for v in vidx.values())
            wait(left, 60, f"{nid(dead)} to leave the routing table")
            print(f"Ruby node {nid(dead)} killed with SIGKILL: left the routing table after {time.time() - t0:.1f} s")
            t0 = time.time()
            got = cs[-1].cmd(b"recover\r\n")
            print(f"recover through romad: {got!r}")

            def recovered():
                _, _, vidx = routing(cs[-1])
                return all(len(v) == 2 for v in vidx.values()) and all(
                    b"run_recover false" in c.until_end(b"stat run_recover\r\n") for c in cs)
            wait(recovered, 1800, "recover to give every vnode two nodes again")
            print(f"recover took {time.time() - t0:.1f} s")
            check(live, acked, "after the failover and recover")
        writer.stop.set()
        writer.join()
        assert not writer.errors, writer.errors[:5]
        print(f"writer: {writer.done} sets, {len(writer.errors)} errors, {writer.refused} refused "
              f"(SERVER_ERROR Message forward failed.: the key's primary was a Ruby node still starting, or killed and not yet gone)")
        check(live, acked, "at the end")
        print(f"mixed {mode} OK")
    finally:
        if writer:
            writer.stop.set()
            writer.join()
        for pr in procs.values():
            pr.kill()
            pr.wait()
        if os.environ.get("KEEP"):
            print("kept", run)
        else:
            shutil.rmtree(run, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "romad-joins")
