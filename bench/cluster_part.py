"""`make bench` part `cluster` (issue #11): a 3-node cluster (rn = 2, nodes on 127.0.0.1/2/3)
against a single node, in the same run, on the same machine.

Rows (each the median of `cluster_repeats` runs, alternating):
- single node: roma-bench straight to one romad (16 connections, one request in flight each);
- single node via RomaClient: the same 16 concurrent requests through the client, which
  multiplexes them over its pool (1 pipelined connection per node and client event loop, the library default);
- cluster via RomaClient: `roma-bench --seeds …` routes every request to the key's primary
  (sets are replicated to the secondary before the reply);
- cluster via one entry node: plain roma-bench to node 1, which serves what it holds and
  forwards the rest (2/3 of sets, 1/3 of gets).

Targets: replicated set through the client ≥ 0.5 × single-node set; get through the client
≥ 0.9 × single-node get. The reference is the better of the two single-node rows, so the client's
pipelining counts on both sides. Every run must be error-free, and a final `--verify` through the
client must find every acknowledged key.

The targets are judged at `cluster_connections` (16) concurrent requests. The same three rows
but the entry node's are then measured at more concurrent requests (`cluster_sweep`: 64 and 256,
memtier's default being 4 × 50 = 200), because the ratio depends on it: the more requests each
node's connections carry at once, the more of them share one read and one write.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import time

CLUSTER_HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
CLUSTER_NODE_ARGS = os.environ.get("CLUSTER_NODE_ARGS", "").split()


def start_cluster(bench, bin_dir: str, workdir: str) -> list:
    """Three romad (tc) with one mkroute table; returns the started Server objects."""
    rt = os.path.join(workdir, "cluster-routing")
    os.makedirs(rt, exist_ok=True)
    nodes = []
    for i, host in enumerate(CLUSTER_HOSTS):
        srv = bench.Server(f"cluster-{i + 1}", "romad", bin_dir, workdir, "tc", address=host)
        srv.cmd += ["--rttable-path", rt] + CLUSTER_NODE_ARGS
        nodes.append(srv)
    nids = [f"{s.address}_{s.port}" for s in nodes]
    subprocess.run([os.path.join(bin_dir, "mkroute"), "-r", "2", "--out", rt, *nids], check=True,
                   stdout=subprocess.DEVNULL)
    for srv in nodes:
        srv.start_on_host()
    for srv in nodes:
        srv.wait_serving()
    return nodes


def part_cluster(bench, r, bin_dir: str, workdir: str) -> dict:
    s = r.s
    single = bench.Server("single-node", "romad", bin_dir, workdir, "tc").start()
    nodes: list = []
    try:
        nodes = start_cluster(bench, bin_dir, workdir)
        seeds = ",".join(f"{n.address}:{n.port}" for n in nodes)
        entry = nodes[0]
        common = ["--keys", str(s.cluster_keys), "--value-size", str(s.value_size),
                  "--connections", str(s.cluster_connections), "--pipeline", str(s.cluster_pipeline),
                  "--threads", str(bench.client_threads(s.cluster_pipeline)), "--duration", str(s.cluster_duration),
                  "--warmup", str(s.warmup)]
        bench.log(f"cluster: preloading {s.cluster_keys} keys into the single node and the cluster")
        r.roma_bench("cluster preload single", single.port, ["--preload-only", "--keys", str(s.cluster_keys),
                     "--value-size", str(s.value_size), "--connections", "4", "--pipeline", "16"], timeout=600)
        r.roma_bench("cluster preload cluster", entry.port, ["--preload-only", "--seeds", seeds,
                     "--keys", str(s.cluster_keys), "--value-size", str(s.value_size), "--connections", "4",
                     "--pipeline", "16"], timeout=600, host=entry.address)
        targets = {
            "single node": (single, []),
            "single node via RomaClient": (single, ["--seeds", f"{single.address}:{single.port}"]),
            "cluster via RomaClient": (entry, ["--seeds", seeds]),
            "cluster via one entry node": (entry, []),
        }
        # whose CPU a row spends on the server side: the single node, or all three nodes
        served_by = {"single node": [single], "single node via RomaClient": [single],
                     "cluster via RomaClient": nodes, "cluster via one entry node": nodes}
        ncpu = os.cpu_count() or 1

        def measure(conc: int, names: list[str]) -> dict:
            runs: dict = {}
            args = list(common)
            args[args.index("--connections") + 1] = str(conc)
            for rep in range(s.cluster_repeats):
                for mix_label, mix in (("set", "0:1"), ("get", "1:0")):
                    for name in names:
                        srv, extra = targets[name]
                        cpu0 = [n.cpu_seconds() for n in served_by[name]]
                        t0 = time.monotonic()
                        res = r.roma_bench(f"cluster c{conc} {mix_label} {name} #{rep + 1}", srv.port,
                                           ["--mix", mix] + args + extra, timeout=s.cluster_duration + s.warmup + 120,
                                           host=srv.address)
                        wall = time.monotonic() - t0
                        cpu1 = [n.cpu_seconds() for n in served_by[name]]
                        if res:
                            # CPU per request (user + kernel, over warmup + measured run) and how busy the
                            # machine's cores were: the ratios are bound by CPU on this machine, not by waiting
                            seconds = s.cluster_duration + s.warmup
                            spent, client = bench.cpu_spent(cpu0, cpu1), res.get("client_cpu_s")
                            res["server_cpu_us_per_request"] = bench.cpu_us_per_request(spent, res, seconds)
                            res["client_cpu_us_per_request"] = bench.cpu_us_per_request(client, res, seconds)
                            if spent is not None and wall > 0:
                                res["cores_busy"] = (spent + (client or 0)) / (wall * ncpu)
                            runs.setdefault((mix_label, name), []).append(res)
                            bench.log(f"cluster c{conc:<3} {mix_label:3} {name:28} {res['ops_per_sec']:>9.0f} ops/s  "
                                      f"p99 {res['latency_us']['p99']:>8.1f} µs  errors {res['errors_total']}")
            return runs

        runs = measure(s.cluster_connections, list(targets))
        sweep = {conc: measure(conc, [n for n in targets if n != "cluster via one entry node"])
                 for conc in s.cluster_sweep}
        verify = r.roma_bench("cluster verify", entry.port, ["--verify", "--seeds", seeds, "--keys", str(s.cluster_keys),
                              "--value-size", str(s.value_size), "--connections", "4", "--pipeline", "16"],
                              timeout=600, host=entry.address)
        forwards = {}
        for n in nodes:
            st = bench.command(n.port, "stat forward_count|replication_", host=n.address)
            forwards[n.name] = {ln.split()[0]: ln.split()[1] for ln in st.splitlines() if ln.startswith("stats.")}
        def medians(runs: dict) -> dict:
            rows: dict = {}
            for (mix_label, name), rs in runs.items():
                def med(key: str):
                    xs = [x[key] for x in rs if x.get(key) is not None]
                    return statistics.median(xs) if xs else None
                rows.setdefault(mix_label, {})[name] = {
                    "ops_per_sec": statistics.median(x["ops_per_sec"] for x in rs),
                    "p99_us": statistics.median(x["latency_us"]["p99"] for x in rs),
                    "runs": [x["ops_per_sec"] for x in rs],
                    "server_cpu_us_per_request": med("server_cpu_us_per_request"),
                    "client_cpu_us_per_request": med("client_cpu_us_per_request"),
                    "cores_busy": med("cores_busy"),
                }
            return rows
        return {"rows": medians(runs), "verify": verify.get("verify") if verify else None, "node_stats": forwards,
                "connections": s.cluster_connections, "keys": s.cluster_keys, "repeats": s.cluster_repeats,
                "duration": s.cluster_duration,
                "sweep": {str(conc): medians(rs) for conc, rs in sweep.items()}}
    finally:
        for srv in [single] + nodes:
            rc = srv.stop()
            if rc not in (0, None):
                r.fail(f"{srv.name} exited with {rc} after SIGTERM: {srv.tail()[-500:]}")


def ratio(a, b):
    return a / b if a and b else None


def best_single(r: dict):
    """The better single-node figure (plain connections or through RomaClient)."""
    xs = [r.get(k, {}).get("ops_per_sec") for k in ("single node", "single node via RomaClient")]
    xs = [x for x in xs if x]
    return max(xs) if xs else None


def cluster_lines(c: dict) -> list[str]:
    rows = c["rows"]
    out = [f"{c['connections']} concurrent requests (closed loop), {c['keys']:,} preloaded keys of 100 B, "
           f"median of {c['repeats']} runs of {c['duration']} s each (alternating). Three romad nodes (TokyoCabinet, "
           f"rn = 2, one `mkroute` table) on 127.0.0.1–3 share this machine's cores with the client; the single node "
           f"gets the same cores alone. Plain roma-bench: {c['connections']} connections, one request in flight each; "
           f"through RomaClient: the same requests multiplexed over 1 pipelined connection per node and client event loop. "
           f"÷ single: against the better of the two single-node rows.", "",
           "| load | single node ops/s | single node via RomaClient | cluster via RomaClient | ÷ single | cluster via one entry node | ÷ single |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    def f(x):
        return f"{x:,.0f}" if x else "—"
    def q(x):
        return f"{x:.2f}×" if x else "—"
    for mix in ("set", "get"):
        r = rows.get(mix, {})
        one = best_single(r)
        cl = r.get("cluster via RomaClient", {}).get("ops_per_sec")
        en = r.get("cluster via one entry node", {}).get("ops_per_sec")
        out.append(f"| {mix} | {f(r.get('single node', {}).get('ops_per_sec'))} | "
                   f"{f(r.get('single node via RomaClient', {}).get('ops_per_sec'))} | {f(cl)} | **{q(ratio(cl, one))}** | "
                   f"{f(en)} | {q(ratio(en, one))} |")
    set_r = ratio(rows.get("set", {}).get("cluster via RomaClient", {}).get("ops_per_sec"), best_single(rows.get("set", {})))
    get_r = ratio(rows.get("get", {}).get("cluster via RomaClient", {}).get("ops_per_sec"), best_single(rows.get("get", {})))
    out += ["", f"Targets: replicated set ≥ 0.5× single-node set: "
            f"{'met' if set_r and set_r >= 0.5 else 'missed'} ({set_r:.2f}×); "
            f"get through the routing client ≥ 0.9× single-node get: "
            f"{'met' if get_r and get_r >= 0.9 else 'missed'} ({get_r:.2f}×)." if set_r and get_r else "Targets: not measured."]
    cpu_rows = [(mix, name, rows.get(mix, {}).get(name, {})) for mix in ("set", "get")
                for name in ("single node", "single node via RomaClient", "cluster via RomaClient")]
    if any(x.get("cores_busy") is not None for _, _, x in cpu_rows):
        def us(x):
            return f"{x:.1f}" if x is not None else "—"
        out += ["", f"Where the CPU went at {c['connections']} concurrent requests (medians of the same runs; "
                "user + kernel time of the server processes — the single node, or all three nodes — and of roma-bench, "
                "per request; cores busy: both together against every core of this machine over the run):", "",
                "| load | row | ops/s | server CPU µs/request | client CPU µs/request | cores busy |",
                "|---|---|---:|---:|---:|---:|"]
        for mix, name, x in cpu_rows:
            busy = x.get("cores_busy")
            out.append(f"| {mix} | {name} | {f(x.get('ops_per_sec'))} | {us(x.get('server_cpu_us_per_request'))} | "
                       f"{us(x.get('client_cpu_us_per_request'))} | {f'{busy:.0%}' if busy is not None else '—'} |")
    sweep = c.get("sweep") or {}
    if sweep:
        out += ["", "The same rows (but the entry node's) with more concurrent requests, to show how the ratios move with "
                "the load (closed loop; plain roma-bench: one connection per request; through RomaClient: the same "
                "requests multiplexed as above). Medians of the same number of runs.", "",
                "| concurrent requests | load | single node ops/s | single node via RomaClient | cluster via RomaClient | ÷ single |",
                "|---:|---|---:|---:|---:|---:|"]
        levels = [(str(c["connections"]), rows)] + sorted(sweep.items(), key=lambda kv: int(kv[0]))
        for conc, lvl in levels:
            for mix in ("set", "get"):
                r = lvl.get(mix, {})
                cl = r.get("cluster via RomaClient", {}).get("ops_per_sec")
                out.append(f"| {conc} | {mix} | {f(r.get('single node', {}).get('ops_per_sec'))} | "
                           f"{f(r.get('single node via RomaClient', {}).get('ops_per_sec'))} | {f(cl)} | "
                           f"{q(ratio(cl, best_single(r)))} |")
        out.append("")
    v = c.get("verify")
    if v:
        out.append(f"Verify through the client after all runs: {v}.")
    out.append("Node counters after the runs: " + "; ".join(
        f"{n}: " + ", ".join(f"{k.split('.', 1)[1]} {val}" for k, val in st.items()) for n, st in c["node_stats"].items()) + ".")
    return out
