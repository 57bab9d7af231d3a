#!/usr/bin/env python3
"""Record exact replies of ROMA 1.3.0 cluster/peer commands on a 3-node Ruby cluster
A=127.0.0.1_10001, B=127.0.0.2_10002, C=127.0.0.3_10003 (mkroute -r 2), all started.
usage: peer_commands.py  (writes peer-commands.json / peer-commands.md beside it)"""
import sys, os, zlib, time, re
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE); sys.path.insert(0, os.path.join(HERE, 'tools'))
from tx import Recorder
from romakey import digest, vnode, routing, find_keys

NODES = {'A': ('127.0.0.1', 10001), 'B': ('127.0.0.2', 10002), 'C': ('127.0.0.3', 10003)}
NID = {k: f'{h}_{p}' for k, (h, p) in NODES.items()}
R = Recorder()
def st(label, req, n, fresh=False, **kw):
    h, p = NODES[n]
    return R.step(f'{n}: {label}', req, p, host=h, fresh=fresh, **kw)
CRLF = b'\r\n'
def summ(r): return f'<{len(r)} bytes, {r.count(CRLF)} CRLFs; first 300: {r[:300]!r} ... last 40: {r[-40:]!r}>'
def binsumm(r):
    i = r.find(CRLF)
    return f'<total {len(r)} bytes; header line {r[:i+2]!r}; payload hex first 64 bytes: {r[i+2:i+2+64].hex()}; last 12 bytes {r[-12:]!r}>'

v_idx = routing('127.0.0.1:10001')
AB = [NID['A'], NID['B']]
R.note('routing', f'keys: d = low32(SHA1(key)) big-endian, vn = d & 0xFF800000; node list from routingdump json of A')

# ---------------------------------------------------------------- routing / system commands
vn_known = 0
st('getroute 0 (known vn)', b'getroute 0\r\n', 'A', fresh=True)
st('getroute 0 on B', b'getroute 0\r\n', 'B', fresh=True)
st('getroute 8388608 (known vn)', b'getroute 8388608\r\n', 'A')
st('getroute 1 (unknown vn)', b'getroute 1\r\n', 'A')
st('getroute 4294967296 (out of range)', b'getroute 4294967296\r\n', 'A')
st('getroute (no argument)', b'getroute\r\n', 'A')
st('getroute -8388608', b'getroute -8388608\r\n', 'A')
# setroute: use vn 4286578688 (last vnode) with its own current node list so the cluster is unchanged
vn_s = 4286578688
nl = ' '.join(v_idx[vn_s]).encode()
r = st(f'getroute {vn_s} (before setroute)', b'getroute %d\r\n' % vn_s, 'A')
clk = int(r.split()[0])
st('setroute with the clock getroute printed (clk) -> old?', b'setroute %d %d %s\r\n' % (vn_s, clk, nl), 'A')
st('setroute with clk+1 (valid)', b'setroute %d %d %s\r\n' % (vn_s, clk + 1, nl), 'A')
st('getroute after valid setroute', b'getroute %d\r\n' % vn_s, 'A')
st('setroute same clock again (clk+1)', b'setroute %d %d %s\r\n' % (vn_s, clk + 1, nl), 'A')
st('setroute old clock (clk-5)', b'setroute %d %d %s\r\n' % (vn_s, clk - 5, nl), 'A')
st('getroute after rejected setroute', b'getroute %d\r\n' % vn_s, 'A')
st('setroute unknown vn 1', b'setroute 1 100 %s\r\n' % nl, 'A')
st('setroute fewer than 3 args (vn clk)', b'setroute %d 100\r\n' % vn_s, 'A')
st('setroute fewer args, trailing space (vn clk + " ")', b'setroute %d 100 \r\n' % vn_s, 'A')
st('setroute empty node id (double space)', b'setroute %d 100  %s\r\n' % (vn_s, nl), 'A')
st('setroute non-ascii node id', b'setroute %d 100 \xc3\xa9\r\n' % vn_s, 'A')
st('setroute non-numeric clock "abc" (to_i=0, old)', b'setroute %d abc %s\r\n' % (vn_s, nl), 'A')
st('getroute on B for same vn (not broadcast)', b'getroute %d\r\n' % vn_s, 'B')
st('mklhash 0', b'mklhash 0\r\n', 'A')
st('mklhash 0 on B', b'mklhash 0\r\n', 'B')
st('mklhash 0 on C', b'mklhash 0\r\n', 'C')
st('mklhash 00', b'mklhash 00\r\n', 'A')
st('mklhash 01', b'mklhash 01\r\n', 'A')
st('mklhash 0000000000 (leaf, vn 0)', b'mklhash 0000000000\r\n', 'A')
st('mklhash 0111111111 (leaf, last vn)', b'mklhash 0111111111\r\n', 'A')
st('mklhash 00000000000 (too deep)', b'mklhash 00000000000\r\n', 'A')
st('mklhash 1 (unknown id)', b'mklhash 1\r\n', 'A')
st('mklhash (no arg)', b'mklhash\r\n', 'A')
st('mklhash 0 extra', b'mklhash 0 extra\r\n', 'A')
for n in 'ABC':
    st('whoami', b'whoami\r\n', n, fresh=True)
