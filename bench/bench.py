#!/usr/bin/env python3
"""Driver of `make bench` and `make bench-smoke`.

Starts memcached and romad (TokyoCabinet engine, memory engine) on free loopback ports, runs the
same roma-bench loads against each, compares roma-bench with Debian's memcslap, measures RSS per
million records, and measures cpdb under write load against a durable plain copy. Prints one
table per part and (full mode) writes bench/RESULTS.md and bench/results-latest.json.

Every process it starts is stopped and every temporary directory removed on exit, including on
Ctrl-C or SIGTERM. Standard library only.

    bench.py --bin-dir DIR [--smoke] [--results FILE] [--parts matrix,memcslap,memory,snapshot] [--duration S]
    bench.py --from-json bench/results-latest.json      # re-render a saved run

Exit status: 0 when every scenario ran without errors; 1 otherwise (the results are still written).
"""
from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import platform
import random
import re
import shutil
import statistics
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cluster_part  # noqa: E402  (bench/cluster_part.py, found whichever way this file is loaded)
import membership_part  # noqa: E402
REPO = os.path.dirname(HERE)


# ----------------------------------------------------------------------------------------------
# Settings

class Settings:
    """Sizes and durations of one mode (full `make bench` or the few-seconds smoke run)."""

    def __init__(self, smoke: bool):
        self.smoke = smoke
        self.keys = 1_000 if smoke else 100_000
        self.value_size = 100
        self.warmup = 0.0 if smoke else 1.0
        self.duration = 0.5 if smoke else 5.0
        # each load runs this many times against every server (alternating); the best run counts
        self.matrix_repeats = 1 if smoke else 3
        # (mix label, mix, connections, pipeline)
        mixes = [("get 90:10", "90:10"), ("set only", "0:1")]
        if smoke:
            self.shapes = [("get 90:10", "90:10", 4, 4)]
        else:
            self.shapes = [(label, mix, c, p) for label, mix in mixes for c in (4, 50) for p in (1, 16)]
        # memcslap: --execute-number per thread, 4 threads; values 50..5000 bytes (mean 2525)
        self.slap_number = 1_000 if smoke else 50_000
        self.slap_concurrency = 4
        self.slap_value = 2525
        self.slap_tests = ["get"] if smoke else ["get", "set"]
        self.slap_repeats = 1 if smoke else 3
        # memory: records loaded for the RSS measurement
        self.memory_records = 20_000 if smoke else 1_000_000
        # snapshot: records x bytes (full: ~1M x 150 B, about 10 x 20 MB of TokyoCabinet files)
        self.snap_records = 20_000 if smoke else 1_000_000
        self.snap_value = 150
        self.snap_rate = 500 if smoke else 2000
        self.snap_connections = 4
        self.snap_lead = 0.3 if smoke else 1.0
        self.snap_cap = 60 if smoke else 300
        # each copy runs this many times in one writer session, `snap_gap` s apart; the sets issued
        # while a copy ran are pooled over the repeats, and compared with the sets issued in a
        # window of `snap_before_window` s just before each copy (`snap_before_gap` s before it
        # starts): "before it", from the same stretch of time, so that the machine's own drift
        # (other tenants, page reclaim) weighs on both sides alike. The gap varies at random by up
        # to `snap_gap_jitter` s: this VM's own periodic work (DAMON's kdamond samples every 0.5 s
        # and holds a CPU for 1-4 ms, the VM agent wakes every second) must fall on every phase of
        # the windows, not on the same phase run after run, which a fixed period would allow
        self.snap_repeats = 1 if smoke else 20
        self.snap_gap = 0.3 if smoke else 1.5
        self.snap_gap_jitter = 0.0 if smoke else 1.0
        self.snap_before_window = 0.25
        self.snap_before_gap = 0.2
        # cluster (issue #11): 3 nodes rn=2 against one node
        self.cluster_keys = 1_000 if smoke else 100_000
        self.cluster_connections = 4 if smoke else 16
        self.cluster_pipeline = 1
        self.cluster_duration = 0.5 if smoke else 5.0
        self.cluster_repeats = 1 if smoke else 3
        # more concurrent requests (same rows but the entry node's; the first row is cluster_connections)
        self.cluster_sweep = [] if smoke else [64, 256]
        # membership (issue #12): records in the 2-node cluster, writer rate, before-window seconds
        self.member_records = 5_000 if smoke else 1_000_000
        self.member_rate = 200 if smoke else 2000
        self.member_before = 0.5 if smoke else 3.0


# ----------------------------------------------------------------------------------------------
# Processes and clean-up

CHILDREN: list[subprocess.Popen] = []
TEMP_DIRS: list[str] = []


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cleanup() -> None:
    for p in list(CHILDREN):
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 10
    for p in list(CHILDREN):
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    CHILDREN.clear()
    for d in TEMP_DIRS:
        shutil.rmtree(d, ignore_errors=True)
    TEMP_DIRS.clear()


def on_signal(signum, _frame):
    log(f"signal {signum}: stopping")
    cleanup()
    sys.exit(128 + signum)


def spawn(cmd: list[str], **kw) -> subprocess.Popen:
    p = subprocess.Popen(cmd, **kw)
    CHILDREN.append(p)
    return p


