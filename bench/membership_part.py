"""`make bench` part `membership` (issue #12): a 2-node cluster (rn = 2, 127.0.0.1-2) holding
`member_records` records of 100 B; a third node joins (127.0.0.3, `romad -j`), then one node is
killed and `recover` restores two copies of every vnode.

Reported: join time and recover time, bytes the vnode copies streamed (`stats.vnode_bytes_sent`)
and their rate, against a plain loopback TCP copy of the same number of bytes in the same run;
client p99 (roma-bench open loop, `member_rate` sets/s through node 1) while each move runs,
against the window just before it (SIGUSR2 / SIGUSR1 windows of roma-bench), and in a writer
session once it is over; acknowledged writes lost (`roma-bench --verify` of everything written,
through the cluster).
Targets: join rate ≥ 50 % of the loopback copy; p99 during a move ≤ 3× before; 0 lost writes.

A control follows, with no cluster code: memcached and the same writer, and in the writer's marked
window a plain loopback copy of the join's bytes from a file into a file, at normal priority and
at SCHED_IDLE: what moving those bytes at full speed does to a server's p99 on this machine.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
# Extra romad arguments for every node of this part (e.g. "--copy-bandwidth 20"), for experiments.
MEMBER_NODE_ARGS = os.environ.get("MEMBER_NODE_ARGS", "").split()


def _timed_loopback_copy(send, receive, before_send=None) -> float:
    """Seconds for `send(sock)` to push its bytes over a loopback TCP connection and
    `receive(sock)` (on a thread) to take all of them; `before_send()`, if given, runs once the
    connection is up, before the clock starts."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def reader():
        c, _ = srv.accept()
        receive(c)
        c.close()
    t = threading.Thread(target=reader)
    t.start()
    s = socket.create_connection(("127.0.0.1", port))
    if before_send:
        before_send()
    t0 = time.monotonic()
    send(s)
    s.close()
    t.join()
    dt = time.monotonic() - t0
    srv.close()
    return dt


def loopback_copy_rate(nbytes: int) -> float:
    """Bytes/s of a plain TCP copy of `nbytes` over loopback (256 KiB writes, reader discards)."""
    chunk = b"x" * (256 * 1024)

    def send(s):
        left = nbytes
        while left > 0:
            n = min(left, len(chunk))
            s.sendall(chunk[:n])
            left -= n

    def receive(c):
        while c.recv(1 << 20):
            pass
    dt = _timed_loopback_copy(send, receive)
    return nbytes / dt if dt > 0 else 0.0


def _write_random_file(path: str, nbytes: int) -> None:
    """A file of `nbytes` of random bytes (left in the page cache)."""
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        left = nbytes
        while left > 0:
            f.write(block[:min(left, len(block))])
            left -= len(block)


def _file_sender(path: str, rate: float = 0):
    """`send` for `_timed_loopback_copy`: the file at `path`, 1 MiB reads; with `rate` > 0
    (bytes/s) each MiB waits for its turn on a schedule at that rate."""
    def send(s):
        t0, sent = time.monotonic(), 0
        with open(path, "rb") as f:
            while b := f.read(1 << 20):
                if rate > 0 and (ahead := t0 + sent / rate - time.monotonic()) > 0:
                    time.sleep(ahead)
                s.sendall(b)
                sent += len(b)
    return send


def _file_receiver(path: str):
    """`receive` for `_timed_loopback_copy`: into a new file at `path`, 1 MiB reads."""
    def receive(c):
        with open(path, "wb") as out:
            while b := c.recv(1 << 20):
                out.write(b)
    return receive


def loopback_file_copy_rate(nbytes: int, workdir: str) -> float:
    """Bytes/s of a plain copy of a file of `nbytes` (in the page cache) over loopback TCP into a
    new file (1 MiB reads and writes): what a join's division files physically go through."""
    src = os.path.join(workdir, "loopback-src.bin")
    dst = os.path.join(workdir, "loopback-dst.bin")
    _write_random_file(src, nbytes)
    dt = _timed_loopback_copy(_file_sender(src), _file_receiver(dst))
    for p in (src, dst):
        os.unlink(p)
    return nbytes / dt if dt > 0 else 0.0