st('version', b'version\r\n', 'A')
st('nodelist', b'nodelist\r\n', 'A')
st('nodelist on C', b'nodelist\r\n', 'C')
st('create_nodes_from_v_idx', b'create_nodes_from_v_idx\r\n', 'A')
st('nodelist after create_nodes_from_v_idx', b'nodelist\r\n', 'A')
st('enabled_repetition_in_routing?', b'enabled_repetition_in_routing?\r\n', 'A')
st('enabled_repetition_in_routing? x', b'enabled_repetition_in_routing? x\r\n', 'A')
st('history_of_lost', b'history_of_lost\r\n', 'A')
st('history_of_lost 20000101000000', b'history_of_lost 20000101000000\r\n', 'A')
st('history_of_lost bad', b'history_of_lost bad\r\n', 'A')
st('get_key_info foo', b'get_key_info foo\r\n', 'A')
st('get_key_info (no arg)', b'get_key_info\r\n', 'A')
st('routingdump json', b'routingdump json\r\n', 'A', store_reply=summ)
st('routingdump bin', b'routingdump bin\r\n', 'A', store_reply=binsumm)
st('routingdump (no arg: Marshal)', b'routingdump\r\n', 'A', store_reply=binsumm)
st('routingdump yaml', b'routingdump yaml\r\n', 'A', store_reply=summ)
st('routingdump yamlbytes', b'routingdump yamlbytes\r\n', 'A')
st('routingdump foo', b'routingdump foo\r\n', 'A')
for n in 'ABC':
    st('stat routing', b'stat routing\r\n', n, fresh=True)
for n in 'ABC':
    st('stat stats.', b'stat stats.\r\n', n, fresh=True)
def counters(tag):
    for n in 'ABC':
        st(f'counters {tag}', b'stat (write_count|read_count|delete_count|redundant_count|out_count|out_message_count)\r\n', n, fresh=True)
counters('BEFORE data path')

# ---------------------------------------------------------------- data path
k1, kf, ke, kx, kz, kd, ko = find_keys(v_idx, AB, 7, 'pk')
gkeys = []
for prim in 'ABC':
    i = 0
    while True:
        k = f'g{prim}{i}'; i += 1
        if v_idx[vnode(k)][0] == NID[prim]: gkeys.append(k); break
R.note('keys', f'[A,B] keys: k1={k1} kf={kf} ke={ke} kx={kx} kz={kz} kd={kd} ko={ko}; d(k1)={digest(k1)} vn(k1)={vnode(k1)}; gets keys with primaries A,B,C: {gkeys} (node lists {[v_idx[vnode(k)] for k in gkeys]})')
K = lambda s: s.encode()
d1 = digest(k1)
st('set k1 via A (primary)', b'set %s 0 0 3\r\nabc\r\n' % K(k1), 'A', fresh=True)
for n in 'ABC':
    st('get k1', b'get %s\r\n' % K(k1), n, fresh=True)
