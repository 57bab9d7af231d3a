"""Shared helpers for the SwiftROMA black-box integration tests.

Everything here talks to a real ``romad`` process over 127.0.0.1 only.
No fixed sleeps: every wait is a poll loop with a deadline; socket
timeouts are only a backstop.
"""
from __future__ import annotations

import errno
import hashlib
import os
import re
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterable, List, Optional

REPO = Path(__file__).resolve().parents[2]
ROMAD_BIN = os.environ.get("ROMAD_BIN") or str(REPO / ".build" / "debug" / "romad")
HOST = "127.0.0.1"
VERSION_REPLY = b"VERSION ROMA-1.3.0\r\n"
EXPT_FOREVER = 0x7FFFFFFF
DEFAULT_TIMEOUT = 5.0


# --------------------------------------------------------------------------
# polling
# --------------------------------------------------------------------------
def run_with_stderr_on_a_terminal(argv: List[str], timeout: float = 60) -> tuple:
    """Runs `argv` with its stderr on a pseudo-terminal and its stdout on a pipe (stdin empty);
    returns the exit status, stdout and everything written to the terminal."""
    import pty
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE, stderr=slave,
                             stdin=subprocess.DEVNULL, text=True)
        os.close(slave)
        slave = -1
        terminal = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:          # EIO: every writer of the terminal has closed it
                break
            if not chunk:
                break
            terminal += chunk
        out = p.stdout.read()
        rc = p.wait(timeout)
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    return rc, out, terminal.decode(errors="replace")


