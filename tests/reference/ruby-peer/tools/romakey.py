#!/usr/bin/env python3
"""ROMA key -> digest / vnode helper (ROMA 1.3.0: dgst_bits 32, div_bits 9).
d  = Digest::SHA1.hexdigest(key).hex % 2**32  == low 32 bits of SHA1(key), i.e. big-endian uint32 of sha1[16:20]
vn = d & 0xFF800000   (top div_bits=9 bits of d)
usage: romakey.py KEY...                 -> prints key, d, hex, vn
       romakey.py --route HOST:PORT KEY... -> also prints the node list for vn (via `routingdump json`)
       romakey.py --find HOST:PORT A,B [N] -> N keys 'pk<i>' whose node list is exactly [A,B]"""
import hashlib, sys, socket, json, time

DGST_BITS, DIV_BITS = 32, 9
MASK = ((1 << DIV_BITS) - 1) << (DGST_BITS - DIV_BITS)   # 0xFF800000

def digest(key):
    if isinstance(key, str): key = key.encode()
    return int.from_bytes(hashlib.sha1(key).digest()[-4:], 'big')

def vnode(key):
    return digest(key) & MASK

def routing(hostport):
    h, p = hostport.split(':')
    s = socket.create_connection((h, int(p)))
    s.sendall(b'routingdump json\r\n')
    buf = b''
    while not buf.endswith(b'\r\nEND\r\n'):
        d = s.recv(65536)
        if not d: break
        buf += d
    s.close()
    j = json.loads(buf[:-len(b'\r\nEND\r\n')])
    v_idx = [x for x in j if isinstance(x, dict) and '0' in x and isinstance(x['0'], list)][0]
    return {int(k): v for k, v in v_idx.items()}

def find_keys(v_idx, nodes, n=1, prefix='pk'):
    out = []; i = 0
    while len(out) < n:
        k = f'{prefix}{i}'; i += 1
        if v_idx[vnode(k)] == nodes: out.append(k)
    return out

if __name__ == '__main__':
    a = sys.argv[1:]
    if a and a[0] == '--find':
        v = routing(a[1]); nodes = a[2].split(','); n = int(a[3]) if len(a) > 3 else 1
        for k in find_keys(v, nodes, n): print(k, digest(k), vnode(k))
    else:
        v = None
        if a and a[0] == '--route': v = routing(a[1]); a = a[2:]
        for k in a:
            d = digest(k); print(k, d, hex(d), vnode(k), *( [v[vnode(k)]] if v else []))
