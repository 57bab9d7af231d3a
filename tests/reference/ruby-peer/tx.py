"""Tiny transcript library: send exact bytes to ROMA, record exact reply bytes (idle-timeout based)."""
import socket, time, json

IDLE = 0.5

def recv_all(s, idle=IDLE, maxwait=6.0):
    buf = b""; closed = False
    s.settimeout(idle)
    t0 = time.time()
    while time.time() - t0 < maxwait:
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            closed = True; break
        if not d:
            closed = True; break
        buf += d
    return buf, closed

class Recorder:
    def __init__(self, host="127.0.0.1"):
        self.results = []
        self.conns = {}
        self.host = host

    def conn(self, port, host=None, fresh=False):
        key = (host or self.host, port)
        if fresh and key in self.conns:
            try: self.conns[key].close()
            except Exception: pass
            del self.conns[key]
        if key not in self.conns:
            self.conns[key] = socket.create_connection(key)
        return self.conns[key]

    def step(self, label, req, port, host=None, fresh=False, note="", idle=IDLE, maxwait=6.0, store_reply=None):
        h = host or self.host
        s = self.conn(port, h, fresh)
        s.sendall(req)
        rep, closed = recv_all(s, idle, maxwait)
        r = dict(label=label, node=f"{h}:{port}", fresh=fresh, req=repr(req), rep=repr(rep) if store_reply is None else store_reply(rep), closed=closed, note=note)
        self.results.append(r)
        print(f"[{h}:{port}] {label}: {req!r} -> {r['rep']}{' [conn closed]' if closed else ''}", flush=True)
        if closed:
            self.conns.pop((h, port), None)
        return rep

    def note(self, label, text):
        self.results.append(dict(label=label, note=text))
        print(f"NOTE {label}: {text}", flush=True)

    def dump(self, path_json, path_md, title, intro=""):
        json.dump(self.results, open(path_json, "w"), indent=1)
        with open(path_md, "w") as f:
            f.write(f"# {title}\n\n{intro}\n\n")
            f.write("| # | node | conn | label | request | reply | closed |\n|---|---|---|---|---|---|---|\n")
            for i, r in enumerate(self.results):
                if "req" not in r:
                    f.write(f"| {i} | | | **{r['label']}** | {md(r['note'])} | | |\n"); continue
                f.write(f"| {i} | {r['node']} | {'new' if r['fresh'] else 'same'} | {md(r['label'])} | `{md(r['req'])}` | `{md(r['rep'])}` | {'**closed**' if r['closed'] else ''} |\n")

def md(s):
    return str(s).replace("|", "\\|").replace("\n", " ")