def _control_copy_child(src: str, dst: str, policy: str, rate: str = "0") -> None:
    """The control's copy, run as a child process (`membership_part.py control-copy …`) so that
    all its threads run under `policy` (`normal`, or `idle` = SCHED_IDLE), paced to `rate`
    bytes/s when that is above 0: sets up, says "ready", copies once it reads a line, prints the
    bytes/s."""
    if policy == "idle":
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))

    def ready():
        print("ready", flush=True)
        sys.stdin.readline()
    dt = _timed_loopback_copy(_file_sender(src, float(rate)), _file_receiver(dst), before_send=ready)
    os.unlink(dst)
    print(os.path.getsize(src) / dt, flush=True)


def writer_window(r, port: int, host: str, args: list[str], label: str, before: float, action):
    """A roma-bench writer session: a window of `before` s (SIGUSR2 … SIGUSR2, the writer's
    baseline), then `action()` inside the marked window (SIGUSR1 … SIGUSR1). Returns what
    `action` returned and the writer's report."""
    writer, cmd, seen = r.start_bench(port, args, host=host)
    try:
        time.sleep(0.5)
        writer.send_signal(signal.SIGUSR2)
        time.sleep(before)
        writer.send_signal(signal.SIGUSR2)
        time.sleep(0.2)
        writer.send_signal(signal.SIGUSR1)
        result = action()
        writer.send_signal(signal.SIGUSR1)
        time.sleep(0.3)
        writer.send_signal(signal.SIGINT)
        w = r.finish_bench(label, writer, cmd, timeout=120, seen=seen)
        return result, (w or {})
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()


# The control's copies: key, label, scheduling policy, pace as a share of the copy into nothing
# (0: full speed).
CONTROL_ROWS = (("normal", "normal priority, full speed", "normal", 0.0),
                ("idle", "`SCHED_IDLE`, full speed", "idle", 0.0),
                ("normal_half", "normal priority, paced to half the copy into nothing", "normal", 0.5),
                ("idle_half", "`SCHED_IDLE`, paced to half the copy into nothing", "idle", 0.5))


