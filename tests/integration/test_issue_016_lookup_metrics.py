#!/usr/bin/env python3
"""
The store's lookup cache is visible on /metrics.

skydns_lookup_cache_hits_total and skydns_lookup_cache_misses_total are what an
operator sizes `[Store] lookup-cache` by. Checks, against one worker: the first
query for a name misses and the next ones hit (a hit per query, not per batch);
a name that does not exist is remembered too (NXDOMAIN); with `lookup-cache = 0`
nothing hits.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import dns.message  # noqa: E402
import dns.rcode  # noqa: E402

from skytest import Checks, Skydns, free_port, http_request, udp_query  # noqa: E402

ZONE = "$ORIGIN skydns.local.\n$TTL 60\nwww IN A 10.0.0.10\ndb IN A 10.0.0.11\n"


def counts(aport, want_total=None):
    """(hits, misses) from /metrics; with want_total, wait until hits+misses reach it
    (workers publish after each batch)."""
    h = m = None
    for _ in range(50):
        _, body = http_request(aport, "GET", "/metrics", timeout=5)
        for line in body.decode(errors="replace").splitlines():
            if line.startswith("skydns_lookup_cache_hits_total "):
                h = int(float(line.split()[-1]))
            if line.startswith("skydns_lookup_cache_misses_total "):
                m = int(float(line.split()[-1]))
        if h is not None and m is not None and (want_total is None or h + m >= want_total):
            break
        time.sleep(0.1)
    return h, m


def ask(port, name, n):
    rcodes = set()
    for _ in range(n):
        q = dns.message.make_query(name, "A")
        rcodes.add(dns.message.from_wire(udp_query(port, q.to_wire(), timeout=2.0)).rcode())
    return rcodes


def start(extra=""):
    aport = free_port()
    sky = Skydns(ZONE, extra_conf="[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\n%s"
                 % (aport, extra))
    return sky.start(), aport


def main():
    ck = Checks()
    sky, aport = start()
    try:
        h0, m0 = counts(aport)
        ck.ok(h0 is not None and m0 is not None, "both series on /metrics: %r %r" % (h0, m0))
        h0, m0 = h0 or 0, m0 or 0
        ck.eq(ask(sky.port, "www.skydns.local.", 10), {dns.rcode.NOERROR}, "www answers")
        h1, m1 = counts(aport, h0 + m0 + 10)
        ck.ok(m1 - m0 >= 1, "the first www misses: %d new misses" % (m1 - m0))
        ck.ok(h1 - h0 >= 9, "the next nine hit: %d new hits" % (h1 - h0))
        ck.eq(ask(sky.port, "nope.skydns.local.", 5), {dns.rcode.NXDOMAIN}, "nope is NXDOMAIN")
        h2, m2 = counts(aport, h1 + m1 + 5)
        ck.ok(h2 - h1 >= 4, "a name that does not exist is remembered: %d new hits" % (h2 - h1))
    finally:
        sky.stop()

    sky, aport = start("[Store]\nlookup-cache = 0\n")
    try:
        ck.eq(ask(sky.port, "www.skydns.local.", 5), {dns.rcode.NOERROR}, "www, cache off")
        time.sleep(0.3)
        ck.eq(counts(aport)[0], 0, "lookup-cache = 0: no hits")
    finally:
        sky.stop()
    ck.finish()


if __name__ == "__main__":
    main()