st('set k1 via B (secondary)', b'set %s 0 0 3\r\nbcd\r\n' % K(k1), 'B')
st('set k1 via C (not in list)', b'set %s 0 0 3\r\ncde\r\n' % K(k1), 'C')
for n in 'ABC':
    st('gets k1', b'gets %s\r\n' % K(k1), n)
for k in gkeys:
    st(f'set {k} via A', b'set %s 0 0 2\r\nv%s\r\n' % (K(k), K(k[1])), 'A')
gl = ' '.join(gkeys).encode()
for n in 'ABC':
    st(f'gets {gl.decode()} (primaries A,B,C) via {n}', b'gets %s\r\n' % gl, n)
st('gets reversed order via C', b'gets %s\r\n' % ' '.join(reversed(gkeys)).encode(), 'C')
st('get multi (A,B,C keys) via C', b'get %s\r\n' % gl, 'C')
st('gets with missing key + hash suffix', b'gets nokey %s\x1broma\r\n' % K(gkeys[0]), 'C')
for n in 'ABC':
    st('fget k1', b'fget %s\r\n' % K(k1), n)
st('fget k1\\x1broma on A', b'fget %s\x1broma\r\n' % K(k1), 'A')
st('fget nokey on A', b'fget nokeyAB\r\n', 'A')
# f-commands
df = digest(kf)
st(f'fset kf <d={df}> 0 3 to A', b'fset %s %d 0 3\r\nfff\r\n' % (K(kf), df), 'A')
st('fset kf 0 (digest 0) 0 3 to A', b'fset %s 0 0 3\r\nggg\r\n' % K(kf), 'A')
st('fset kf <d> to B (secondary)', b'fset %s %d 0 3\r\nhhh\r\n' % (K(kf), df), 'B')
st('get kf on A after fset on B', b'get %s\r\n' % K(kf), 'A')
st('fset kf <d> to C (not in list)', b'fset %s %d 0 3\r\niii\r\n' % (K(kf), df), 'C')
st('fset kf with WRONG digest 0x... of a C-only vnode to C', b'fset %s %d 0 3\r\njjj\r\n' % (K(kf), [x for x in v_idx if NID['C'] in v_idx[x]][0]), 'C')
st('fset kf\\x1broma <d> 0 3 to A', b'fset %s\x1broma %d 0 3\r\nkkk\r\n' % (K(kf), df), 'A')
st('fadd kf (exists) to A', b'fadd %s %d 0 1\r\nx\r\n' % (K(kf), df), 'A')
st('fadd kfnew to A', b'fadd %s_n %d 0 1\r\nx\r\n' % (K(kf), digest(kf + '_n')), 'A')
st('freplace kf to A', b'freplace %s %d 0 3\r\nrep\r\n' % (K(kf), df), 'A')
st('freplace missing to A', b'freplace nokeyAB %d 0 3\r\nrep\r\n' % digest('nokeyAB'), 'A')
st('fappend kf to A', b'fappend %s %d 0 2\r\n_a\r\n' % (K(kf), df), 'A')
st('fprepend kf to A', b'fprepend %s %d 0 2\r\np_\r\n' % (K(kf), df), 'A')
r = st('gets kf on A', b'gets %s\r\n' % K(kf), 'A')
cas = int(r.split(b'\r\n')[0].split()[4])
st(f'fcas kf <d> 0 3 <cas={cas}> (match)', b'fcas %s %d 0 3 %d\r\ncas\r\n' % (K(kf), df, cas), 'A')
st('fcas kf stale cas', b'fcas %s %d 0 3 %d\r\nbad\r\n' % (K(kf), df, cas), 'A')
st('fcas missing key', b'fcas nokeyAB %d 0 3 1\r\nbad\r\n' % digest('nokeyAB'), 'A')
st('fset kf = 10', b'fset %s %d 0 2\r\n10\r\n' % (K(kf), df), 'A')
st('fincr kf <d> 5', b'fincr %s %d 5\r\n' % (K(kf), df), 'A')
st('fdecr kf <d> 3', b'fdecr %s %d 3\r\n' % (K(kf), df), 'A')
st('fincr kf 0 (digest 0) 1', b'fincr %s 0 1\r\n' % K(kf), 'A')
st('fincr missing', b'fincr nokeyAB %d 1\r\n' % digest('nokeyAB'), 'A')
st('fincr kf on C', b'fincr %s %d 1\r\n' % (K(kf), df), 'C')
st('fset_expt kf 100 (A)', b'fset_expt %s 100\r\n' % K(kf), 'A')
st('fset_expt kf on C', b'fset_expt %s 100\r\n' % K(kf), 'C')
st('fset_expt missing (A)', b'fset_expt nokeyAB 100\r\n', 'A')
st('get_expt kf unix on A', b'get_expt %s unix\r\n' % K(kf), 'A', note='expt = now+100')
st('get_expt kf on A', b'get_expt %s\r\n' % K(kf), 'A')
st('get_expt kf via C (forwarded)', b'get_expt %s\r\n' % K(kf), 'C')
st('get_expt kf unix via C (forwarded)', b'get_expt %s unix\r\n' % K(kf), 'C')
st('get_expt missing via C', b'get_expt nokeyAB\r\n', 'C')
st('get_expt missing on A', b'get_expt nokeyAB\r\n', 'A')
st('get_expt kf bogus', b'get_expt %s bogus\r\n' % K(kf), 'A')
st('fdelete kf on C', b'fdelete %s\r\n' % K(kf), 'C')
st('fdelete kf on B (secondary)', b'fdelete %s\r\n' % K(kf), 'B')
st('fdelete kf on A again (deletemark)', b'fdelete %s\r\n' % K(kf), 'A')
st('fdelete missing on A', b'fdelete nokeyAB\r\n', 'A')
# rset / rzset / rdelete / out
dx = digest(kx)
st('set kx via A', b'set %s 0 0 2\r\nv0\r\n' % K(kx), 'A')
r = st('gets kx on B', b'gets %s\r\n' % K(kx), 'B')
clkx = int(r.split(b'\r\n')[0].split()[4])
st(f'rset kx\\x1broma <d> <clk+1={clkx+1}> 0 3 to B (accept)', b'rset %s\x1broma %d %d 0 3\r\nnew\r\n' % (K(kx), dx, clkx + 1), 'B')
st('gets kx on B', b'gets %s\r\n' % K(kx), 'B')
st('rset same clk again (reject)', b'rset %s\x1broma %d %d 0 3\r\nold\r\n' % (K(kx), dx, clkx + 1), 'B')
st('rset older clk (reject)', b'rset %s\x1broma %d %d 0 3\r\nold\r\n' % (K(kx), dx, clkx), 'B')
st('rset digest 0 new key on C (not owner: accepted anyway?)', b'rset rnew\x1broma 0 5 0 3\r\nabc\r\n', 'C')
st('rset without \\x1broma', b'rset %s %d %d 0 3\r\nnoh\r\n' % (K(kx), dx, clkx + 2), 'B')
st('rset unknown hash name', b'rset %s\x1bnohash %d %d 0 3\r\nnoh\r\n' % (K(kx), dx, clkx + 3), 'B')
z = zlib.compress(b'zipped-value')
st(f'rzset kx\\x1broma <d> <clk+10> 0 {len(z)} (zlib)', b'rzset %s\x1broma %d %d 0 %d\r\n%s\r\n' % (K(kx), dx, clkx + 10, len(z), z), 'B')
st('get kx on B', b'get %s\r\n' % K(kx), 'B')
st('rzset bad zlib', b'rzset %s\x1broma %d %d 0 3\r\nxyz\r\n' % (K(kx), dx, clkx + 11), 'B')
st('rzset with expt 0x7fffffff', b'rzset %s\x1broma %d %d 2147483647 %d\r\n%s\r\n' % (K(kx), dx, clkx + 12, len(z), z), 'B')
r = st('gets kd on A (after set)', b'set %s 0 0 1\r\nd\r\ngets %s\r\n' % (K(kd), K(kd)), 'A')
clkd = int(r.split(b'\r\n')[1].split()[4])
st('rdelete kd\\x1broma <clk-1> on B (older)', b'rdelete %s\x1broma %d\r\n' % (K(kd), clkd - 1), 'B')
st('rdelete kd\\x1broma <clk+1> on B', b'rdelete %s\x1broma %d\r\n' % (K(kd), clkd + 1), 'B')
st('rdelete kd again', b'rdelete %s\x1broma %d\r\n' % (K(kd), clkd + 2), 'B')
st('rdelete missing', b'rdelete nokeyAB\x1broma 5\r\n', 'B')
st('get kd on B', b'get %s\r\n' % K(kd), 'B')
st('set ko via A', b'set %s 0 0 1\r\no\r\n' % K(ko), 'A')
st(f'out ko\\x1broma <vn={vnode(ko)}> on B', b'out %s\x1broma %d\r\n' % (K(ko), vnode(ko)), 'B')
st('out again', b'out %s\x1broma %d\r\n' % (K(ko), vnode(ko)), 'B')
st('get ko on B after out', b'get %s\r\n' % K(ko), 'B')
st('get ko on A', b'get %s\r\n' % K(ko), 'A')
# errors through non-owner C
st('set ke via A', b'set %s 0 0 1\r\ne\r\n' % K(ke), 'A')
st('add existing ke via C', b'add %s 0 0 1\r\nx\r\n' % K(ke), 'C')
st('replace missing via C', b'replace nokeyAB 0 0 1\r\nx\r\n' % (), 'C')
st('append missing via C', b'append nokeyAB 0 0 1\r\nx\r\n', 'C')
st('cas mismatch ke via C', b'cas %s 0 0 1 999\r\nx\r\n' % K(ke), 'C')
st('cas missing via C', b'cas nokeyAB 0 0 1 1\r\nx\r\n', 'C')
st('incr missing via C', b'incr nokeyAB 1\r\n', 'C')
st('incr ke (non-numeric "e") via C', b'incr %s 1\r\n' % K(ke), 'C')
st('delete missing via C', b'delete nokeyAB\r\n', 'C')
st('delete ke via C', b'delete %s\r\n' % K(ke), 'C')
st('delete ke via C again', b'delete %s\r\n' % K(ke), 'C')
st('set_expt missing via C', b'set_expt nokeyAB 100\r\n', 'C')
st('set ke via B (secondary forward)', b'set %s 0 0 1\r\nq\r\n' % K(ke), 'B')
st('incr via B', b'set %s 0 0 1\r\n7\r\nincr %s 2\r\n' % (K(ke), K(ke)), 'B')
st('set noreply via C (forwarded)', b'set %s 0 0 1 noreply\r\nz\r\n' % K(ke), 'C')
st('get ke via C', b'get %s\r\n' % K(ke), 'C')
st('delete ke noreply via C', b'delete %s noreply\r\n' % K(ke), 'C')
st('get_key_info k1', b'get_key_info %s\r\n' % K(k1), 'C')
counters('AFTER data path')
R.dump(os.path.join(HERE, 'peer-commands.json'), os.path.join(HERE, 'peer-commands.md'),
       'Peer / cluster commands on a 3-node Ruby ROMA 1.3.0 cluster',
       'Recorded by `peer_commands.py`. Nodes: A=127.0.0.1_10001, B=127.0.0.2_10002, C=127.0.0.3_10003 (mkroute -r 2, TokyoCabinet). '
       'Keys are chosen (tools/romakey.py) so that their vnode node list is [A,B] (A primary, B secondary, C not in the list). '
       '`conn` new = fresh TCP connection. Replies = all bytes until 0.5 s idle.')