def wait_for(pred: Callable[[], object], timeout: float, what: str, interval: float = 0.02):
    """Poll ``pred`` until it returns a truthy value or ``timeout`` expires."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - keep polling, report the last error
            last_exc = e
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what}"
                + (f" (last error: {last_exc!r})" if last_exc else "")
            )
        time.sleep(interval)


def proc_field(pid: int, name: str, prefix: str, index: int) -> int:
    """The integer at whitespace-separated position ``index`` of the line of ``/proc/<pid>/<name>``
    that starts with ``prefix`` (``("status", "VmRSS:", 1)``, ``("limits", "Max open files", 3)``)."""
    with open(f"/proc/{pid}/{name}") as f:
        for line in f:
            if line.startswith(prefix):
                return int(line.split()[index])
    raise AssertionError(f"no {prefix!r} line in /proc/{pid}/{name}")


def pids_with_in_cmdline(marker: str) -> List[int]:
    """PIDs of the processes (not this one) whose command line contains ``marker``: for those a
    test did not start as its child (a daemon, processes a foreign test suite starts)."""
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        pids.append(int(d))
            except OSError:
                pass
    return pids


def start_daemon(cfg: Path, port: int, whoami: bytes = b"ROMA") -> None:
    """`romad 127.0.0.1 -p <port> -d --config <cfg>`: returns once the detached daemon serves.
    Its stdio is its log file, not the test's pipes; the caller stops it by the config's path
    (`pids_with_in_cmdline`)."""
    r = subprocess.run([ROMAD_BIN, "127.0.0.1", "-p", str(port), "-d", "--config", str(cfg)],
                       capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: raw(port, b"whoami\r\n") == whoami + b"\r\n", 20, "the daemon to serve")


def free_port(host: str = HOST) -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


# --------------------------------------------------------------------------
# raw connections
# --------------------------------------------------------------------------
class PeerClosed(AssertionError):
    pass


class Conn:
    """A raw TCP connection with an internal receive buffer.

    All reads are "read until X" with a deadline; the socket timeout is only
    there so that a silent server cannot hang the test.
    """

    def __init__(self, port: int, host: str = HOST, timeout: float = DEFAULT_TIMEOUT):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    # -- plumbing -----------------------------------------------------------
    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float, context: str) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timeout waiting for {context}; received so far: {self.buf!r}")
        self.sock.settimeout(min(remaining, self.timeout))
        try:
            chunk = self.sock.recv(1 << 16)
        except socket.timeout:
            return
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            raise PeerClosed(f"connection closed by server while waiting for {context}; "
                             f"received so far: {self.buf!r}")
        self.buf += chunk

    def _take(self, n: int) -> bytes:
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    # -- reads ---------------------------------------------------------------
    def read_until(self, term: bytes, timeout: Optional[float] = None) -> bytes:
        """Return everything up to and including the first ``term``."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            i = self.buf.find(term)
            if i >= 0:
                return self._take(i + len(term))
            self._fill(deadline, repr(term))

    def read_line(self, timeout: Optional[float] = None) -> bytes:
        return self.read_until(b"\r\n", timeout)

    def read_exact(self, n: int, timeout: Optional[float] = None) -> bytes:
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            self._fill(deadline, f"{n} bytes")
        return self._take(n)

    def read_until_close(self, timeout: Optional[float] = None) -> bytes:
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while True:
                self._fill(deadline, "connection close")
        except PeerClosed:
            pass
        return self._take(len(self.buf))

    def read_value_reply(self, timeout: Optional[float] = None) -> bytes:
        """Read a complete get/gets reply (VALUE blocks then END, or an error line)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        out = b""
        while True:
            line = self.read_until(b"\r\n", max(0.01, deadline - time.monotonic()))
            out += line
            if line.startswith(b"VALUE "):
                n = int(line.split()[3])
                out += self.read_exact(n + 2, max(0.01, deadline - time.monotonic()))
                continue
            return out

    def exchange(self, data: bytes, timeout: Optional[float] = None) -> bytes:
        """Send ``data`` followed by a ``version`` sentinel; return every byte the
        server sent before the sentinel's reply.

        This proves both what was replied and that nothing else was (no stray
        bytes, no desync), without relying on timeouts.
        """
        expected_versions = count_version_commands(data) + 1
        self.send(data + b"version\r\n")
        deadline = time.monotonic() + (timeout or self.timeout)
        while not (self.buf.endswith(VERSION_REPLY)
                   and self.buf.count(VERSION_REPLY) >= expected_versions):
            self._fill(deadline, "the 'version' sentinel reply")
        out = self._take(len(self.buf))
        return out[: -len(VERSION_REPLY)]

    def assert_in_sync(self) -> None:
        got = self.exchange(b"")
        assert got == b"", f"stray bytes before sentinel: {got!r}"

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


_VERSION_LINE = re.compile(rb"(?im)^version\r?$")


def count_version_commands(data: bytes) -> int:
    return len(_VERSION_LINE.findall(data))


def raw(port: int, data: bytes, expect_close: bool = False, until: Optional[bytes] = None,
        nbytes: Optional[int] = None, timeout: float = DEFAULT_TIMEOUT, host: str = HOST) -> bytes:
    """One request on a NEW connection.

    * default: ``data`` + version sentinel, returns the bytes before the sentinel reply
    * ``expect_close``: returns all bytes until the server closes the connection
    * ``until``: returns bytes up to and including the terminator
    * ``nbytes``: returns exactly that many bytes
    """
    with Conn(port, host=host, timeout=timeout) as c:
        if expect_close:
            c.send(data)
            return c.read_until_close(timeout)
        if until is not None:
            c.send(data)
            return c.read_until(until, timeout)
        if nbytes is not None:
            c.send(data)
            return c.read_exact(nbytes, timeout)
        return c.exchange(data, timeout)


# --------------------------------------------------------------------------
# ROMA data model helpers (spec R1.4, R1.6, R2.1)
# --------------------------------------------------------------------------
def digest32(key: bytes) -> int:
    return int.from_bytes(hashlib.sha1(key).digest(), "big") & 0xFFFFFFFF


def vnode_of(key: bytes) -> int:
    return digest32(key) & 0xFF800000


def division_of_vnode(vn: int, divnum: int = 10) -> int:
    return int(hashlib.sha1(str(vn).encode()).hexdigest(), 16) % divnum


def division_of_key(key: bytes, divnum: int = 10) -> int:
    return division_of_vnode(vnode_of(key), divnum)


def decode_record(rec: bytes):
    assert len(rec) >= 16, f"record shorter than the 16-byte ROMA header: {rec!r}"
    vn, phys, logical, expt = struct.unpack(">IIII", rec[:16])
    return vn, phys, logical, expt, rec[16:]


def encode_record(vn: int, phys: int, logical: int, expt: int, value: bytes) -> bytes:
    return struct.pack(">IIII", vn, phys, logical, expt) + value


# --------------------------------------------------------------------------
# tchmgr
# --------------------------------------------------------------------------
def tchmgr_list(path: Path) -> dict:
    """All records of a TC hash DB as {key_bytes: value_bytes} (via ``tchmgr list -pv -px``)."""
    r = subprocess.run(["tchmgr", "list", "-pv", "-px", str(path)],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, f"tchmgr list {path} failed: {r.stderr!r}"
    out = {}
    for line in r.stdout.decode("ascii").splitlines():
        if not line:
            continue
        k, _, v = line.partition("\t")
        out[bytes.fromhex(k)] = bytes.fromhex(v)
    return out


def tchmgr_get(path: Path, key: bytes) -> Optional[bytes]:
    r = subprocess.run(["tchmgr", "get", "-sx", "-px", str(path), key.hex()],
                       capture_output=True, timeout=30)
    if r.returncode != 0:
        return None
    return bytes.fromhex(r.stdout.decode("ascii"))


def tchmgr_put(path: Path, key: bytes, value: bytes) -> None:
    r = subprocess.run(["tchmgr", "put", "-sx", str(path), key.hex(), value.hex()],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, f"tchmgr put failed: {r.stderr!r}"


# --------------------------------------------------------------------------
# the server process
# --------------------------------------------------------------------------
_LIVE: "set[Romad]" = set()


class StartupFailed(AssertionError):
    pass


class Romad:
    """One romad process on 127.0.0.1.  Cleaned up strictly by PID."""

    def __init__(self, workdir: Path, engine: str = "tc", port: Optional[int] = None,
                 storage_path: Optional[Path] = None, extra_args: Iterable[str] = (),
                 address: str = HOST, env: Optional[dict] = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.engine = engine
        self.fixed_port = port is not None
        self.port = port or free_port()
        self.address = address
        self.storage_path = Path(storage_path or (self.workdir / "data")).resolve()
        self.extra_args = list(extra_args)
        self.env = env
        self.proc: Optional[subprocess.Popen] = None
        self.returncode: Optional[int] = None
        self.expect_clean_exit = True
        self._logs: List[Path] = []
        self._nstart = 0

    # -- paths ----------------------------------------------------------------
    @property
    def host(self) -> str:
        """Where to connect: the address romad was given (it binds to it), 127.0.0.1 by default."""
        return self.address

    @property
    def node_id(self) -> str:
        return f"{self.address}_{self.port}"

    @property
    def node_dir(self) -> Path:
        return self.storage_path / self.node_id

    @property
    def data_dir(self) -> Path:
        return self.node_dir / "roma"

    @property
    def lock_path(self) -> Path:
        return self.data_dir / "lock"

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    @property
    def log_path(self) -> Path:
        return self._logs[-1]

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except (OSError, IndexError):
            return ""

    def all_logs(self) -> str:
        parts = []
        for p in self._logs:
            try:
                parts.append(f"----- {p.name} -----\n" + p.read_text(errors="replace"))
            except OSError:
                pass
        return "\n".join(parts)

    # -- lifecycle ------------------------------------------------------------
    def argv(self) -> List[str]:
        return [ROMAD_BIN, self.address, "-p", str(self.port),
                "--storage", self.engine, "--storage-path", str(self.storage_path),
                *self.extra_args]

    def spawn(self) -> subprocess.Popen:
        """Start the process without waiting for readiness."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._nstart += 1
        log = self.workdir / f"romad-{self.port}-{self._nstart}.log"
        self._logs.append(log)
        env = dict(os.environ)
        env["TZ"] = "UTC"  # get_expt renders local time; pin it
        if self.env:
            env.update(self.env)
        with open(log, "wb") as fh:
            self.proc = subprocess.Popen(self.argv(), stdout=fh, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=str(self.workdir), env=env)
        self.returncode = None
        _LIVE.add(self)
        return self.proc

    def start(self, timeout: float = 20.0) -> "Romad":
        """Start and wait until ``version`` answers.  A restart keeps the port (the data
        directory is named after it); only a very first start may move to another free port
        when it lost a race for the one picked."""
        may_move = not self.fixed_port and self._nstart == 0
        for attempt in range(3):
            self.spawn()
            try:
                self.wait_ready(timeout)
                return self
            except StartupFailed:
                log = self.log_text().lower()
                port_clash = "address already in use" in log or "eaddrinuse" in log
                if not (may_move and port_clash) or attempt == 2:
                    raise
                self.port = free_port()  # lost a race for the port: retry elsewhere
        raise AssertionError("unreachable")

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                _LIVE.discard(self)
                raise StartupFailed(f"romad exited with {rc} during start-up:\n{self.log_text()}")
            try:
                with Conn(self.port, host=self.host, timeout=1.0) as c:
                    c.send(b"version\r\n")
                    line = c.read_line(timeout=1.0)
                    if line == VERSION_REPLY:
                        return
                    last = line
            except (OSError, AssertionError) as e:
                last = e
            time.sleep(0.02)
        raise StartupFailed(f"romad not ready after {timeout}s (last: {last!r}):\n{self.log_text()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout: float) -> Optional[int]:
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        _LIVE.discard(self)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.proc.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Send ``sig``; wait up to ``timeout``; kill -9 by PID if it is still there."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            rc = self.wait_exit(timeout)
            if rc is None:
                self.kill9()
                raise AssertionError(f"romad pid {self.proc.pid} did not exit within {timeout}s "
                                     f"after signal {sig}; killed with SIGKILL\n{self.log_text()}")
            return rc
        self.returncode = self.proc.returncode
        _LIVE.discard(self)
        return self.returncode

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        if self.proc is not None:
            self.returncode = self.proc.returncode
        _LIVE.discard(self)

    # -- traffic --------------------------------------------------------------
    def connect(self, timeout: float = DEFAULT_TIMEOUT) -> Conn:
        return Conn(self.port, host=self.host, timeout=timeout)

    def raw(self, data: bytes, expect_close: bool = False, **kw) -> bytes:
        kw.setdefault("host", self.host)
        return raw(self.port, data, expect_close=expect_close, **kw)

    def client(self, **kw):
        from pymemcache.client.base import Client
        kw.setdefault("connect_timeout", DEFAULT_TIMEOUT)
        kw.setdefault("timeout", DEFAULT_TIMEOUT)
        kw.setdefault("default_noreply", False)
        return Client((self.host, self.port), **kw)

    def set(self, key: bytes, value: bytes, exptime: int = 0) -> bytes:
        return self.raw(b"set %s 0 %d %d\r\n%s\r\n" % (key, exptime, len(value), value))

    def get(self, key: bytes) -> Optional[bytes]:
        with self.connect() as c:
            c.send(b"get " + key + b"\r\n")
            return parse_single_get(c.read_value_reply())

    def assert_healthy(self, key: Optional[bytes] = None) -> None:
        """The process is alive and a NEW connection can set and get."""
        assert self.alive(), f"romad died (rc={self.proc.poll()}):\n{self.log_text()}"
        key = key or b"health_%d" % time.monotonic_ns()
        value = b"ok-%d" % time.monotonic_ns()
        assert self.set(key, value) == b"STORED\r\n"
        assert self.get(key) == value

    def __repr__(self):
        return f"<Romad {self.engine} port={self.port} pid={self.pid}>"


def parse_single_get(reply: bytes) -> Optional[bytes]:
    if reply == b"END\r\n":
        return None
    m = re.match(rb"VALUE (\S+) (\d+) (\d+)\r\n", reply)
    assert m, f"unexpected get reply: {reply!r}"
    n = int(m.group(3))
    body = reply[m.end():]
    assert body[n:] == b"\r\nEND\r\n", f"malformed get reply: {reply!r}"
    return body[:n]


def kill_all_live() -> None:
    """Session safety net: SIGKILL any romad this test run started and still runs (by PID)."""
    for s in list(_LIVE):
        s.kill9()


def is_error_reply(b: bytes) -> bool:
    return b.startswith(b"ERROR") or b.startswith(b"CLIENT_ERROR")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as e:
        return e.errno == errno.EPERM
    return True
