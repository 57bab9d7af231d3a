"""Helpers for the cpdb integration tests (test_cpdb*.py).

Everything talks to romad on 127.0.0.1 only; waits are polls with deadlines, never fixed sleeps.
"""
from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

from romatest import REPO, Conn, decode_record, division_of_key, tchmgr_list, wait_for

CPDB_BIN = os.environ.get("CPDB_BIN") or str(REPO / ".build" / "debug" / "cpdb")
STATES = ("normal", "safecopy_flushing", "safecopy_flushed", "cachecleaning")


def run_cpdb(*args, timeout: float = 60, env: Optional[dict] = None) -> subprocess.CompletedProcess:
    """Run cpdb with ``args`` (strings); returns the completed process (text output)."""
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run([CPDB_BIN, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=e,
                          stdin=subprocess.DEVNULL)


def spawn_cpdb(*args) -> subprocess.Popen:
    return subprocess.Popen([CPDB_BIN, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL)


def describe(r: subprocess.CompletedProcess) -> str:
    return f"rc={r.returncode}\n--- stdout ---\n{r.stdout}\n--- stderr ---\n{r.stderr}"


# ----------------------------------------------------------------------------------------------
# node state
# ----------------------------------------------------------------------------------------------
def safecopy_states(server, hash_name: str = "roma", conn: Optional[Conn] = None) -> List[str]:
    """``storages[h].storage.safecopy_stats`` as a list of state names."""
    req = b"stat safecopy_stats\r\n"
    if conn is None:
        with server.connect() as c:
            c.send(req)
            reply = c.read_until(b"END\r\n")
    else:
        conn.send(req)
        reply = conn.read_until(b"END\r\n")
    key = f"storages[{hash_name}].storage.safecopy_stats ".encode()
    for line in reply.split(b"\r\n"):
        if line.startswith(key):
            return re.findall(r":(\w+)", line[len(key):].decode())
    raise AssertionError(f"no {key!r} in {reply!r}")


def all_normal(server, hash_name: str = "roma") -> bool:
    return set(safecopy_states(server, hash_name)) == {"normal"}


def assert_all_normal(server, hash_name: str = "roma") -> None:
    st = safecopy_states(server, hash_name)
    assert set(st) == {"normal"}, f"divisions not normal: {st}"


def set_storage_status(server, which, status: str, hash_name: Optional[str] = None) -> bytes:
    cmd = f"set_storage_status {which} {status}" + (f" {hash_name}" if hash_name else "")
    with server.connect() as c:
        c.send(cmd.encode() + b"\r\n")
        return c.read_line()


def wait_division(server, division: int, state: str, timeout: float = 20, hash_name: str = "roma") -> None:
    wait_for(lambda: safecopy_states(server, hash_name)[division] == state, timeout,
             f"storages[{hash_name}][{division}] == {state}", interval=0.005)


def status_log_lines(server, hash_name: str = "roma") -> List[str]:
    p = server.node_dir / hash_name / "status.log.1"
    return p.read_text().splitlines() if p.exists() else []


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------
def keys_for_division(division: int, count: int, prefix: str, divnum: int = 10) -> List[bytes]:
    """``count`` keys (``<prefix><n>``) that live in ``division``."""
    out, n = [], 0
    while len(out) < count:
        k = f"{prefix}{n}".encode()
        if division_of_key(k, divnum) == division:
            out.append(k)
        n += 1
    return out


def load(server, items: Dict[bytes, bytes]) -> None:
    """Pipelined sets; every reply must be STORED."""
    with server.connect() as c:
        keys = list(items)
        for i in range(0, len(keys), 200):
            chunk = keys[i:i + 200]
            c.send(b"".join(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(items[k]), items[k]) for k in chunk))
            for k in chunk:
                assert c.read_line() == b"STORED\r\n", k


def get_many(server, keys: List[bytes]) -> Dict[bytes, Optional[bytes]]:
    out = {}
    with server.connect() as c:
        for k in keys:
            c.send(b"get " + k + b"\r\n")
            reply = c.read_value_reply()
            if reply == b"END\r\n":
                out[k] = None
            else:
                m = re.match(rb"VALUE \S+ \d+ (\d+)\r\n", reply)
                assert m, reply
                n = int(m.group(1))
                out[k] = reply[m.end():m.end() + n]
    return out


def live_records(path: Path) -> Dict[bytes, bytes]:
    """Live (non-tombstone) records of a TC file: {key: value}."""
    out = {}
    for k, rec in tchmgr_list(path).items():
        _vn, _phys, _logical, expt, value = decode_record(rec)
        if expt != 0:
            out[k] = value
    return out


def tchmgr_inform(path: Path) -> Dict[str, str]:
    r = subprocess.run(["tchmgr", "inform", str(path)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"tchmgr inform {path}: {r.stderr}"
    info = {}
    for line in r.stdout.splitlines():
        k, _, v = line.partition(":")
        info[k.strip()] = v.strip()
    assert info.get("database type") == "hash", r.stdout
    return info


def load_manifest(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def manifests_in(directory: Path) -> List[Path]:
    return sorted(Path(directory).glob("snapshot-*.json"))


# ----------------------------------------------------------------------------------------------
# concurrent writers
# ----------------------------------------------------------------------------------------------
class Writer(threading.Thread):
    """Does set / delete / incr at full speed on its own keys and remembers the last
    acknowledged state of each key (bytes value, or None for absent)."""

    def __init__(self, server, wid: int, nkeys: int = 40, seed: int = 0):
        super().__init__(daemon=True)
        self.server = server
        self.keys = [b"w%d_k%d" % (wid, i) for i in range(nkeys)]
        self.counters = [b"w%d_c%d" % (wid, i) for i in range(max(2, nkeys // 8))]
        self.state: Dict[bytes, Optional[bytes]] = {}
        self.errors: List[str] = []
        self.ops = 0
        self.stop = threading.Event()
        self.rng = random.Random(seed * 7919 + wid)
        self.wid = wid

    def run(self):
        try:
            with self.server.connect(timeout=10) as c:
                # counters start at 0
                for k in self.counters:
                    c.send(b"set %s 0 0 1\r\n0\r\n" % k)
                    self._expect(c.read_line(), b"STORED\r\n", k)
                    self.state[k] = b"0"
                n = 0
                while not self.stop.is_set():
                    n += 1
                    r = self.rng.random()
                    if r < 0.6:
                        k = self.rng.choice(self.keys)
                        v = b"v%d-%d-%d" % (self.wid, n, self.rng.randrange(1 << 30))
                        c.send(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(v), v))
                        if self._expect(c.read_line(), b"STORED\r\n", k):
                            self.state[k] = v
                    elif r < 0.8:
                        k = self.rng.choice(self.keys)
                        c.send(b"delete %s\r\n" % k)
                        line = c.read_line()
                        if line in (b"DELETED\r\n", b"NOT_FOUND\r\n"):
                            self.state[k] = None
                        else:
                            self.errors.append(f"delete {k!r}: {line!r}")
                    else:
                        k = self.rng.choice(self.counters)
                        c.send(b"incr %s 1\r\n" % k)
                        line = c.read_line()
                        if re.fullmatch(rb"\d+\r\n", line):
                            got = line[:-2]
                            want = str(int(self.state[k]) + 1).encode()
                            if got != want:
                                self.errors.append(f"incr {k!r}: {got!r}, expected {want!r}")
                            self.state[k] = got
                        else:
                            self.errors.append(f"incr {k!r}: {line!r}")
                    self.ops += 1
        except Exception as e:  # noqa: BLE001
            self.errors.append(f"writer {self.wid} crashed: {e!r}")

    def _expect(self, line: bytes, want: bytes, key: bytes) -> bool:
        if line != want:
            self.errors.append(f"{key!r}: {line!r}")
            return False
        return True


class StateMonitor(threading.Thread):
    """Polls ``safecopy_stats`` and records every (division, state) seen; ``on_state`` is called
    for each observation."""

    def __init__(self, server, hash_name: str = "roma",
                 on_state: Optional[Callable[[int, str], None]] = None):
        super().__init__(daemon=True)
        self.server = server
        self.hash_name = hash_name
        self.on_state = on_state
        self.seen = set()
        self.errors: List[str] = []
        self.stop = threading.Event()

    def run(self):
        try:
            with self.server.connect(timeout=10) as c:
                while not self.stop.is_set():
                    for i, s in enumerate(safecopy_states(self.server, self.hash_name, conn=c)):
                        self.seen.add((i, s))
                        if self.on_state:
                            self.on_state(i, s)
                    time.sleep(0.002)
        except Exception as e:  # noqa: BLE001
            self.errors.append(repr(e))


def interrupt(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
