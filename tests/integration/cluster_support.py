"""Helpers for the 3-node cluster integration tests (test_cluster.py).

A :class:`Cluster` is three ``romad`` processes on 127.0.0.1, 127.0.0.2 and 127.0.0.3 (three
"hosts" for ROMA, so both replicas of a vnode are on different hosts), rn = 2, with route files
made by our ``mkroute`` (spec R4.2/R4.4) in a shared rttable directory.

* started: route files written, every process answers ``version``, and then every node serves
  data commands (R3.7 start-up gating is over: ``get <probe>`` answers ``END``) -- polled, no
  fixed sleeps;
* stopped strictly by PID: SIGCONT (in case a test SIGSTOPped it), SIGTERM, SIGKILL after 10 s.

MKROUTE_BIN selects mkroute (default: next to ROMAD_BIN).
"""
from __future__ import annotations

from contextlib import contextmanager

import hashlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from romatest import ROMAD_BIN, Romad, StartupFailed, digest32, free_port, vnode_of

MKROUTE_BIN = os.environ.get("MKROUTE_BIN") or str(Path(ROMAD_BIN).resolve().parent / "mkroute")
ADDRESSES = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
RN = 2
DGST_BITS = 32
DIV_BITS = 9
VNODE_SHIFT = DGST_BITS - DIV_BITS
N_VNODES = 1 << DIV_BITS
EXPT_FOREVER = 0x7FFFFFFF
PROBE_KEY = b"__cluster_start_probe__"
STARTUP_TIMEOUT = 30.0


# ----------------------------------------------------------------------------------------------
# reply parsing
# ----------------------------------------------------------------------------------------------
_VALUE = re.compile(rb"VALUE (\S+) (\d+) (\d+)(?: (\d+))?\r\n")


def parse_values(reply: bytes) -> List[Tuple[bytes, int, bytes, Optional[int]]]:
    """A complete get/gets reply -> [(key, flags, data, cas-or-None), ...]; must end with END."""
    out = []
    pos = 0
    while True:
        if reply[pos:] == b"END\r\n":
            return out
        m = _VALUE.match(reply, pos)
        assert m, f"malformed get/gets reply at byte {pos}: {reply!r}"
        n = int(m.group(3))
        data = reply[m.end():m.end() + n]
        assert len(data) == n and reply[m.end() + n:m.end() + n + 2] == b"\r\n", \
            f"malformed data block in {reply!r}"
        cas = int(m.group(4)) if m.group(4) is not None else None
        out.append((m.group(1), int(m.group(2)), data, cas))
        pos = m.end() + n + 2


def value_block(key: bytes, data: bytes, cas: Optional[int] = None) -> bytes:
    if cas is None:
        return b"VALUE %s 0 %d\r\n%s\r\n" % (key, len(data), data)
    return b"VALUE %s 0 %d %d\r\n%s\r\n" % (key, len(data), cas, data)


def get_reply(key: bytes, data: Optional[bytes]) -> bytes:
    """The exact reply of a single-key ``get``."""
    return b"END\r\n" if data is None else value_block(key, data) + b"END\r\n"


def gets_reply(key: bytes, data: Optional[bytes], cas: int) -> bytes:
    return b"END\r\n" if data is None else value_block(key, data, cas) + b"END\r\n"


def parse_stats(reply: bytes) -> Dict[str, str]:
    assert reply.endswith(b"END\r\n"), f"stat reply does not end with END: {reply!r}"
    out = {}
    for line in reply[:-len(b"END\r\n")].split(b"\r\n")[:-1]:
        name, sep, value = line.partition(b" ")
        assert sep, f"stat line without a value: {line!r} in {reply!r}"
        out[name.decode()] = value.decode(errors="replace")
    return out


def stats(node: Romad, regexp: str) -> Dict[str, str]:
    return parse_stats(node.raw(b"stat %s\r\n" % regexp.encode()))