def reap(p: subprocess.Popen) -> None:
    if p in CHILDREN:
        CHILDREN.remove(p)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def command(port: int, line: str, timeout: float = 5.0, host: str = "127.0.0.1") -> str:
    """Sends one text-protocol command and returns the reply up to END/VERSION line."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(line.encode() + b"\r\n")
        data = b""
        while not (data.endswith(b"END\r\n") or data.startswith(b"VERSION") and data.endswith(b"\r\n")):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.decode(errors="replace")


class Server:
    """memcached or romad on a free loopback port."""

    def __init__(self, name: str, kind: str, bin_dir: str, workdir: str, engine: str | None = None,
                 address: str = "127.0.0.1"):
        self.name, self.kind, self.engine, self.address = name, kind, engine, address
        self.port = free_port()
        self.workdir = os.path.join(workdir, name)
        os.makedirs(self.workdir, exist_ok=True)
        self.log_path = os.path.join(self.workdir, "server.log")
        if kind == "memcached":
            cmd = ["memcached", "-p", str(self.port), "-l", "127.0.0.1", "-t", "2", "-U", "0", "-m", "1024"]
            if os.geteuid() == 0:
                cmd[1:1] = ["-u", "root"]
        else:
            self.data_dir = os.path.join(self.workdir, "data")
            os.makedirs(self.data_dir, exist_ok=True)
            cmd = [os.path.join(bin_dir, "romad"), address, "-p", str(self.port), "--storage", engine,
                   "--storage-path", self.data_dir, "--log-level", "warning"]
        self.cmd = cmd
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Server":
        self.logf = open(self.log_path, "ab")
        self.proc = spawn(self.cmd, stdout=self.logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")
            try:
                if command(self.port, "version", timeout=1, host=self.address).startswith("VERSION"):
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not answer `version` within 20 s: {self.tail()}")

    start_on_host = start

    def wait_serving(self, timeout: float = 30) -> None:
        """A cluster node serves data commands once every node answered (spec R3.7)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if command(self.port, "get bench-probe", timeout=1, host=self.address) == "END\r\n":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not serve within {timeout} s: {self.tail()}")

    def tail(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    def cpu_seconds(self) -> float | None:
        """user + system CPU seconds of the server process so far (/proc/<pid>/stat)."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                stat = f.read()
        except OSError:
            return None
        fields = stat[stat.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> int | None:
        if not self.proc:
            return None
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        reap(p)
        self.logf.close()
        return p.returncode

    def division_files(self) -> list[str]:
        """romad TC: the main division files <data>/<address>_<port>/<hash>/<i>.tc."""
        pattern = os.path.join(self.data_dir, f"*_{self.port}", "*", "*.tc")
        return sorted((f for f in glob.glob(pattern) if re.fullmatch(r"\d+\.tc", os.path.basename(f))),
                      key=lambda f: (os.path.dirname(f), int(os.path.basename(f).split(".")[0])))


# ----------------------------------------------------------------------------------------------
# roma-bench, memcslap, cpdb

class Runner:
    def __init__(self, bin_dir: str, settings: Settings):
        self.bin_dir = bin_dir
        self.s = settings
        self.bench = os.path.join(bin_dir, "roma-bench")
        self.failures: list[str] = []
        self.runs: list[dict] = []

    def fail(self, what: str) -> None:
        log(f"FAILED: {what}")
        self.failures.append(what)

    def roma_bench(self, label: str, port: int, args: list[str], timeout: float, host: str = "127.0.0.1",
                   expect_clean: bool = True) -> dict | None:
        cmd = [self.bench, "--host", host, "--port", str(port), "--json", "--seed", "1"] + args
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail(f"{label}: roma-bench did not finish within {timeout:.0f} s")
            return None
        return self._bench_result(label, cmd, p.returncode, p.stdout, p.stderr, expect_clean)

    def _bench_result(self, label, cmd, rc, out, err, expect_clean) -> dict | None:
        try:
            r = json.loads(out)
        except ValueError:
            self.fail(f"{label}: roma-bench exit {rc}, no report: {err.strip()[-500:]}")
            return None
        r["label"] = label
        r["exit_status"] = rc
        r["command"] = " ".join(cmd)
        self.runs.append(r)
        if expect_clean and r.get("errors_total", 0) > 0:
            self.fail(f"{label}: {r['errors_total']} errors {r['errors']}")
        if expect_clean and r.get("verify") and (r["verify"]["missing"] or r["verify"]["mismatched"] or r["verify"]["unchecked"]):
            self.fail(f"{label}: verify {r['verify']}")
        return r

    def start_bench(self, port: int, args: list[str], host: str = "127.0.0.1") -> tuple[subprocess.Popen, list[str], str]:
        """Starts roma-bench in the background and returns once it reports that the load runs."""
        cmd = [self.bench, "--host", host, "--port", str(port), "--json", "--seed", "1"] + args
        p = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen = ""
        while True:
            line = p.stderr.readline()  # bounded: roma-bench exits if it cannot connect within 5 s
            seen += line
            if not line or "roma-bench: running" in line:
                break
        return p, cmd, seen

    def finish_bench(self, label: str, p: subprocess.Popen, cmd: list[str], timeout: float, seen: str = "") -> dict | None:
        try:
            out, err = p.communicate(timeout=timeout)
            err = seen + err
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            reap(p)
            self.fail(f"{label}: roma-bench did not finish within {timeout:.0f} s")
            return None
        reap(p)
        return self._bench_result(label, cmd, p.returncode, out, err, True)

    def memcslap(self, label: str, port: int, test: str) -> dict | None:
        n, c = self.s.slap_number, self.s.slap_concurrency
        cmd = ["memcslap", f"--servers=127.0.0.1:{port}", f"--concurrency={c}", f"--execute-number={n}", f"--test={test}"]
        t0 = time.monotonic()
        try:
            p = subprocess.run(["/usr/bin/time", "-f", "time: %e s wall, %U user %S sys"] + cmd,
                               capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            self.fail(f"{label}: memcslap timed out")
            return None
        text = p.stdout + p.stderr
        m = re.search(r"Time to %s\s+(\d+) keys by\s+(\d+) threads:\s+([\d.]+) seconds" % test, text)
        if p.returncode != 0 or not m:
            self.fail(f"{label}: memcslap exit {p.returncode}: {text.strip()[-500:]}")
            return None
        done, threads, sec = int(m.group(1)), int(m.group(2)), float(m.group(3))
        cpu = re.search(r"time: ([\d.]+) s wall, ([\d.]+) user ([\d.]+) sys", text)
        r = {"label": label, "test": test, "threads": threads, "per_thread": n, "reported_keys": done,
             "seconds": sec, "ops_per_sec": threads * n / sec if sec > 0 else 0,
             "client_cpu_s": float(cpu.group(2)) + float(cpu.group(3)) if cpu else None,
             "wall_s": time.monotonic() - t0, "command": " ".join(cmd)}
        if done < threads * n:
            r["note"] = f"memcslap reported {done} successful of {threads * n}"
        return r

    def cpdb(self, port: int, consistent: bool, timeout: float) -> dict:
        """Runs cpdb, noting the wall-clock time at which each of its `waiting for …` lines ended
        (cpdb ends the line when the wait is over): `wait_lags_ms` compares them with status.log."""
        cmd = [os.path.join(self.bin_dir, "cpdb")] + (["--consistent"] if consistent else []) + [str(port)]
        t0 = time.monotonic()
        wait_ends: list[tuple[str, float]] = []
        out: list[str] = []
        with tempfile.TemporaryFile() as err_file:
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err_file)
            killer = threading.Timer(timeout, p.kill)
            killer.start()
            try:
                for raw in p.stdout:
                    line = raw.decode(errors="replace")
                    if line.startswith("waiting for "):
                        wait_ends.append((line.strip(), time.time()))
                    out.append(line)
                rc = p.wait()
            finally:
                timed_out = not killer.is_alive()
                killer.cancel()
            err_file.seek(0)
            err = err_file.read().decode(errors="replace")
        return {"command": " ".join(cmd), "exit_status": None if timed_out else rc,
                "seconds": time.monotonic() - t0, "wait_ends": wait_ends,
                "stdout_tail": "".join(out)[-400:], "stderr_tail": err[-400:]}


def status_log_changes(srv: Server) -> dict[tuple[int, str], list[float]]:
    """Every state change in the node's status.log files: (division, state) → wall-clock times."""
    changes: dict[tuple[int, str], list[float]] = {}
    for path in glob.glob(os.path.join(srv.data_dir, f"*_{srv.port}", "*", "status.log.*")):
        with open(path, errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) != 3 or not parts[1].isdigit():
                    continue
                stamp, _, usec = parts[0].partition(".")
                try:
                    t = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S").timestamp() + int(usec or 0) / 1e6
                except ValueError:
                    continue
                changes.setdefault((int(parts[1]), parts[2]), []).append(t)
    return changes


def wait_lags_ms(wait_ends: list[tuple[str, float]], changes: dict[tuple[int, str], list[float]]) -> list[float]:
    """For each of cpdb's waits, how long after the node's state change (its status.log time) the
    wait ended; a wait on several divisions (--consistent) ends after the last of them."""
    lags = []
    for line, ended in wait_ends:
        m = re.match(r"waiting for storages\[[^\]]*\]\[([^\]]*)\] == (\w+)", line)
        if not m:
            continue
        # "all" (--consistent): every division of the node
        divisions = [int(m.group(1))] if m.group(1).isdigit() else sorted({d for d, _ in changes})
        times = []
        for d in divisions:
            earlier = [t for t in changes.get((d, m.group(2)), []) if t <= ended + 0.001]
            if earlier:
                times.append(max(earlier))
        if times and len(times) == len(divisions):
            lags.append(max(0.0, ended - max(times)) * 1000)
    return lags


# ----------------------------------------------------------------------------------------------
# Parts

def cpu_spent(before: list, after: list) -> float | None:
    """CPU seconds the servers spent between two lists of their `cpu_seconds()` readings (one per
    server); None when a reading is missing."""
    if None in before + after:
        return None
    return sum(b - a for a, b in zip(before, after))


def cpu_us_per_request(cpu_s: float | None, res: dict | None, seconds: float) -> float | None:
    """`cpu_s` CPU seconds spent over one roma-bench run, per request, in µs: the requests counted
    as the run's measured rate over `seconds` (warmup + measured time)."""
    if cpu_s is None or not res or res["ops_per_sec"] <= 0:
        return None
    return cpu_s * 1e6 / (res["ops_per_sec"] * seconds)


def client_threads(pipeline: int) -> int:
    """roma-bench event-loop threads: one per core when every connection has one request in flight
    (wake-up bound: replies are handled in parallel, as memcslap's threads do), one when pipelined
    (CPU bound: the client needs little CPU per request and leaves the other core to the server)."""
    return max(1, min(os.cpu_count() or 1, 4)) if pipeline == 1 else 1


def part_matrix(r: Runner, servers: list[Server]) -> list[dict]:
    s = r.s
    log(f"preloading {s.keys} keys of {s.value_size} B into {', '.join(x.name for x in servers)}")
    for srv in servers:
        r.roma_bench(f"preload {srv.name}", srv.port,
                     ["--preload-only", "--keys", str(s.keys), "--value-size", str(s.value_size),
                      "--connections", "4", "--pipeline", "32"], timeout=600)
    rows = []
    for label, mix, conns, pipe in s.shapes:
        row = {"load": label, "mix": mix, "connections": conns, "pipeline": pipe, "results": {}, "all_runs": {}}
        for rep in range(s.matrix_repeats):
            for srv in servers:
                args = ["--mix", mix, "--connections", str(conns), "--pipeline", str(pipe),
                        "--threads", str(client_threads(pipe)), "--keys", str(s.keys), "--value-size", str(s.value_size),
                        "--duration", str(s.duration), "--warmup", str(s.warmup)]
                cpu0 = srv.cpu_seconds()
                res = r.roma_bench(f"{label} c{conns} p{pipe} {srv.name} #{rep + 1}", srv.port, args,
                                   timeout=s.duration + s.warmup + 60)
                cpu_us = cpu_us_per_request(cpu_spent([cpu0], [srv.cpu_seconds()]), res, s.duration + s.warmup)
                row["all_runs"].setdefault(srv.name, []).append(
                    {"ops_per_sec": res["ops_per_sec"], "p99_us": res["latency_us"]["p99"], "server_cpu_us_per_request": cpu_us}
                    if res else None)
                best = row["results"].get(srv.name)
                if res and (best is None or res["ops_per_sec"] > best["ops_per_sec"]):
                    row["results"][srv.name] = res
                if res:
                    log(f"{label:9} c{conns:<3} p{pipe:<3} {srv.name:13} {res['ops_per_sec']:>10.0f} ops/s  "
                        f"p99 {res['latency_us']['p99']:>8.1f} µs  errors {res['errors_total']}")
        rows.append(row)
    return rows


def part_memcslap(r: Runner, servers: list[Server]) -> list[dict]:
    s = r.s
    rows = []
    for test in s.slap_tests:
        for srv in servers:
            # roma-bench in memcslap's shape: same connections, one request in flight each, as many
            # requests in total, keys preloaded for gets, values of memcslap's mean size.
            mix = "1:0" if test == "get" else "0:1"
            args = ["--mix", mix, "--connections", str(s.slap_concurrency), "--pipeline", "1", "--threads", str(client_threads(1)),
                    "--keys", str(s.slap_number), "--value-size", str(s.slap_value), "--key-prefix", "slap:",
                    "--requests", str(s.slap_concurrency * s.slap_number)]
            slaps, rbs = [], []
            for i in range(s.slap_repeats):  # alternating, best of each (the machine is shared)
                slaps.append(r.memcslap(f"memcslap {test} c{s.slap_concurrency} {srv.name} #{i + 1}", srv.port, test))
                rbs.append(r.roma_bench(f"roma-bench {test} c{s.slap_concurrency} {srv.name} (memcslap shape) #{i + 1}",
                                        srv.port, args + (["--preload"] if test == "get" and i == 0 else []), timeout=600))
            slap = max((x for x in slaps if x), key=lambda x: x["ops_per_sec"], default=None)
            rb = max((x for x in rbs if x), key=lambda x: x["ops_per_sec"], default=None)
            rows.append({"test": test, "server": srv.name, "memcslap": slap, "roma_bench": rb,
                         "memcslap_all": [x["ops_per_sec"] if x else None for x in slaps],
                         "roma_bench_all": [x["ops_per_sec"] if x else None for x in rbs]})
            if slap and rb:
                log(f"{test} c{s.slap_concurrency} {srv.name:13} memcslap {slap['ops_per_sec']:>9.0f} ops/s   "
                    f"roma-bench {rb['ops_per_sec']:>9.0f} ops/s  ({rb['ops_per_sec'] / slap['ops_per_sec']:.2f}x)")
    return rows


def part_memory(r: Runner, bin_dir: str, workdir: str) -> list[dict]:
    s = r.s
    rows = []
    for name, kind, engine in (("memcached", "memcached", None), ("romad-memory", "romad", "memory")):
        srv = Server(f"rss-{name}", kind, bin_dir, workdir, engine).start()
        try:
            time.sleep(0.3)
            before = rss_kib(srv.pid)
            res = r.roma_bench(f"memory load {name}", srv.port,
                               ["--preload-only", "--keys", str(s.memory_records), "--value-size", "100",
                                "--connections", "4", "--pipeline", "64"], timeout=900)
            time.sleep(1.0)
            after = rss_kib(srv.pid)
        finally:
            srv.stop()
        per_million_mib = (after - before) / 1024 * 1_000_000 / s.memory_records
        rows.append({"server": name, "records": s.memory_records, "rss_before_kib": before, "rss_after_kib": after,
                     "mib_per_million": per_million_mib,
                     "bytes_per_record": (after - before) * 1024 / s.memory_records,
                     "load_sets_per_sec": res["preload"]["sets_per_sec"] if res and res.get("preload") else None})
        log(f"RSS {name}: {before} KiB -> {after} KiB after {s.memory_records} records = "
            f"{per_million_mib:.0f} MiB per million ({(after - before) * 1024 / s.memory_records:.0f} B/record)")
    return rows


def durable_copy(files: list[str], dest: str) -> float:
    """`cp` of the division files into `dest`, then fsync of every copy (coreutils `sync FILE...`)."""
    os.makedirs(dest, exist_ok=True)
    t0 = time.monotonic()
    subprocess.run(["cp"] + files + [dest + "/"], check=True)
    copies = [os.path.join(dest, os.path.basename(f)) for f in files]
    subprocess.run(["sync"] + copies + [dest], check=True)
    return time.monotonic() - t0


def remove_snapshot_files(srv: Server) -> None:
    base = os.path.join(srv.data_dir, f"*_{srv.port}", "*")
    for f in glob.glob(os.path.join(base, "*")):
        name = os.path.basename(f)
        if re.fullmatch(r"\d+\.tc\.\d+.*", name) or re.fullmatch(r"snapshot-.*\.json", name):
            os.remove(f)


def safecopy_states(port: int) -> str:
    try:
        reply = command(port, "stat safecopy")
    except OSError as e:
        return f"? ({e})"
    m = re.search(r"safecopy_stats (\[.*\])", reply)
    return m.group(1) if m else reply.strip()[:200]


def part_snapshot(r: Runner, bin_dir: str, workdir: str) -> dict:
    s = r.s
    cpdb_bin = os.path.join(bin_dir, "cpdb")
    if not os.access(cpdb_bin, os.X_OK):
        msg = f"snapshot scenario skipped: cpdb binary not found at {cpdb_bin}"
        log(msg)
        return {"skipped": msg}
    out: dict = {"records": s.snap_records, "value_size": s.snap_value, "write_rate": s.snap_rate,
                 "writer_connections": s.snap_connections, "repeats": s.snap_repeats, "gap_seconds": s.snap_gap,
                 "gap_jitter_seconds": s.snap_gap_jitter,
                 "before_window_seconds": s.snap_before_window, "before_gap_seconds": s.snap_before_gap,
                 "lead_seconds": s.snap_lead, "smoke": s.smoke}
    # cpdb talks to "localhost" like ROMA's cpdb, so the node is localhost_<port>.
    srv = Server("snapshot-romad-tc", "romad", bin_dir, workdir, "tc", address="localhost").start()
    try:
        log(f"snapshot: loading {s.snap_records} records of {s.snap_value} B")
        load = r.roma_bench("snapshot load", srv.port,
                            ["--preload-only", "--keys", str(s.snap_records), "--value-size", str(s.snap_value),
                             "--key-prefix", "snap:", "--connections", "4", "--pipeline", "64"], timeout=1200,
                            host="localhost")
        out["load_sets_per_sec"] = load["preload"]["sets_per_sec"] if load and load.get("preload") else None
        files = srv.division_files()
        sizes = [os.path.getsize(f) for f in files]
        out["division_files"] = len(files)
        out["division_mb"] = [round(x / 1e6, 1) for x in sizes]
        out["total_mb"] = round(sum(sizes) / 1e6, 1)
        log(f"snapshot: {len(files)} division files, {out['total_mb']} MB")

        writer_args = ["--mix", "0:1", "--rate", str(s.snap_rate), "--connections", str(s.snap_connections),
                       "--key-order", "sequential", "--keys", "100000000", "--value-size", str(s.snap_value)]
        prefixes: list[tuple[str, dict | None]] = []

        def session(label: str, prefix: str, action, after=None) -> tuple[list, dict]:
            """One writer session: after a lead time, `action` runs `snap_repeats` times, `snap_gap` s
            apart. Before each run, SIGUSR2 around a window of `snap_before_window` s marks the sets
            issued just before it (latency_us_baseline pools them); SIGUSR1 around each run marks the
            sets issued meanwhile (latency_us_marked). `after(result)` then runs outside both windows
            (checks), before the gap. The writers stop (SIGINT) after the last gap; roma-bench reports
            what it measured."""
            p, cmd, seen = r.start_bench(srv.port, writer_args + ["--key-prefix", prefix, "--duration", str(s.snap_cap)],
                                         host="localhost")
            time.sleep(s.snap_lead)
            results = []
            for _ in range(s.snap_repeats):
                if p.poll() is not None:
                    break
                p.send_signal(signal.SIGUSR2)
                time.sleep(s.snap_before_window)
                if p.poll() is not None:
                    break
                p.send_signal(signal.SIGUSR2)
                time.sleep(s.snap_before_gap)
                p.send_signal(signal.SIGUSR1)
                results.append(action())
                if p.poll() is None:
                    p.send_signal(signal.SIGUSR1)
                if after:
                    after(results[-1])
                time.sleep(s.snap_gap + random.uniform(0.0, s.snap_gap_jitter))
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
            w = r.finish_bench(label, p, cmd, timeout=60, seen=seen)
            prefixes.append((prefix, w))
            return results, summarize_writer(w)

        # 1. control: writers with no copy, the "copy" being a quiet window as long as a copy; its
        # ratio to the windows before shows how much two quiet windows differ on this machine
        quiet, out["control"] = session("writers, no copy (control)", "wb:", lambda: time.sleep(s.snap_before_window))

        copy_dir = os.path.join(srv.workdir, "plain-copy")

        def plain_copy():
            return durable_copy(files, copy_dir)

        # 2. durable plain copy with the same writers running. Each copy (and each snapshot below)
        # is checked and removed after its run, in the gap before the next "before" window, as an
        # operator's retention would: letting 10 runs' files pile up made every copy write into
        # never-used space, which this VM's disk serves far slower (cp + fsync took 0.7 s).
        cps, out["during_cp"] = session("writers during cp+fsync", "wc:", plain_copy,
                                        after=lambda _: shutil.rmtree(copy_dir, ignore_errors=True))
        out["cp_fsync_seconds"] = cps
        out["cp_fsync_median"] = statistics.median(cps)
        log(f"snapshot: cp + fsync of {len(files)} files: {', '.join(f'{x:.2f}' for x in cps)} s")

        # 3. cpdb, both modes, writers running
        out["cpdb"] = {}
        for mode, consistent, prefix in (("default", False, "wd:"), ("consistent", True, "wk:")):
            def one_run(consistent=consistent):
                return r.cpdb(srv.port, consistent, timeout=s.snap_cap)

            def check_run(res, mode=mode):
                res["states_after"] = safecopy_states(srv.port)
                res["verify_exit_status"] = None
                manifests = glob.glob(os.path.join(srv.data_dir, f"*_{srv.port}", "*", "snapshot-*.json"))
                if len(manifests) != 1:
                    r.fail(f"cpdb {mode}: {len(manifests)} manifests after a run")
                for m in manifests:
                    # SCHED_IDLE, like cpdb's own copies: the check must not weigh on the writers
                    v = subprocess.run(["chrt", "--idle", "0", cpdb_bin, "verify", m], capture_output=True,
                                       text=True, timeout=300)
                    res["verify_exit_status"] = v.returncode
                    if v.returncode != 0:
                        r.fail(f"cpdb verify ({mode}) exit {v.returncode}: {(v.stdout + v.stderr)[-300:]}")
                remove_snapshot_files(srv)
                if res["exit_status"] != 0:
                    r.fail(f"cpdb {mode} exit {res['exit_status']}: {(res['stderr_tail'] or res['stdout_tail']).strip()}")
                states = re.findall(r":(\w+)", res["states_after"])
                if not states or any(x != "normal" for x in states):
                    r.fail(f"cpdb {mode}: divisions not back to normal: {res['states_after']}")
            runs, writers = session(f"writers during cpdb {mode}", prefix, one_run, after=check_run)
            res = {"runs": runs, "seconds_each": [x["seconds"] for x in runs],
                   "seconds": statistics.median([x["seconds"] for x in runs]) if runs else None,
                   "exit_status": next((x["exit_status"] for x in runs if x["exit_status"] != 0), 0 if runs else None),
                   "verify_exit_status": next((x["verify_exit_status"] for x in runs if x["verify_exit_status"] != 0),
                                              0 if runs else None),
                   "states_after": runs[-1]["states_after"] if runs else None, "writers": writers}
            # status.log is read once, after the session: each wait against the change it awaited
            changes = status_log_changes(srv)
            for run in runs:
                run["wait_lags_ms"] = wait_lags_ms(run.pop("wait_ends", []), changes)
            lags = sorted(x for run in runs for x in run["wait_lags_ms"])
            res["wait_lag_ms"] = {"waits": len(lags), "median": statistics.median(lags) if lags else None,
                                  "max": lags[-1] if lags else None}
            out["cpdb"][mode] = res
            log(f"snapshot: cpdb {mode}: {', '.join(f'{x:.2f}' for x in res['seconds_each'])} s, write p99 while it ran "
                f"{writers.get('copy_p99_us')} µs vs {writers.get('before_p99_us')} µs just before each run")

        # 5. every acknowledged write is there
        lost_total = 0
        out["verify"] = []
        for prefix, w in prefixes:
            if not w or not w.get("sequential_keys_issued"):
                continue
            n = w["sequential_keys_issued"]
            v = r.roma_bench(f"verify writes {prefix}", srv.port,
                             ["--verify", "--keys", str(n), "--key-prefix", prefix, "--value-size", str(s.snap_value),
                              "--connections", "4", "--pipeline", "32"], timeout=600, host="localhost")
            if v and v.get("verify"):
                lost = v["verify"]["missing"] + v["verify"]["mismatched"] + v["verify"]["unchecked"]
                lost_total += lost
                out["verify"].append({"prefix": prefix, "acknowledged": n, "failed": w["errors_total"], **v["verify"]})
        out["writes_lost"] = lost_total
        out["writes_failed"] = sum(w["errors_total"] for _, w in prefixes if w)
        out["quiet_windows"] = len(quiet)
    finally:
        rc = srv.stop()
        out["romad_exit_status"] = rc
    if rc not in (0, None):
        r.fail(f"snapshot romad exited with {rc} after SIGTERM: {srv.tail()[-500:]}")
    return out


def summarize_writer(w: dict | None) -> dict:
    if not w:
        return {}
    lat = w["latency_us"]
    marked = w.get("latency_us_marked") or {}
    before = w.get("latency_us_baseline") or {}
    return {"ops": w["ops"], "seconds": w["duration_s"], "ops_per_sec": w["ops_per_sec"], "p50_us": lat["p50"],
            "p99_us": lat["p99"], "p99_9_us": lat["p99.9"], "max_us": lat["max"], "errors": w["errors_total"],
            "acknowledged": w.get("sequential_keys_issued"),
            "copy_ops": marked.get("count"), "copy_p99_us": marked.get("p99"), "copy_max_us": marked.get("max"),
            "before_ops": before.get("count"), "before_p99_us": before.get("p99"), "before_max_us": before.get("max")}


# ----------------------------------------------------------------------------------------------
# Report

def machine_facts() -> dict:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            mem = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return "?"
    commit = out(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])
    dirty = out(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"])
    mc = out(["memcached", "-V"])
    return {"nproc": os.cpu_count(), "cpu_model": cpu, "kernel": platform.release(), "memory": mem,
            "os": out(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]), "memcached": mc,
            "commit": commit + (" (uncommitted changes)" if dirty else ""),
            "loadavg_start": open("/proc/loadavg").read().split()[:3]}


