#!/usr/bin/env python3
"""
Issue 10 item 8: a store grown by another process. skydns runs with
map-size 16M; `skydns -import` with map-size 64M loads a zone that needs
more than 16M, so the data file grows past the daemon's map and LMDB
answers the daemon's next txn begin/renew with MDB_MAP_RESIZED. Before the
fix every local query was SERVFAIL, API writes said "store failure" and
/ready still said 200 until a restart. Now: answers carry the new data,
API writes work, /ready is 200 and /metrics counts the resize.

Also /ready must say 503 with a reason while the store cannot be read: the
test fills LMDB's reader table from this process (liblmdb through ctypes,
as a second reader process would) and expects 503, then 200 once freed.
"""
import ctypes
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from skytest import Checks, Skydns, free_port, udp_query  # noqa: E402

import dns.message  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402

TOKEN = "resize-token"
SMALL, BIG = "16M", "64M"
BIG_NAMES = 400           # x one ~60 KB TXT each: ~24 MB, past the 16M map
TXT_STRINGS = 230         # 255-octet strings per TXT record
QUERIES = 40              # fresh sockets: SO_REUSEPORT spreads them over both workers


def zone(new):
    """The zone before (new=False) and after the big import (www moves)."""
    lines = ["www 60 IN A %s" % ("10.0.0.2" if new else "10.0.0.1"),
             "keep 60 IN A 10.0.0.3"]
    if new:
        s = "\"" + "x" * 255 + "\""
        txt = " ".join([s] * TXT_STRINGS)
        lines += ["big%04d 60 IN TXT %s" % (i, txt) for i in range(BIG_NAMES)]
        lines.append("fresh 60 IN A 10.0.0.4")
    return "\n".join(lines) + "\n"


def set_map_size(conf, size):
    with open(conf) as f:
        text = f.read()
    text, n = re.subn(r"(?m)^map-size = .*$", "map-size = %s" % size, text)
    if n != 1:
        raise RuntimeError("no map-size line in %s" % conf)
    with open(conf, "w") as f:
        f.write(text)


def ask(port, name, qtype="A"):
    """(rcode, sorted answer texts) of one UDP query from a fresh socket."""
    q = dns.message.make_query(name, qtype)
    r = dns.message.from_wire(udp_query(port, q.to_wire(), timeout=3.0))
    return r.rcode(), sorted(rd.to_text() for rr in r.answer for rd in rr)


def dig(port, name):
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+time=3", "+tries=1",
                          name, "A"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"status: (\w+)", out)
    answers = re.findall(r"^\S+\s+\d+\s+IN\s+A\s+(\S+)$", out, re.M)
    return (m.group(1) if m else None), answers