def stat_int(node: Romad, name: str) -> int:
    """The integer value of one ``stats.*`` / ``routing.*`` item (exact name, anchored regexp)."""
    d = stats(node, "^" + re.escape(name) + "$")
    assert name in d, f"{node.node_id}: `stat {name}` has no line {name!r}: {d!r}"
    assert re.fullmatch(r"\d+", d[name]), f"{node.node_id}: {name} = {d[name]!r} is not an integer"
    return int(d[name])


def key_info_reply(key: bytes, nids: Sequence[str]) -> bytes:
    """Exact ``get_key_info`` reply (R4.8; recording peer-commands.md #46/#165)."""
    d = digest32(key)
    vn = vnode_of(key)
    return (b"d = %d 0x%x\r\nvn = %d 0x%x\r\nnodes = %s\r\nEND\r\n"
            % (d, d, vn, vn, ruby_inspect_list(nids).encode()))


def ruby_inspect_list(items: Iterable[str]) -> str:
    return "[" + ", ".join('"%s"' % x for x in items) + "]"


# ----------------------------------------------------------------------------------------------
# routing table
# ----------------------------------------------------------------------------------------------
class Table:
    """The routing table as given by ``routingdump json`` (R4.8)."""

    def __init__(self, raw_reply: bytes):
        assert raw_reply.endswith(b"\r\nEND\r\n"), f"routingdump json: bad terminator {raw_reply[-40:]!r}"
        body = raw_reply[:-len(b"\r\nEND\r\n")]
        assert b"\r\n" not in body, "routingdump json: the JSON must be one line"
        self.raw = raw_reply
        meta, nodes, v_idx = json.loads(body)
        self.meta = meta
        self.nodes: List[str] = nodes
        self.v_idx: Dict[int, List[str]] = {int(k): v for k, v in v_idx.items()}

    def nodes_for(self, key: bytes) -> List[str]:
        return self.v_idx[vnode_of(key)]

    def merkle_root(self) -> str:
        """``mklhash 0`` computed from the table (R4.7)."""
        level = [hashlib.sha1(ruby_inspect_list(self.v_idx[i << VNODE_SHIFT]).encode()).hexdigest()
                 for i in range(N_VNODES)]
        while len(level) > 1:
            level = [hashlib.sha1(f"{level[i]}:{level[i + 1]}".encode()).hexdigest()
                     for i in range(0, len(level), 2)]
        return level[0]


def parse_routingdump_bin(reply: bytes):
    """``routingdump bin`` -> (dgst_bits, div_bits, rn, nodes, [(clk, [nid...]) per vnode])."""
    m = re.match(rb"(\d+)\r\n", reply)
    assert m, f"routingdump bin: no length line: {reply[:40]!r}"
    n = int(m.group(1))
    payload = reply[m.end():m.end() + n]
    assert len(payload) == n, f"routingdump bin: {len(payload)} payload bytes, header says {n}"
    assert reply[m.end() + n:] == b"\r\nEND\r\n", f"routingdump bin: bad trailer {reply[m.end() + n:]!r}"
    assert payload[:2] == b"RT", f"routingdump bin: magic {payload[:2]!r}"
    version, dgst, div, rn, nnodes = struct.unpack(">HBBBH", payload[2:9])
    assert version == 1, f"routingdump bin: version {version}"
    pos = 9
    nodes = []
    for _ in range(nnodes):
        (ln,) = struct.unpack(">H", payload[pos:pos + 2])
        nodes.append(payload[pos + 2:pos + 2 + ln].decode())
        pos += 2 + ln
    vnodes = []
    for _ in range(1 << div):
        clk, cnt = struct.unpack(">Ib", payload[pos:pos + 5])
        pos += 5
        idx = struct.unpack(">%dH" % cnt, payload[pos:pos + 2 * cnt])
        pos += 2 * cnt
        vnodes.append((clk, [nodes[i] for i in idx]))
    assert pos == len(payload), f"routingdump bin: {len(payload) - pos} trailing payload bytes"
    return dgst, div, rn, nodes, vnodes


