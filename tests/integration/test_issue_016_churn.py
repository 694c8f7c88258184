"""
Issue 16 (churn): a commit no longer empties the workers' lookup caches; the first renew
after it forgets only the names the store's commit log lists. An answer must never be
older than the last commit that returned.

Method: the real skydns with two workers, a zone imported and the API on. Every name
the test will change is asked first (A, AAAA) from several source ports, so both
workers hold it in their caches: answers, NODATA and NXDOMAIN alike, and a name
that will become an empty non-terminal. Then each API write (a commit in the API's
thread, through the store like a watcher's) is followed at once by the same questions,
which must show the new data: a changed address set, a created name that was
NXDOMAIN, a deleted name, an AAAA added where NODATA was cached, a name under a
cached NXDOMAIN (which turns NOERROR/NODATA). Unchanged names keep answering. With
a cache that forgot nothing on commit (or only the changed name, not its ancestors)
these checks fail.
"""
import json
import os
import sys
import time

import dns.message
import dns.rcode
import dns.rdatatype

sys.path.insert(0, os.path.dirname(__file__))
from skytest import Checks, Skydns, free_port, http_request, udp_query

c = Checks()
TOKEN = "t0ken-016"
ZONE = "$ORIGIN skydns.local.\n$TTL 60\n" + "".join(
    "z%d A 10.7.%d.%d\n" % (i, i // 256, i % 256) for i in range(200))
ASKS = 6  # source ports per question: both workers see each one


def api(port, method, path, body=None):
    hdrs = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"}
    data = json.dumps(body).encode() if body is not None else None
    st, _ = http_request(port, method, "/skydns/api/" + path, data, hdrs, timeout=10)
    return st


def ask(port, name, rtype="A"):
    """(rcode text, sorted answer strings) of every one of ASKS tries; all must agree."""
    seen = set()
    for _ in range(ASKS):
        q = dns.message.make_query(name, rtype)
        r = dns.message.from_wire(udp_query(port, q.to_wire()))
        ans = sorted(rd.to_text() for rr in r.answer for rd in rr)
        seen.add((dns.rcode.to_text(r.rcode()), tuple(ans)))
    return seen.pop() if len(seen) == 1 else ("DISAGREE", tuple(sorted(seen)))


aport = free_port()
extra = "[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\napi-token = %s\n" % (aport, TOKEN)
with Skydns(ZONE, extra_conf=extra, workers=2) as d:
    d.start()
    for _ in range(100):
        if http_request(aport, "GET", "/health", timeout=1.0)[0] == 200:
            break
        time.sleep(0.05)
    P = d.port
    D = ".skydns.local."
    c.eq(api(aport, "POST", "svc", {"type": "A", "ips": ["10.1.0.1"]}), 201, "POST svc")

    for rnd in range(8):
        new, sub = "new%d" % rnd, "sub%d" % rnd
        # Into every worker's cache: the answer, NODATA, NXDOMAINs.
        for _ in range(2):
            c.eq(ask(P, "svc" + D)[0], "NOERROR", "svc answers (round %d)" % rnd)
            c.eq(ask(P, "svc" + D, "AAAA"), ("NOERROR", ()), "svc AAAA NODATA (round %d)" % rnd)
            c.eq(ask(P, new + D), ("NXDOMAIN", ()), "%s NXDOMAIN before it is written" % new)
            c.eq(ask(P, sub + D), ("NXDOMAIN", ()), "%s NXDOMAIN before a child" % sub)
            c.eq(ask(P, "z%d" % rnd + D), ("NOERROR", ("10.7.0.%d" % rnd,)), "z%d" % rnd)

        ip = "10.1.%d.%d" % (rnd + 1, rnd + 2)
        c.eq(api(aport, "PUT", "svc", {"type": "A", "ips": [ip]}), 200, "PUT svc %s" % ip)
        c.eq(ask(P, "svc" + D), ("NOERROR", (ip,)), "svc shows %s right after the PUT" % ip)

        c.eq(api(aport, "POST", new, {"type": "A", "ips": ["10.2.0.%d" % rnd]}), 201,
             "POST " + new)
        c.eq(ask(P, new + D), ("NOERROR", ("10.2.0.%d" % rnd,)),
             "%s answers right after it was written (was a cached NXDOMAIN)" % new)

        c.eq(api(aport, "POST", "svc", {"type": "AAAA", "ips": ["fd00::%x" % (rnd + 1)]}), 201,
             "POST svc AAAA")
        c.eq(ask(P, "svc" + D, "AAAA"), ("NOERROR", ("fd00::%x" % (rnd + 1),)),
             "svc AAAA right after it was written (was a cached NODATA)")
        c.eq(api(aport, "DELETE", "svc", {"ips": ["fd00::%x" % (rnd + 1)]}), 200,
             "DELETE svc AAAA")
        c.eq(ask(P, "svc" + D, "AAAA"), ("NOERROR", ()), "svc AAAA gone right after the DELETE")

        c.eq(api(aport, "POST", "x." + sub + ".skydns.local", {"type": "A", "ips": ["10.3.0.1"]}), 201,
             "POST x." + sub)
        c.eq(ask(P, sub + D), ("NOERROR", ()),
             "%s is an empty non-terminal right after a child was written" % sub)

        c.eq(api(aport, "DELETE", new), 200, "DELETE " + new)
        c.eq(ask(P, new + D), ("NXDOMAIN", ()), "%s NXDOMAIN right after the DELETE" % new)
        c.eq(ask(P, "z%d" % rnd + D), ("NOERROR", ("10.7.0.%d" % rnd,)),
             "unchanged z%d still answers" % rnd)

c.finish()
