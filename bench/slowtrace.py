#!/usr/bin/env python3
"""Lines slow requests up with a scheduler trace: for every request that roma-bench logged as slow
(`--log-slow-us N`: lines `slow <send time, CLOCK_MONOTONIC ns> <latency µs>`), what ran on each
CPU between its send time and its reply, in µs per thread, plus the workqueue functions that ran.

Record the trace with the monotonic clock while the load runs (as root):

    T=/sys/kernel/tracing
    echo mono > $T/trace_clock; echo 65536 > $T/buffer_size_kb; echo > $T/trace
    echo 1 > $T/events/sched/sched_switch/enable
    echo 1 > $T/events/workqueue/workqueue_execute_start/enable
    echo 'stacktrace if prev_state & 2' > $T/events/sched/sched_switch/trigger   # optional: D-state stacks
    echo 1 > $T/tracing_on; <run roma-bench --log-slow-us 400 ... 2> slow.log, and the snapshot>
    echo 0 > $T/tracing_on; cat $T/trace > trace.txt

then: bench/slowtrace.py trace.txt slow.log

"swapper" on every CPU during a slow request means nothing ran: the request waited for a halted
virtual CPU to be woken (or for the network), not for a thread.
"""
from __future__ import annotations

import collections
import re
import sys

SWITCH = re.compile(r"\[(\d+)\].* (\d+\.\d+): sched_switch: prev_comm=(.*) prev_pid=(\d+) prev_prio=(\d+) "
                    r"prev_state=(\S+) ==> next_comm=(.*) next_pid=(\d+) next_prio=(\d+)")
WORK = re.compile(r"\[(\d+)\].* (\d+\.\d+): workqueue_execute_start: work struct \S+ function (\S+)")


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print("usage: slowtrace.py TRACE SLOWLOG", file=sys.stderr)
        return 64
    runs: dict[int, list[tuple[float, float, str]]] = collections.defaultdict(list)
    current: dict[int, tuple[float, str]] = {}
    works: list[tuple[float, str]] = []
    with open(argv[1], errors="replace") as f:
        for line in f:
            m = SWITCH.search(line)
            if m:
                cpu, t = int(m[1]), float(m[2])
                if cpu in current:
                    runs[cpu].append((current[cpu][0], t, current[cpu][1]))
                current[cpu] = (t, f"{m[7]}/{m[8]}")
                continue
            m = WORK.search(line)
            if m:
                works.append((float(m[2]), m[3]))
    slow = []
    with open(argv[2], errors="replace") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "slow":
                slow.append((int(parts[1]) / 1e9, int(parts[2]) / 1e6))
    if not runs:
        print("no sched_switch events in the trace", file=sys.stderr)
        return 1
    total: collections.Counter[str] = collections.Counter()
    for start, latency in sorted(slow):
        end = start + latency
        cells = []
        for cpu in sorted(runs):
            busy: collections.Counter[str] = collections.Counter()
            for a, b, who in runs[cpu]:
                overlap = min(b, end) - max(a, start)
                if overlap > 0:
                    busy[who] += overlap * 1e6
            for who, us in busy.items():
                total[who.rsplit("/", 1)[0]] += us
            cells.append(f"cpu{cpu}: " + ", ".join(f"{who} {us:.0f}" for who, us in busy.most_common(4)))
        w = collections.Counter(fn for t, fn in works if start <= t <= end)
        tail = f" | work: {', '.join(f'{fn}×{n}' for fn, n in w.most_common(3))}" if w else ""
        print(f"{start:.6f} {latency * 1e6:.0f} µs | " + " | ".join(cells) + tail)
    print(f"{len(slow)} slow requests; µs on the CPUs during them, by thread name: "
          + ", ".join(f"{who} {us:.0f}" for who, us in total.most_common(15)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