def copy_beside_memcached(bench, r, bin_dir: str, workdir: str, nbytes: int, writer_args, into_nothing_Bps: float) -> dict:
    """The control of the p99 target: memcached alone, the same writer as the join's, and in the
    writer's marked window a plain loopback copy of `nbytes` from a file into a file: at normal
    priority and at SCHED_IDLE (as the seed's threads run), at full speed and paced to half of
    `into_nothing_Bps` (the copy into nothing of the same run: the least a join meeting the rate
    target moves). What moving those bytes does to a server's p99 on this machine, with no
    cluster code involved."""
    mc = bench.Server("member-control-memcached", "memcached", bin_dir, workdir)
    src, dst = os.path.join(workdir, "control-src.bin"), os.path.join(workdir, "control-dst.bin")
    out: dict = {}
    try:
        _write_random_file(src, nbytes)
        mc.start()
        for key, _, policy, share in CONTROL_ROWS:
            rate = share * into_nothing_Bps
            if share > 0 and rate <= 0:
                continue
            child = subprocess.Popen([sys.executable, os.path.abspath(__file__), "control-copy", src, dst, policy, str(rate)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                if child.stdout.readline().strip() != "ready":
                    raise RuntimeError("the control's copy did not start")

                def copy():
                    child.stdin.write("go\n")
                    child.stdin.flush()
                    return float(child.stdout.readline())
                got, w = writer_window(r, mc.port, "127.0.0.1", writer_args(f"c{key}:", 3600),
                                       f"membership control (memcached beside a copy: {key})", r.s.member_before, copy)
                out[key] = dict(bench.summarize_writer(w), copy_Bps=got, paced_Bps=rate or None)
            finally:
                if child.poll() is None:
                    child.kill()
                child.wait()
    finally:
        if mc.proc is not None:
            mc.stop()
        for p in (src, dst):
            if os.path.exists(p):
                os.unlink(p)
    return out


def one_line(node, text: str, timeout: float = 10) -> str:
    """Sends a command answered by one line (e.g. `recover`) and returns that line."""
    with socket.create_connection((node.address, node.port), timeout=timeout) as c:
        c.sendall(text.encode() + b"\r\n")
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace").strip()


def stat(bench, node, name: str) -> str:
    out = bench.command(node.port, f"stat ^{name}$", host=node.address)
    for line in out.splitlines():
        if line.startswith(name + " "):
            return line.split(" ", 1)[1]
    return ""


def wait(pred, timeout: float, what: str, every: float = 0.05) -> float:
    """Asks `pred` every `every` s until it holds; the seconds it took."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if pred():
                return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(every)
    raise RuntimeError(f"timed out waiting for {what}")


def part_membership(bench, r, bin_dir: str, workdir: str) -> dict:
    s = r.s
    rt = os.path.join(workdir, "member-routing")
    os.makedirs(rt, exist_ok=True)
    nodes = []
    for i, h in enumerate(HOSTS[:2]):
        srv = bench.Server(f"member-{i + 1}", "romad", bin_dir, workdir, "tc", address=h)
        srv.cmd += ["--rttable-path", rt] + MEMBER_NODE_ARGS
        nodes.append(srv)
    newcomer = bench.Server("member-3", "romad", bin_dir, workdir, "tc", address=HOSTS[2])
    newcomer.cmd += ["--rttable-path", rt, "-j", f"{HOSTS[0]}:{nodes[0].port}"] + MEMBER_NODE_ARGS
    subprocess.run([os.path.join(bin_dir, "mkroute"), "-r", "2", "--out", rt] + [f"{n.address}_{n.port}" for n in nodes],
                   check=True, stdout=subprocess.DEVNULL)
    res: dict = {"records": s.member_records, "value_size": 100, "rate": s.member_rate, "before": s.member_before}
    try:
        for n in nodes:
            n.start()
        for n in nodes:
            n.wait_serving()
        seeds = ",".join(f"{n.address}:{n.port}" for n in nodes)
        bench.log(f"membership: preloading {s.member_records:,} records of 100 B into the 2-node cluster")
        pre = r.roma_bench("membership preload", nodes[0].port, ["--preload-only", "--seeds", seeds, "--keys",
                           str(s.member_records), "--value-size", "100", "--connections", "8", "--pipeline", "16",
                           "--key-prefix", "m:"], timeout=1800, host=nodes[0].address)
        res["preload_ops_per_sec"] = pre["ops_per_sec"] if pre else None
        def writer_args(prefix: str, duration: float) -> list[str]:
            """The writer of every session: `member_rate` sets/s of new keys through node 1."""
            return ["--mix", "0:1", "--rate", str(s.member_rate), "--connections", "4", "--key-order", "sequential",
                    "--keys", "100000000", "--value-size", "100", "--key-prefix", prefix, "--duration", str(duration)]

        def window(label: str, prefix: str, action) -> tuple[float, dict]:
            """A writer session: a window before (SIGUSR2), then the move (SIGUSR1)."""
            took, w = writer_window(r, nodes[0].port, nodes[0].address, writer_args(prefix, 3600),
                                    f"membership writers ({label})", s.member_before, action)
            bench.log(f"membership: {label} took {took:.1f} s")
            return took, w

        def join() -> float:
            t0 = time.monotonic()
            newcomer.start()
            wait(lambda: stat(bench, newcomer, "stats.run_join") == "false", 3600, "the join", every=0.01)
            return time.monotonic() - t0
        def after(label: str, prefix: str) -> dict:
            """A writer session of `member_before` s once the move is over: the cluster's steady state
            after it, to tell the move's own cost from that of the new layout."""
            w = r.roma_bench(f"membership writers after the {label}", nodes[0].port, writer_args(prefix, s.member_before),
                             timeout=s.member_before + 120, host=nodes[0].address)
            return w or {}

        res["join_s"], wj = window("join", "w1:", join)
        res["join_writer"] = bench.summarize_writer(wj)
        wja = after("join", "a1:")
        res["join_after_p99_us"] = (wja.get("latency_us") or {}).get("p99")
        all3 = nodes + [newcomer]
        res["join_bytes"] = sum(int(stat(bench, n, "stats.vnode_bytes_sent") or 0) for n in all3)
        res["join_records"] = sum(int(stat(bench, n, "stats.vnode_records_sent") or 0) for n in all3)
        res["seed_bytes"] = int(stat(bench, newcomer, "stats.seed_bytes_received") or 0)
        res["seed_us"] = int(stat(bench, newcomer, "stats.seed_receive_us") or 0)
        res["seed_dropped"] = int(stat(bench, newcomer, "stats.seed_records_dropped") or 0)
        res["primaries_after_join"] = [int(stat(bench, n, "routing.primary") or 0) for n in all3]
        # kill -9 the second node; recover from the others
        victim = nodes[1]
        victim.proc.kill()
        victim.proc.wait()
        wait(lambda: f"{victim.address}_{victim.port}" not in stat(bench, nodes[0], "routing.nodes"), 30, "the leave")
        before_bytes = sum(int(stat(bench, n, "stats.vnode_bytes_sent") or 0) for n in (nodes[0], newcomer))

        def recover() -> float:
            t0 = time.monotonic()
            reply = one_line(nodes[0], "recover")
            if "STARTED" not in reply:
                raise RuntimeError(f"recover answered {reply}")
            wait(lambda: stat(bench, nodes[0], "routing.short_vnodes") == "0" and stat(bench, newcomer, "routing.short_vnodes") == "0"
                 and stat(bench, nodes[0], "stats.run_recover") == "false" and stat(bench, newcomer, "stats.run_recover") == "false",
                 3600, "the recover")
            return time.monotonic() - t0
        res["recover_s"], wr = window("recover", "w2:", recover)
        res["recover_writer"] = bench.summarize_writer(wr)
        wra = after("recover", "a2:")
        res["recover_after_p99_us"] = (wra.get("latency_us") or {}).get("p99")
        res["recover_bytes"] = sum(int(stat(bench, n, "stats.vnode_bytes_sent") or 0) for n in (nodes[0], newcomer)) - before_bytes
        survivors = f"{nodes[0].address}:{nodes[0].port},{newcomer.address}:{newcomer.port}"
        lost = 0
        for prefix, n in (("m:", s.member_records), ("w1:", (wj.get("sequential_keys_issued") or 0)),
                          ("a1:", (wja.get("sequential_keys_issued") or 0)),
                          ("w2:", (wr.get("sequential_keys_issued") or 0)),
                          ("a2:", (wra.get("sequential_keys_issued") or 0))):
            if n <= 0:
                continue
            v = r.roma_bench(f"membership verify {prefix}", nodes[0].port, ["--verify", "--seeds", survivors, "--keys", str(n),
                             "--value-size", "100", "--key-prefix", prefix, "--connections", "8", "--pipeline", "16"],
                             timeout=1800, host=nodes[0].address)
            ver = (v or {}).get("verify") or {}
            res[f"verify_{prefix}"] = ver
            lost += ver.get("missing", n) + ver.get("mismatched", 0)
        res["writes_lost"] = lost
        res["loopback_copy_Bps"] = loopback_copy_rate(max(res["join_bytes"], 1 << 20))
        res["loopback_file_copy_Bps"] = loopback_file_copy_rate(max(res["join_bytes"], 1 << 20), workdir)
        for srv in nodes + [newcomer]:
            if srv.proc is not None and srv.proc.poll() is None:
                srv.stop()
        res["control"] = copy_beside_memcached(bench, r, bin_dir, workdir, max(res["join_bytes"], 1 << 20), writer_args,
                                               res["loopback_copy_Bps"])
        res["join_Bps"] = res["join_bytes"] / res["join_s"] if res["join_s"] else None
        res["recover_Bps"] = res["recover_bytes"] / res["recover_s"] if res["recover_s"] else None
        return res
    finally:
        for srv in nodes + [newcomer]:
            if srv.proc is not None:
                srv.stop()


def membership_lines(m: dict) -> list[str]:
    def mb(x):
        return f"{x / 1e6:,.1f}" if x else "—"
    lb = m.get("loopback_copy_Bps") or 0
    lines = [f"A 2-node cluster (rn = 2, TokyoCabinet) holding {m['records']:,} records of {m['value_size']} B; "
             f"{m['rate']} sets/s through node 1 during each move and the {m.get('before', 5)} s before it "
             "(roma-bench open loop, one writer session per move).", "",
             "| move | time s | MB streamed | MB/s | ÷ loopback copy into nothing (≥ 0.5) | ÷ loopback file copy | p99 before µs | p99 during µs | ÷ before (≤ 3) | p99 after µs | failed writes |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lf = m.get("loopback_file_copy_Bps") or 0
    for key, label in (("join", "third node joins"), ("recover", "recover after kill -9")):
        bps = m.get(f"{key}_Bps")
        w = m.get(f"{key}_writer") or {}
        b, d = w.get("before_p99_us"), w.get("copy_p99_us")
        lines.append(f"| {label} | {m.get(key + '_s', 0):.1f} | {mb(m.get(key + '_bytes'))} | {mb(bps)} | "
                     f"**{(bps / lb) if bps and lb else 0:.2f}×** | {(bps / lf) if bps and lf else 0:.2f}× | {b if b is not None else '—'} | {d if d is not None else '—'} | "
                     f"**{(d / b) if b and d else 0:.2f}×** | {m.get(key + '_after_p99_us') or '—'} | {w.get('errors', '—')} |")
    sb, su = m.get("seed_bytes") or 0, m.get("seed_us") or 0
    if sb and su:
        sr = sb / (su / 1e6)
        lines += ["", f"File seed of the join (`stats.seed_bytes_received`, `stats.seed_receive_us` on the newcomer): "
                  f"{mb(sb)} MB of division files in {su / 1e6:.2f} s, **{mb(sr)} MB/s**, from the first file asked for to the "
                  f"last one in place (the records of vnodes not its own are purged in the background after it): "
                  f"**{sr / lb if lb else 0:.2f}×** the plain loopback copy into nothing, **{sr / lf if lf else 0:.2f}×** "
                  f"a plain loopback copy of a file of the same size into a file ({mb(lf)} MB/s)."]
    ctl = m.get("control") or {}
    if ctl:
        lines += ["", "Control (no cluster code): memcached alone, the same writer, and in its marked window a plain "
                  "loopback copy of the join's bytes from a file into a file (a child process), at normal priority and at "
                  "`SCHED_IDLE` as the seed's threads run; at full speed, and paced to half the copy into nothing "
                  "(the least a join meeting the rate target moves):", "",
                  "| copy beside memcached | MB/s | ÷ loopback copy into nothing | p99 before µs | p99 during µs | ÷ before |",
                  "|---|---:|---:|---:|---:|---:|"]
        for key, label, _, _ in CONTROL_ROWS:
            c = ctl.get(key)
            if c is None:
                continue
            b, d = c.get("before_p99_us"), c.get("copy_p99_us") if c.get("copy_ops") else None
            cb = c.get("copy_Bps")
            lines.append(f"| {label} | {mb(cb)} | {f'{cb / lb:.2f}×' if cb and lb else '—'} | {b if b is not None else '—'} | "
                         f"{d if d is not None else '—'} | "
                         + (f"{d / b:.2f}×" if b and d else "—") + " |")
    lines += ["", f"Plain loopback TCP copies of the join's bytes in the same run: {mb(lb)} MB/s into nothing, {mb(lf)} MB/s "
              f"from a file into a file. p99 after: a writer session "
              f"of {m.get('before', 5)} s at the same rate once the move is over (the new layout's steady state). Primaries "
              f"after the join: {m.get('primaries_after_join')}. Acknowledged writes lost (preload and every writer session, "
              f"read back through the surviving nodes with `roma-bench --verify`): **{m.get('writes_lost')}**."]
    return lines


if __name__ == "__main__" and len(sys.argv) in (5, 6) and sys.argv[1] == "control-copy":
    _control_copy_child(*sys.argv[2:])
