#!/usr/bin/env python3
"""What held a move's writers up, from a scheduler trace: lock waits (futex) of event-loop threads,
disk sleeps of any thread with their kernel stacks, and CPU time per node process per 10 ms.

Record (as root) with the thread group ids and, for disk sleeps, kernel stacks:

    T=/sys/kernel/tracing
    echo mono > $T/trace_clock; echo 1 > $T/options/record-tgid
    echo 262144 > $T/buffer_size_kb      # once, well before the window: resizing stalls everything
    echo > $T/trace
    echo 1 > $T/events/sched/sched_switch/enable; echo 1 > $T/events/sched/sched_wakeup/enable
    echo 'stacktrace if prev_state & 2' > $T/events/sched/sched_switch/trigger
    for e in sys_enter_futex sys_exit_futex; do
        echo 'comm ~ "NIO-ELT*"' > $T/events/syscalls/$e/filter; echo 1 > $T/events/syscalls/$e/enable
    done
    echo 1 > $T/tracing_on; <the move>; echo 0 > $T/tracing_on; cat $T/trace > trace.txt

and write a marks file with the move's start (CLOCK_MONOTONIC ns) and the nodes' PIDs:

    join start 38298623376025
    pids 127.0.0.1=30603 127.0.0.2=30615 127.0.0.3=30652

then: bench/tracestalls.py trace.txt marks [min µs, default 300]. Times are ms from the start.
Pair it with bench/slowtrace.py and the writer's `--log-slow-us` log for the requests themselves.
"""
from __future__ import annotations

import collections
import re
import sys

LINE = re.compile(r"^\s*(.+?)-(\d+)\s+\(\s*(\S+)\)\s+\[(\d+)\]\s+\S+\s+(\d+\.\d+): (\w+):?(.*)$")
SKIP = {"trace_event_raw_event_sched_switch", "__traceiter_sched_switch", "__schedule", "schedule",
        "io_schedule", "schedule_timeout", "io_schedule_timeout"}


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print("usage: tracestalls.py TRACE MARKS [MIN_US]", file=sys.stderr)
        return 64
    marks = open(argv[2]).read()
    min_us = float(argv[3]) if len(argv) > 3 else 300
    t0 = int(re.search(r"start (\d+)", marks).group(1)) / 1e9
    names = {int(p): a for a, p in re.findall(r"(\d+\.\d+\.\d+\.\d+)=(\d+)", marks)}
    lines = open(argv[1], errors="replace").read().splitlines()
    tgid: dict[int, int] = {}
    futex_in: dict[int, float] = {}
    dsleep: dict[int, tuple[float, str, list[str]]] = {}
    running: dict[int, tuple[float, str]] = {}
    cpu_ms: dict[int, dict[str, float]] = collections.defaultdict(lambda: collections.defaultdict(float))
    stalls = []

    def who(tid: int) -> str:
        g = tgid.get(tid)
        return names.get(g, str(g))

    def account(label: str, a: float, b: float) -> None:
        while a < b:
            k = int((a - t0) * 100)
            e = min(b, max(t0 + (k + 1) / 100, a + 1e-7))
            cpu_ms[k][label] += (e - a) * 1e3
            a = e

    for i, line in enumerate(lines):
        m = LINE.match(line)
        if not m:
            continue
        comm, tid_s, tg_s, cpu_s, ts_s, event, rest = m.groups()
        tid, ts, cpu = int(tid_s), float(ts_s), int(cpu_s)
        if tg_s.isdigit():
            tgid[tid] = int(tg_s)
        if event == "sys_futex":
            if "op:" in rest:
                if int(re.search(r"op: (0x[0-9a-f]+)", rest).group(1), 16) & 0x7F in (0, 6, 9, 11, 13):
                    futex_in[tid] = ts
            elif tid in futex_in:
                start = futex_in.pop(tid)
                if (ts - start) * 1e6 >= min_us:
                    stalls.append((start, (ts - start) * 1e6, "lock wait", comm, tid, ""))
        elif event == "sched_switch":
            f = dict(re.findall(r"(\w+)=(\S+)", rest))
            nxt, prev = int(f["next_pid"]), int(f["prev_pid"])
            if cpu in running:
                a, label = running[cpu]
                account(label, a, ts)
            running[cpu] = (ts, "idle" if nxt == 0 else (names.get(tgid.get(nxt)) or "other"))
            if nxt in dsleep:
                start, c, stack = dsleep.pop(nxt)
                if (ts - start) * 1e6 >= min_us:
                    stalls.append((start, (ts - start) * 1e6, "disk sleep", c, nxt, " < ".join(stack[:8])))
            if f["prev_state"].startswith("D"):
                stack = []
                j = i + 1
                if j < len(lines) and "<stack trace>" in lines[j]:
                    j += 1
                    while j < len(lines) and lines[j].startswith(" =>"):
                        name = lines[j][4:].strip()
                        if name not in SKIP:
                            stack.append(name)
                        j += 1
                dsleep[prev] = (ts, f["prev_comm"], stack)
    print(f"Lock waits of event loops and disk sleeps of {min_us:.0f} µs or more:")
    for start, us, kind, comm, tid, stack in sorted(stalls):
        print(f"  {(start - t0) * 1e3:+8.1f} ms {us:7.0f} µs {kind:10} {comm:16} {who(tid)} {stack}")
    labels = sorted(names.values()) + ["other", "idle"]
    print("\nCPU ms per 10 ms, by node process:")
    print("     ms " + " ".join(f"{x:>10}" for x in labels))
    for k in sorted(k for k in cpu_ms if k >= -5):
        print(f"  {k * 10:+5d} " + " ".join(f"{cpu_ms[k].get(x, 0):10.1f}" for x in labels))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
