#!/usr/bin/env python3
"""Load N keys 'jk<i>' (value 'val<i>') through node A so every vnode holds a few keys before the join capture."""
import socket, sys, time
N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
s = socket.create_connection(('127.0.0.1', 10001))
f = s.makefile('rb')
for i in range(N):
    v = b'val%d' % i
    s.sendall(b'set jk%d 0 0 %d\r\n%s\r\n' % (i, len(v), v))
    assert f.readline() == b'STORED\r\n'
print('loaded', N)