def fmt_ops(x) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def fmt_us(x) -> str:
    return "n/a" if x is None else (f"{x:,.0f}" if x >= 100 else f"{x:.1f}")


def ratio(a, b) -> str:
    return "n/a" if not a or not b else f"{a / b:.2f}×"


def run_median(row: dict, server: str, key: str):
    """Median of `key` over the alternating runs of one server in one matrix row."""
    vals = [x[key] for x in row.get("all_runs", {}).get(server, []) if x and x.get(key) is not None]
    return statistics.median(vals) if vals else None


def server_table(rows: list[dict], romads: list[str], metrics: list[tuple]) -> list[str]:
    """One line per matrix row: memcached's median of each metric, then per romad each median
    and its ratio to memcached's. `metrics`: (column label, run key, formatter)."""
    head = "| load | conns | pipeline |" + "".join(f" memcached {label} |" for label, _, _ in metrics)
    sep = "|---|---:|---:|" + "---:|" * len(metrics)
    for name in romads:
        for label, _, _ in metrics:
            head += f" {name} {label} | ×memcached |"
            sep += "---:|---:|"
    lines = [head, sep]
    for row in rows:
        mc = [run_median(row, "memcached", key) for _, key, _ in metrics]
        line = f"| {row['load']} | {row['connections']} | {row['pipeline']} |" + "".join(
            f" {fmt(v)} |" for v, (_, _, fmt) in zip(mc, metrics))
        for name in romads:
            errs = (row["results"].get(name) or {}).get("errors_total", 0)
            for i, (_, key, fmt) in enumerate(metrics):
                v = run_median(row, name, key)
                note = f" ({errs} errors)" if errs and i == 0 else ""
                line += f" {fmt(v)}{note} | {ratio(v, mc[i])} |"
        lines.append(line)
    return lines