# ----------------------------------------------------------------------------------------------
# the cluster
# ----------------------------------------------------------------------------------------------
class Cluster:
    def __init__(self, base: Path, extra_args: Sequence[str] = (), addresses: Sequence[str] = ADDRESSES,
                 rn: int = RN, env: Optional[dict] = None, engine: str = "tc"):
        self.env = env
        self.engine = engine
        self.base = Path(base)
        self.extra_args = list(extra_args)
        self.addresses = list(addresses)
        self.rn = rn
        self.rttable = self.base / "routing"
        self.storage = self.base / "data"
        self.nodes: List[Romad] = []
        self.mkroute_result: Optional[subprocess.CompletedProcess] = None
        self._table: Optional[Table] = None
        self.exit_codes: Dict[str, Optional[int]] = {}

    # -- lookup -------------------------------------------------------------------------------
    @property
    def nids(self) -> List[str]:
        return [n.node_id for n in self.nodes]

    def node(self, nid: str) -> Romad:
        for n in self.nodes:
            if n.node_id == nid:
                return n
        raise KeyError(nid)

    def table(self, refresh: bool = False) -> Table:
        if self._table is None or refresh:
            self._table = Table(self.nodes[0].raw(b"routingdump json\r\n"))
        return self._table

    def roles(self, key: bytes) -> Tuple[Romad, Romad, Romad]:
        """(primary, secondary, outsider) of ``key``."""
        nids = self.table().nodes_for(key)
        assert len(nids) == 2, f"{key!r}: node list {nids} is not 2 long"
        outsider = [n for n in self.nodes if n.node_id not in nids]
        assert len(outsider) == 1
        return self.node(nids[0]), self.node(nids[1]), outsider[0]

    def find_keys(self, prefix: str, count: int,
                  pred: Callable[[List[str]], bool] = lambda nids: True) -> List[bytes]:
        """``count`` keys ``<prefix><n>`` whose node list satisfies ``pred``."""
        out = []
        i = 0
        while len(out) < count:
            k = b"%s%d" % (prefix.encode(), i)
            if pred(self.table().nodes_for(k)):
                out.append(k)
            i += 1
            assert i < 100000, f"no keys found for {prefix}"
        return out

    # -- lifecycle ----------------------------------------------------------------------------
    def _make_nodes(self) -> None:
        self.nodes = []
        for i, addr in enumerate(self.addresses):
            port = free_port(addr)
            n = Romad(self.base / f"node{i + 1}", engine=self.engine, port=port, storage_path=self.storage,
                      address=addr, env=self.env,
                      extra_args=["--rttable-path", str(self.rttable.resolve()), *self.extra_args])
            self.nodes.append(n)

    def _mkroute(self) -> None:
        self.rttable.mkdir(parents=True, exist_ok=True)
        for p in self.rttable.iterdir():
            p.unlink()
        assert os.path.isfile(MKROUTE_BIN) and os.access(MKROUTE_BIN, os.X_OK), \
            f"mkroute binary not found at {MKROUTE_BIN}: build it or set MKROUTE_BIN"
        r = subprocess.run([MKROUTE_BIN, "-r", str(self.rn), *self.nids], cwd=str(self.rttable),
                           capture_output=True, timeout=60)
        self.mkroute_result = r
        assert r.returncode == 0, f"mkroute failed ({r.returncode}): {r.stdout!r} {r.stderr!r}"
        for nid in self.nids:
            assert (self.rttable / f"{nid}.route").is_file(), f"mkroute wrote no {nid}.route: {r.stdout!r}"

    def prepare(self) -> "Cluster":
        """Pick ports and write the route files; start nothing (for tests that start nodes one by one)."""
        self._make_nodes()
        self._mkroute()
        return self

    def start(self, timeout: float = STARTUP_TIMEOUT) -> "Cluster":
        for attempt in range(3):
            self.prepare()
            try:
                for n in self.nodes:
                    n.spawn()
                for n in self.nodes:
                    n.wait_ready(timeout)
                self.wait_serving(timeout)
                return self
            except StartupFailed:
                logs = " ".join(n.log_text().lower() for n in self.nodes)
                clash = "address already in use" in logs or "eaddrinuse" in logs
                self.stop(check=False)
                if not clash or attempt == 2:
                    raise
                shutil.rmtree(self.storage, ignore_errors=True)
        raise AssertionError("unreachable")

    def wait_serving(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """R3.7: data commands answer on every node (the whoami round is over)."""
        deadline = time.monotonic() + timeout
        for n in self.nodes:
            last = None
            while True:
                try:
                    last = n.raw(b"get %s\r\n" % PROBE_KEY, timeout=3.0)
                    if last == b"END\r\n":
                        break
                except (OSError, AssertionError) as e:
                    last = e
                if not n.alive():
                    raise StartupFailed(f"{n.node_id} died during start-up:\n{n.log_text()[-5000:]}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"{n.node_id} does not serve data commands {timeout}s after "
                                         f"start (R3.7 gating); last `get` reply {last!r}\n"
                                         f"{n.log_text()[-5000:]}")
                time.sleep(0.1)

    def stop(self, check: bool = True, timeout: float = 10.0) -> List[str]:
        """SIGCONT + SIGTERM every node by PID, wait, SIGKILL leftovers. Returns problems (exit
        status != 0 after SIGTERM, SIGKILL needed) when ``check``."""
        problems = []
        running = [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]
        for n in running:
            try:
                os.kill(n.pid, signal.SIGCONT)
                os.kill(n.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        for n in self.nodes:
            if n.proc is None:
                continue
            rc = n.wait_exit(max(0.1, deadline - time.monotonic()))
            if rc is None:
                n.kill9()
                problems.append(f"{n.node_id} (pid {n.pid}) did not exit within {timeout}s after "
                                f"SIGTERM; killed with SIGKILL")
            elif rc != 0 and n in running:
                problems.append(f"{n.node_id} (pid {n.pid}) exited with status {rc} after SIGTERM")
            self.exit_codes[n.node_id] = n.returncode
        return problems if check else []

    def logs(self, tail: int = 20000) -> str:
        return "\n".join(f"===== log of {n.node_id} (pid {n.pid}) =====\n{n.all_logs()[-tail:]}"
                         for n in self.nodes)

    def cleanup(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


def start_cluster(base: Path, extra_args: Sequence[str] = ()) -> Cluster:
    c = Cluster(base, extra_args)
    try:
        c.start()
    except BaseException:
        c.stop(check=False)
        print(c.logs())
        raise
    return c


@contextmanager
def two_node_cluster(base: Path, extra_args: Sequence[str] = ()) -> Iterator[Cluster]:
    """A started cluster of two nodes on 127.0.0.1 and 127.0.0.2: the body must leave both
    stopping cleanly; afterwards they are stopped by PID, their logs printed (pytest shows them
    for failures) and their directories removed, whatever happened."""
    c = Cluster(base, extra_args, addresses=("127.0.0.1", "127.0.0.2"))
    c.start()
    try:
        yield c
        assert not c.stop(check=True), "a node did not stop cleanly"
    finally:
        c.stop(check=False)
        print(c.logs())
        c.cleanup()


def finish_cluster(c: Cluster) -> List[str]:
    """Teardown: stop by PID, print the logs (pytest shows them for failures), remove the dirs."""
    problems = c.stop(check=True)
    print(c.logs())
    c.cleanup()
    return problems


# ----------------------------------------------------------------------------------------------
# small traffic helpers
# ----------------------------------------------------------------------------------------------
def set_cmd(key: bytes, value: bytes, exptime: int = 0, cmd: bytes = b"set") -> bytes:
    return b"%s %s 0 %d %d\r\n%s\r\n" % (cmd, key, exptime, len(value), value)


def timed(fn: Callable[[], bytes]) -> Tuple[float, object]:
    t = time.monotonic()
    try:
        r = fn()
    except Exception as e:  # noqa: BLE001 - reported by the caller
        r = e
    return time.monotonic() - t, r
