#!/usr/bin/env python3
"""Phase (b) of peer-traffic: client operations whose peer-to-peer side effects are captured by tcpdump.
Writes traffic_ops.json: [t_abs, client_local_port, node, request, reply]."""
import sys, os, time, json, socket
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE); sys.path.insert(0, os.path.join(HERE, 'tools'))
from tx import recv_all
from romakey import routing, find_keys, vnode
NODES = {'A': ('127.0.0.1', 10001), 'B': ('127.0.0.2', 10002), 'C': ('127.0.0.3', 10003)}
v = routing('127.0.0.1:10001')
AB = ['127.0.0.1_10001', '127.0.0.2_10002']
tk = find_keys(v, AB, 2, 'tk')
gk = []
for prim in ['127.0.0.1_10001', '127.0.0.2_10002', '127.0.0.1_10001', '127.0.0.3_10003']:
    i = 0
    while True:
        k = f'tg{i}'; i += 1
        if v[vnode(k)][0] == prim and k not in gk: gk.append(k); break
log = []
time.sleep(2)
def op(node, req):
    s = socket.create_connection(NODES[node])
    t = time.time(); s.sendall(req); rep, _ = recv_all(s)
    log.append([t, s.getsockname()[1], node, repr(req), repr(rep)])
    print(t, s.getsockname()[1], node, req, rep, flush=True)
    s.close(); time.sleep(1.5)
op('A', b'set %s 0 0 5\r\nhello\r\n' % tk[0].encode())
op('C', b'set %s 0 0 5\r\nworld\r\n' % tk[1].encode())
op('A', b'delete %s\r\n' % tk[0].encode())
op('C', b'get %s\r\n' % tk[1].encode())
for k in gk: op('A', b'set %s 0 0 2\r\nok\r\n' % k.encode())
op('C', b'gets %s\r\n' % ' '.join(gk).encode())
op('C', b'incr %s 1\r\n' % tk[1].encode())
op('C', b'delete %s\r\n' % tk[1].encode())
json.dump(dict(keys=dict(tk=tk, gk=gk, gk_nodes=[v[vnode(k)] for k in gk]), ops=log), open(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, 'traffic_ops.json'), 'w'), indent=1)
