#!/usr/bin/env python3
"""Turn a loopback pcap of the Ruby cluster into a labelled chronological timeline.
usage: traffic_report.py PCAP T0FILE OUT_PREFIX [ss-snapshot files...] [--ops ops.json]
Originating node of a connection is found from `ss -tnp` snapshots (client port -> pid -> listening port),
or from ops.json (our own client sockets)."""
import sys, os, json, re
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pcapstreams import streams
args = sys.argv[1:]
ops = None
if '--ops' in args:
    i = args.index('--ops'); ops = json.load(open(args[i + 1])); del args[i:i + 2]
pcap, t0f, outp = args[:3]; ssfiles = args[3:]
t0 = float(open(t0f).read())
PID2NODE = {}
for l in os.popen("ss -ltnpH").read().splitlines():
    m = re.search(r':(1000[1-4])\s.*pid=(\d+)', l)
    if m: PID2NODE[m.group(2)] = {'10001': 'A', '10002': 'B', '10003': 'C', '10004': 'D'}[m.group(1)]
extra = os.environ.get('PIDMAP')  # e.g. "9871=A,9874=B"
if extra:
    for kv in extra.split(','): p, n = kv.split('='); PID2NODE[p] = n
port2node = {}
for f in ssfiles:
    for l in open(f):
        m = re.search(r'(127\.0\.0\.\d+):(\d+)\s+(127\.0\.0\.\d+):(1000[1-4])\s.*pid=(\d+)', l)
        if m and m.group(5) in PID2NODE: port2node[int(m.group(2))] = PID2NODE[m.group(5)]
if ops:
    for o in ops['ops']: port2node[o[1]] = 'client'
SRV = {'10001': 'A', '10002': 'B', '10003': 'C', '10004': 'D'}
conns, _ = streams(pcap, t0)
ev = []
for i, c in enumerate(conns):
    cport = int(c['client'].split(':')[1]); sport = c['server'].split(':')[1]
    c['from'] = port2node.get(cport, '?'); c['to'] = SRV.get(sport, sport); c['id'] = i
    for s in c['segs']:
        ev.append((s[0], i, c['from'] if s[1] == 'c>s' else c['to'], c['to'] if s[1] == 'c>s' else c['from'], s[1], s[2]))
    for f in c['fin']:
        ev.append((f[0], i, '', '', f[1], f[2]))
    if c['syn']:
        ev.append((c['t_first'], i, c['from'], c['to'], 'c>s', 'SYN'))
ev.sort()
json.dump(dict(t0=t0, port2node={str(k): v for k, v in port2node.items()}, connections=conns), open(outp + '.json', 'w'), indent=1)
with open(outp + '.timeline.txt', 'w') as f:
    f.write('# t(s since phase start)  conn#  from->to  dir  bytes   (A=127.0.0.1_10001 B=127.0.0.2_10002 C=127.0.0.3_10003 D=127.0.0.4_10004; client=our test socket; ?=unknown originator)\n')
    for e in ev:
        c = conns[e[1]]
        f.write(f"{e[0]:10.4f} #{e[1]:<3} {c['from']}->{c['to']} {e[4]} {e[5] if len(e[5]) < 2000 else e[5][:2000] + '...<%d chars>' % len(e[5])}\n")
print(len(conns), 'connections,', len(ev), 'events ->', outp + '.timeline.txt')