def api(aport, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", aport, timeout=10)
    hdr = {"Authorization": "Bearer " + TOKEN}
    if body is not None:
        hdr["Content-Type"] = "application/json"
        body = json.dumps(body)
    try:
        conn.request(method, path, body, hdr)
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        conn.close()


def map_size_of(store_dir):
    """LMDB's own view (lmdb-utils): the map size the store records."""
    out = subprocess.run(["mdb_stat", "-e", store_dir], capture_output=True, text=True,
                         timeout=30).stdout
    m = re.search(r"Map size: (\d+)", out)
    return int(m.group(1)) if m else -1


class Asker(threading.Thread):
    """Queries `keep` all through the import: no answer may be SERVFAIL."""
    MOST, SECONDS = 30000, 300  # bounds; the import ends it much sooner

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.rcodes = {}
        self.timeouts = 0

    def run(self):
        end = time.monotonic() + self.SECONDS
        for _ in range(self.MOST):
            if self.stop.is_set() or time.monotonic() > end:
                break
            try:
                rc, _ = ask(self.port, "keep.skydns.local.")
                self.rcodes[rc] = self.rcodes.get(rc, 0) + 1
            except (socket.timeout, OSError):
                self.timeouts += 1
            time.sleep(0.002)  # ~300 queries/s: load, not a flood, on 2 shared cores


class Readers:
    """Hold every free slot of the store's reader table from this process."""
    MDB_RDONLY, MDB_NOTLS = 0x20000, 0x200000
    MDB_READERS_FULL = -30790

    def __init__(self, store_dir, most=1024):
        self.lib = ctypes.CDLL("liblmdb.so.0")
        self.env = ctypes.c_void_p()
        self.txns = []
        self.last_rc = 0
        lib = self.lib
        if lib.mdb_env_create(ctypes.byref(self.env)) != 0:
            raise RuntimeError("mdb_env_create")
        lib.mdb_env_set_maxdbs(self.env, 8)
        rc = lib.mdb_env_open(self.env, store_dir.encode(), self.MDB_RDONLY | self.MDB_NOTLS,
                              0o640)
        if rc != 0:
            raise RuntimeError("mdb_env_open: %d" % rc)
        for _ in range(most):   # bounded: the table has 512 slots
            txn = ctypes.c_void_p()
            rc = lib.mdb_txn_begin(self.env, None, self.MDB_RDONLY, ctypes.byref(txn))
            if rc != 0:
                self.last_rc = rc
                break
            self.txns.append(txn)

    def close(self):
        for txn in self.txns:
            self.lib.mdb_txn_abort(txn)
        self.txns = []
        self.lib.mdb_env_close(self.env)


def main():
    c = Checks()
    aport = free_port()
    extra = "[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\napi-token = %s\n" % (
        aport, TOKEN)
    with Skydns(None, extra_conf=extra, workers=2) as sky:
        store_dir = os.path.join(sky.dir, "store")
        set_map_size(sky.conf, SMALL)
        sky.import_zone(zone(False))
        sky.start()
        c.eq(ask(sky.port, "www.skydns.local."), (dns.rcode.NOERROR, ["10.0.0.1"]),
             "www before the import")
        c.eq(api(aport, "GET", "/ready")[0], 200, "/ready before the import")
        small_file = os.path.getsize(os.path.join(store_dir, "data.mdb"))

        # The second process: same store, a config with the larger map-size.
        big_conf = os.path.join(sky.dir, "big.conf")
        with open(sky.conf) as f, open(big_conf, "w") as g:
            g.write(f.read())
        set_map_size(big_conf, BIG)
        zpath = os.path.join(sky.dir, "big.zone")
        with open(zpath, "w") as f:
            f.write(zone(True))
        asker = Asker(sky.port)
        asker.start()
        r = subprocess.run([sky_bin(), "-config-file", big_conf, "-import", zpath],
                           capture_output=True, text=True, timeout=300)
        time.sleep(0.5)  # keep asking past the commit, while the workers re-map
        asker.stop.set()
        asker.join(timeout=30)
        n = sum(asker.rcodes.values())
        # The growth happens under load: the workers re-map while answering. A remap that
        # cannot get quiet in 100 ms (a worker preempted that long on a loaded machine)
        # fails one batch, so a couple of SERVFAILs are allowed; the old code gave one
        # for every query after the commit.
        c.ok(n > 0 and asker.rcodes.get(dns.rcode.SERVFAIL, 0) <= 2,
             "answers during the import: %r, %d timeouts" % (asker.rcodes, asker.timeouts))
        c.eq(r.returncode, 0, "skydns -import with map-size %s: %s%s" % (BIG, r.stdout,
                                                                           r.stderr))
        size = os.path.getsize(os.path.join(store_dir, "data.mdb"))
        c.ok(size > 16 << 20, "data.mdb grew past the daemon's 16M map: %d (was %d)" %
             (size, small_file))
        c.eq(map_size_of(store_dir), 64 << 20, "mdb_stat: map size the store records")

        # Every worker meets MDB_MAP_RESIZED on its next renew and must re-map.
        got = [ask(sky.port, "www.skydns.local.") for _ in range(QUERIES)]
        c.eq([g for g in got if g != (dns.rcode.NOERROR, ["10.0.0.2"])], [],
             "www after the import (new data, no SERVFAIL) over %d queries" % QUERIES)
        c.eq(ask(sky.port, "fresh.skydns.local."), (dns.rcode.NOERROR, ["10.0.0.4"]),
             "a name only the big import has")
        rc, txt = ask(sky.port, "big0399.skydns.local.", "TXT")
        c.eq(rc, dns.rcode.NOERROR, "the last big TXT (TC over UDP is fine, not SERVFAIL)")
        c.eq(dig(sky.port, "keep.skydns.local."), ("NOERROR", ["10.0.0.3"]), "dig keep")

        st, body = api(aport, "POST", "/skydns/api/later", {"type": "A",
                                                            "ips": ["192.168.10.9"]})
        c.eq(st, 201, "API write after the growth: %s" % body)
        c.eq(dig(sky.port, "later.skydns.local."), ("NOERROR", ["192.168.10.9"]),
             "the API's record answers")
        st, body = api(aport, "GET", "/ready")
        c.eq((st, body.strip()), (200, '{"status":"ready"}'), "/ready after the growth")
        st, body = api(aport, "GET", "/metrics")
        m = re.search(r"^skydns_store_map_resizes_total (\d+)$", body, re.M)
        c.ok(m and int(m.group(1)) >= 1, "metrics count the resize: %s" %
             (m.group(0) if m else "missing"))
        m = re.search(r"^skydns_store_map_size_bytes (\d+)$", body, re.M)
        c.ok(m and int(m.group(1)) >= 64 << 20, "metrics: map size after the growth")
        with open(sky.log) as f:
            log = f.read()
        c.ok("store: map re-mapped from 16 to 64 MiB" in log, "the log says the map grew")

        # A store the API cannot read: /ready 503 with a reason; answers go on.
        readers = Readers(store_dir)
        try:
            c.eq(readers.last_rc, Readers.MDB_READERS_FULL,
                 "reader table filled (%d slots held)" % len(readers.txns))
            st, body = api(aport, "GET", "/ready")
            c.eq(st, 503, "/ready while no read txn can begin: %s" % body)
            doc = json.loads(body) if body.startswith("{") else {}
            c.ok("store cannot be read" in doc.get("reason", ""),
                 "/ready says why: %s" % body)
            c.eq(ask(sky.port, "www.skydns.local."), (dns.rcode.NOERROR, ["10.0.0.2"]),
                 "workers keep their own reader slots and answer")
        finally:
            readers.close()
        c.eq(api(aport, "GET", "/ready")[0], 200, "/ready once the slots are free")
        c.ok(sky.proc.poll() is None, "skydns still running")
    c.finish()


def sky_bin():
    from skytest import SKYDNS
    return SKYDNS


if __name__ == "__main__":
    main()