def matrix_table(rows: list[dict], romads: list[str]) -> list[str]:
    return server_table(rows, romads, [("ops/s", "ops_per_sec", fmt_ops), ("p99 µs", "p99_us", fmt_us)])


def cpu_table(rows: list[dict], romads: list[str]) -> list[str]:
    return server_table(rows, romads, [("µs", "server_cpu_us_per_request", fmt_cpu)])


def fmt_cpu(x) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def slap_table(rows: list[dict]) -> list[str]:
    lines = ["| test | server | memcslap ops/s (runs) | memcslap CPU s | roma-bench ops/s (runs) | roma-bench CPU s | roma-bench p99 µs | roma-bench ÷ memcslap |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        sl, rb = row["memcslap"], row["roma_bench"]
        so = sl["ops_per_sec"] if sl else None
        ro = rb["ops_per_sec"] if rb else None
        slap_cpu = f"{sl['client_cpu_s']:.2f}" if sl and sl["client_cpu_s"] is not None else "n/a"
        rb_cpu = f"{rb['client_cpu_s']:.2f}" if rb else "n/a"
        rb_p99 = fmt_us(rb["latency_us"]["p99"]) if rb else "n/a"
        runs_s = "; ".join(fmt_ops(x) for x in row.get("memcslap_all", []))
        runs_r = "; ".join(fmt_ops(x) for x in row.get("roma_bench_all", []))
        lines.append(f"| {row['test']} | {row['server']} | **{fmt_ops(so)}** ({runs_s}) | {slap_cpu} | **{fmt_ops(ro)}** ({runs_r}) | "
                     f"{rb_cpu} | {rb_p99} | {ratio(ro, so)} |")
    def med(xs):
        xs = [x for x in xs if x is not None]
        return statistics.median(xs) if xs else None
    pairs = [(med(row["roma_bench_all"]), med(row["memcslap_all"]), row) for row in rows
             if row["roma_bench"] and row["memcslap"]]
    if pairs:
        mc = [p for p in pairs if p[2]["server"] == "memcached"]
        ok_mc = sum(1 for a, b, _ in mc if a >= b)
        ok_all = sum(1 for a, b, _ in pairs if a >= b)
        detail = "; ".join(f"{row['test']} {a / b:.2f}×" for a, b, row in mc)
        lines += ["", f"Medians of the alternating runs: roma-bench reached at least memcslap's throughput against memcached in "
                      f"{ok_mc} of {len(mc)} tests ({detail}) "
                      f"(all servers: {ok_all} of {len(pairs)}), using "
                      f"{min(rb for rb in (p[2]['roma_bench']['client_cpu_s'] for p in pairs)):.2f}–"
                      f"{max(rb for rb in (p[2]['roma_bench']['client_cpu_s'] for p in pairs)):.2f} s of client CPU per run."]
    return lines


def memory_table(rows: list[dict]) -> list[str]:
    lines = ["| server | records | VmRSS before | VmRSS after | MiB per million records | bytes per record |",
             "|---|---:|---:|---:|---:|---:|"]
    for x in rows:
        lines.append(f"| {x['server']} | {x['records']:,} | {x['rss_before_kib'] / 1024:.1f} MiB | {x['rss_after_kib'] / 1024:.1f} MiB | "
                     f"{x['mib_per_million']:.0f} | {x['bytes_per_record']:.0f} |")
    if len(rows) == 2 and rows[0]["mib_per_million"] > 0:
        lines.append("")
        lines.append(f"romad memory engine / memcached: {rows[1]['mib_per_million'] / rows[0]['mib_per_million']:.2f}×")
    return lines


def gap_text(snap: dict) -> str:
    """'1.5 s' or '1.5-2.5 s (at random)': how far apart the copies of one session ran."""
    gap, jitter = snap.get("gap_seconds", 0), snap.get("gap_jitter_seconds", 0)
    return f"{gap:g}-{gap + jitter:g} s (at random)" if jitter else f"{gap:g} s"


def snapshot_lines(snap: dict) -> list[str]:
    if not snap:
        return ["(not run)"]
    if "skipped" in snap:
        return [snap["skipped"]]
    k = snap.get("repeats", 1)
    lines = [f"Node: romad TokyoCabinet, {snap.get('division_files')} division files, {snap.get('total_mb')} MB in total "
             f"({snap['records']:,} records of {snap['value_size']} B; sizes MB: {snap.get('division_mb')}). "
             f"Writers: roma-bench open loop, {snap['write_rate']} sets/s over {snap['writer_connections']} connections, "
             f"new key per set; latency from the intended send time. One writer session per row: each copy runs {k} times, "
             f"{gap_text(snap)} apart. \"Before\" pools the sets issued in a window of "
             f"{snap.get('before_window_seconds', 0):g} s that ends {snap.get('before_gap_seconds', 0):g} s before each copy "
             f"starts; \"while copying\" pools the sets issued while a copy ran (sample sizes in brackets). Both come from "
             f"the same stretch of time, so drift of the shared machine weighs on both alike. The first row is a control: "
             f"its \"copy\" is a quiet {snap.get('before_window_seconds', 0):g} s window, so its ratio shows how far two "
             f"quiet windows differ here. \"Whole session\" is every set of the session.",
             ""]
    cp = snap.get("cp_fsync_median")
    lines += ["| copy | wall s (median; each run) | ÷ cp+fsync (target ≤ 1.5) | write p99 µs before (sets) "
              "| write p99 µs while copying (sets) | ÷ before (target ≤ 2) | max µs while copying | write p99 µs, whole session "
              "| writes failed | exit |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def cells(w: dict) -> str:
        return (f"{fmt_us(w.get('before_p99_us'))} ({w.get('before_ops') or 0:,}) | "
                f"{fmt_us(w.get('copy_p99_us'))} ({w.get('copy_ops') or 0:,}) | {ratio(w.get('copy_p99_us'), w.get('before_p99_us'))} | "
                f"{fmt_us(w.get('copy_max_us'))} | {fmt_us(w.get('p99_us'))} | {w.get('errors', 'n/a')}")
    lines.append(f"| none (control: a quiet window) | — | — | {cells(snap.get('control', {}))} | — |")
    if cp is not None:
        runs = ", ".join(f"{x:.2f}" for x in snap["cp_fsync_seconds"])
        lines.append(f"| cp + fsync | {cp:.2f} ({runs}) | 1.00 | {cells(snap.get('during_cp', {}))} | 0 |")
    for mode, res in snap.get("cpdb", {}).items():
        runs = ", ".join(f"{x:.2f}" for x in res.get("seconds_each", []))
        lines.append(f"| cpdb{' --consistent' if mode == 'consistent' else ''} | {res['seconds']:.2f} ({runs}) | "
                     f"{ratio(res['seconds'], cp)} | {cells(res.get('writers', {}))} | {res['exit_status']} |")
    lines += ["", f"Writes failed (all sessions): {snap.get('writes_failed', 'n/a')}. Writes lost (acknowledged sets read back afterwards: "
              f"{sum(v['acknowledged'] for v in snap.get('verify', [])):,} keys): {snap.get('writes_lost', 'n/a')}."]
    for mode, res in snap.get("cpdb", {}).items():
        lines.append(f"cpdb {mode}: divisions after the last run: {res.get('states_after')}; `cpdb verify` after every run: "
                     f"{'exit 0' if res.get('verify_exit_status') == 0 else 'FAILED'}.")
    if snap.get("smoke"):
        lines += ["", "(Smoke mode: the files are a few MB, too small for the issue's targets; they are judged on the full run.)"]
        return lines
    lines += ["", "Targets of the snapshot issue (reported, not enforced by `make bench`):", ""]
    for mode, res in snap.get("cpdb", {}).items():
        w = res.get("writers", {})
        t_ratio = res["seconds"] / cp if cp and res.get("seconds") else None
        p_ratio = w.get("copy_p99_us") / w.get("before_p99_us") if w.get("copy_p99_us") and w.get("before_p99_us") else None
        lines.append(f"- cpdb {mode}: time ≤ 1.5× cp+fsync: {verdict(t_ratio, 1.5)}; "
                     f"write p99 while copying ≤ 2× before it: {verdict(p_ratio, 2.0)}; writes failed 0: "
                     f"{'met' if w.get('errors') == 0 else 'MISSED'}")
    lines.append(f"- writes lost 0: {'met' if snap.get('writes_lost') == 0 else 'MISSED'}")
    for mode, res in snap.get("cpdb", {}).items():
        lag = res.get("wait_lag_ms") or {}
        if lag.get("waits"):
            lines.append(f"- cpdb {mode}: state waits end within 50 ms of the change: "
                         f"{'met' if lag['max'] <= 50 else 'MISSED'} ({lag['waits']} waits ended {lag['median']:.1f} ms "
                         f"after the change status.log records (median), {lag['max']:.1f} ms at most)")
        else:
            lines.append(f"- cpdb {mode}: state waits end within 50 ms of the change: n/a (no wait matched status.log)")
    return lines


def verdict(value, limit) -> str:
    if value is None:
        return "n/a"
    return f"{'met' if value <= limit else 'MISSED'} ({value:.2f}×)"


def render(facts: dict, settings: Settings, parts: dict, romads: list[str], failures: list[str], elapsed: float) -> str:
    s = settings
    out = ["# SwiftROMA benchmark results" + (" (smoke run)" if s.smoke else ""), "",
           f"Written by `{'make bench-smoke' if s.smoke else 'make bench'}` (`bench/bench.py`) on "
           f"{datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} in {elapsed / 60:.1f} min; "
           f"commit {facts['commit']}. {facts['build'].capitalize()} builds; every server and roma-bench on this machine, loopback only.", "",
           "## Machine", "",
           "| nproc | CPU model | kernel | memory | OS | memcached | load average at start |",
           "|---:|---|---|---|---|---|---|",
           f"| {facts['nproc']} | {facts['cpu_model']} | {facts['kernel']} | {facts['memory']} | {facts['os']} | {facts['memcached']} | "
           f"{' '.join(facts['loadavg_start'])} |", "",
           "Client and servers share these cores; memcached runs with `-t 2`, romad with its default event-loop "
           f"threads (one per core), roma-bench with {client_threads(1)} event-loop threads for unpipelined loads (wake-up "
           "bound) and 1 for pipelined loads (CPU bound: the other core stays with the server). For context: ROMA 1.3.0 (Ruby) on this "
           "kind of machine reached about 8–11 k gets/s and 7–8 k sets/s where memcached reached 44–55 k (memcslap, "
           "shared/reference).", ""]
    if "matrix" in parts:
        out += ["## Throughput and p99 latency, same loads against each server", "",
                f"roma-bench closed loop, {s.keys:,} keys preloaded, {s.value_size}-byte values, {s.duration:g} s measured "
                f"after {s.warmup:g} s warmup per run; all servers up at once and each load run against them back to back, "
                f"{s.matrix_repeats}× alternately; each cell is the median of those runs (ops/s and p99 separately; every run is "
                "in results-latest.json): on a shared 2-core VM single runs vary by ±20 %. Ratios are romad ÷ memcached from "
                "this run (ops/s: higher is better; p99: lower is better).", ""]
        out += matrix_table(parts["matrix"], romads) + [""]
        out += ["memcached 1.6 answers every get of a pipelined batch with its own `sendmsg` (one TCP segment per "
                "reply, seen with strace), so pipelining helps its gets much less than its sets.", ""]
        out += ["Server CPU per request (user + kernel time of the server process from /proc/<pid>/stat over the warmup and "
                "the run, ÷ requests; median of the runs): steadier than throughput, which also depends on how the client "
                "and the server share the cores.", ""]
        out += cpu_table(parts["matrix"], romads) + [""]
    if "memcslap" in parts:
        out += ["## roma-bench is not the bottleneck: memcslap vs roma-bench", "",
                f"Debian's `memcslap --concurrency={s.slap_concurrency} --execute-number={s.slap_number} --test=get|set` "
                f"(threads × execute-number operations; values 50–5000 B) and roma-bench in the same shape "
                f"(`--connections {s.slap_concurrency} --pipeline 1 --threads {client_threads(1)} --requests {s.slap_concurrency * s.slap_number}`, "
                f"{s.slap_value}-byte values = memcslap's mean, gets on preloaded keys). Each pair runs {s.slap_repeats}× alternately; "
                f"bold = best run. CPU = the client process's user+system seconds (best run).", ""]
        out += slap_table(parts["memcslap"]) + [""]
    if "memory" in parts:
        out += ["## Memory: RSS per million 100-byte records", "",
                f"Fresh server, VmRSS from /proc/<pid>/status before and 1 s after `roma-bench --preload-only` of "
                f"{s.memory_records:,} keys (`key:` + 10 digits) with 100-byte values.", ""]
        out += memory_table(parts["memory"]) + [""]
    if "cluster" in parts:
        out += ["## Cluster: 3 nodes, rn = 2, against one node", ""] + cluster_part.cluster_lines(parts["cluster"]) + [""]
    if "membership" in parts:
        out += ["## Membership: join and recover under load", ""] + membership_part.membership_lines(parts["membership"]) + [""]
    if "snapshot" in parts:
        out += ["## Online snapshot under write load (cpdb)", ""] + snapshot_lines(parts["snapshot"]) + [""]
    out += ["## Problems", ""]
    out += [f"- {f}" for f in failures] if failures else ["None: every run finished without errors."]
    out += ["", "Raw reports of every run: `bench/results-latest.json`." if not s.smoke else "", ""]
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", help="directory with romad, roma-bench (and cpdb)")
    ap.add_argument("--smoke", action="store_true", help="few-seconds mode: tiny sizes, one scenario each")
    ap.add_argument("--results", default=None, help="write the Markdown report here (full mode default: bench/RESULTS.md)")
    ap.add_argument("--parts", default="matrix,memcslap,memory,snapshot,cluster,membership")
    ap.add_argument("--duration", type=float, help="override the measured seconds per matrix run")
    ap.add_argument("--from-json", metavar="FILE", help="only render the report of a saved results-latest.json")
    args = ap.parse_args()

    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        st = Settings(saved.get("smoke", False))
        for key, value in saved.get("settings", {}).items():
            setattr(st, key, value)
        print(render(saved["machine"], st, saved["parts"], ["romad-tc", "romad-memory"], saved["failures"],
                     saved["elapsed_s"]))
        return 0

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    if not args.bin_dir:
        ap.error("--bin-dir is required")
    settings = Settings(args.smoke)
    if args.duration:
        settings.duration = args.duration
    bin_dir = os.path.abspath(args.bin_dir)
    wanted = [p.strip() for p in args.parts.split(",") if p.strip()]
    for tool in ("romad", "roma-bench"):
        if not os.access(os.path.join(bin_dir, tool), os.X_OK):
            print(f"bench: {tool} not found in {bin_dir} (build first)", file=sys.stderr)
            return 1
    for tool in ("memcached", "memcslap"):
        if not shutil.which(tool):
            print(f"bench: {tool} not installed (make deps)", file=sys.stderr)
            return 1

    t0 = time.monotonic()
    facts = machine_facts()
    facts["build"] = "release" if "release" in bin_dir.split(os.sep)[-1] or bin_dir.rstrip("/").endswith("release") else \
        ("debug" if bin_dir.rstrip("/").endswith("debug") else bin_dir)
    log(f"{facts['nproc']} × {facts['cpu_model']}, kernel {facts['kernel']}, load {' '.join(facts['loadavg_start'])}"
        + (" — smoke mode" if settings.smoke else ""))
    workdir = tempfile.mkdtemp(prefix="roma-bench-")
    TEMP_DIRS.append(workdir)
    runner = Runner(bin_dir, settings)
    parts: dict = {}
    romads = ["romad-tc", "romad-memory"]
    try:
        if "matrix" in wanted or "memcslap" in wanted:
            servers = [Server("memcached", "memcached", bin_dir, workdir),
                       Server("romad-tc", "romad", bin_dir, workdir, "tc"),
                       Server("romad-memory", "romad", bin_dir, workdir, "memory")]
            try:
                for srv in servers:
                    srv.start()
                if "matrix" in wanted:
                    parts["matrix"] = part_matrix(runner, servers)
                if "memcslap" in wanted:
                    slap_servers = servers if not settings.smoke else servers[:2]
                    parts["memcslap"] = part_memcslap(runner, slap_servers)
            finally:
                for srv in servers:
                    rc = srv.stop()
                    if srv.kind == "romad" and rc not in (0, None):
                        runner.fail(f"{srv.name} exited with {rc} after SIGTERM: {srv.tail()[-500:]}")
        if "memory" in wanted:
            parts["memory"] = part_memory(runner, bin_dir, workdir)
        if "cluster" in wanted:
            parts["cluster"] = cluster_part.part_cluster(sys.modules[__name__], runner, bin_dir, workdir)
        if "membership" in wanted:
            parts["membership"] = membership_part.part_membership(sys.modules[__name__], runner, bin_dir, workdir)
            if parts["membership"].get("writes_lost"):
                runner.fail(f"membership: {parts['membership']['writes_lost']} acknowledged writes lost")
        if "snapshot" in wanted:
            parts["snapshot"] = part_snapshot(runner, bin_dir, workdir)
            snap = parts["snapshot"]
            if "skipped" not in snap:
                if snap.get("writes_lost"):
                    runner.fail(f"snapshot: {snap['writes_lost']} acknowledged writes lost")
    except RuntimeError as e:
        runner.fail(str(e))
    finally:
        cleanup()

    elapsed = time.monotonic() - t0
    facts["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    report = render(facts, settings, parts, romads, runner.failures, elapsed)
    print()
    print(report)
    results = args.results or (None if settings.smoke else os.path.join(HERE, "RESULTS.md"))
    if results:
        with open(results, "w") as f:
            f.write(report)
        with open(os.path.join(os.path.dirname(os.path.abspath(results)), "results-latest.json"), "w") as f:
            json.dump({"machine": facts, "smoke": settings.smoke, "settings": vars(settings), "elapsed_s": elapsed, "parts": parts,
                       "failures": runner.failures, "runs": runner.runs}, f, indent=1, default=str)
        log(f"wrote {results}")
    log(f"done in {elapsed:.0f} s, {len(runner.failures)} problem(s)")
    return 1 if runner.failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        cleanup()
