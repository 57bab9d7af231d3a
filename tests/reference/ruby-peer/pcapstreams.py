#!/usr/bin/env python3
"""Standard-library pcap reader: reassemble TCP streams on loopback into per-connection logs.
usage: pcapstreams.py FILE.pcap OUT.json [t0]
Each connection: client, server, syn time, and an ordered list of segments
[t_rel, 'c>s' | 's>c', bytes-repr] (payload in arrival order; retransmits dropped by seq)."""
import struct, sys, json

def read_pcap(path):
    with open(path, 'rb') as f:
        gh = f.read(24)
        magic = struct.unpack('<I', gh[:4])[0]
        endian = '<' if magic in (0xa1b2c3d4, 0xa1b23c4d) else '>'
        nano = magic in (0xa1b23c4d, 0x4d3cb2a1)
        linktype = struct.unpack(endian + 'I', gh[20:24])[0]
        while True:
            h = f.read(16)
            if len(h) < 16: break
            ts, tfrac, incl, orig = struct.unpack(endian + 'IIII', h)
            data = f.read(incl)
            yield ts + tfrac / (1e9 if nano else 1e6), linktype, data

def parse(data, linktype):
    if linktype == 1: off = 14      # ethernet
    elif linktype == 113: off = 16  # linux cooked
    elif linktype == 276: off = 20  # linux cooked v2
    elif linktype == 0: off = 4     # null/loopback
    else: raise ValueError(linktype)
    ip = data[off:]
    if ip[0] >> 4 != 4: return None
    ihl = (ip[0] & 15) * 4
    tot = struct.unpack('>H', ip[2:4])[0]
    if ip[9] != 6: return None
    src = '.'.join(map(str, ip[12:16])); dst = '.'.join(map(str, ip[16:20]))
    tcp = ip[ihl:tot]
    sp, dp, seq, ack, offflags = struct.unpack('>HHIIH', tcp[:14])
    doff = (offflags >> 12) * 4; flags = offflags & 0x3f
    return src, sp, dst, dp, seq, flags, tcp[doff:]

SERVER_PORTS = {10001, 10002, 10003, 10004}

def streams(path, t0=None):
    conns = {}; order = []
    for t, lt, data in read_pcap(path):
        if t0 is None: t0 = t
        p = parse(data, lt)
        if not p: continue
        src, sp, dst, dp, seq, flags, payload = p
        if dp in SERVER_PORTS and sp not in SERVER_PORTS or (dp in SERVER_PORTS and sp in SERVER_PORTS and sp > dp):
            key = (src, sp, dst, dp); d = 'c>s'
        else:
            key = (dst, dp, src, sp); d = 's>c'
        c = conns.get(key)
        if c is None:
            c = conns[key] = dict(client=f"{key[0]}:{key[1]}", server=f"{key[2]}:{key[3]}", t_first=round(t - t0, 6), segs=[], nxt={}, fin=[], syn=False)
            order.append(key)
        if flags & 0x02:  # SYN
            c['nxt'][d] = (seq + 1) & 0xffffffff
            if d == 'c>s': c['syn'] = True
        if flags & 0x01: c['fin'].append([round(t - t0, 6), d, 'FIN'])
        if flags & 0x04: c['fin'].append([round(t - t0, 6), d, 'RST'])
        if payload:
            exp = c['nxt'].get(d)
            if exp is not None and ((seq - exp) & 0xffffffff) > 0x7fffffff:
                continue  # retransmission of already seen bytes
            c['nxt'][d] = (seq + len(payload)) & 0xffffffff
            segs = c['segs']
            if segs and segs[-1][1] == d and abs(segs[-1][3] - t) < 0.002:
                segs[-1][2] += payload  # coalesce back-to-back segments
            else:
                segs.append([round(t - t0, 6), d, payload, t])
    out = []
    for key in order:
        c = conns[key]
        c.pop('nxt')
        c['segs'] = [[s[0], s[1], repr(bytes(s[2]))] for s in c['segs']]
        out.append(c)
    return out, t0

if __name__ == '__main__':
    t0 = float(open(sys.argv[3]).read()) if len(sys.argv) > 3 else None
    out, t0 = streams(sys.argv[1], t0)
    json.dump(dict(t0=t0, connections=out), open(sys.argv[2], 'w'), indent=1)
    for c in out:
        print(f"== {c['client']} -> {c['server']} first@{c['t_first']} syn={c['syn']} nsegs={len(c['segs'])} end={c['fin']}")
        for s in c['segs'][:6]:
            print('   ', s[0], s[1], s[2][:300])
