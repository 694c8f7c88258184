"""
Issue 14: one cache for all workers. skydns with 2 workers forwards to a
scripted upstream that counts queries. 20 names are each asked by 10
clients in turn, every client on its own socket (its own source port, so
SO_REUSEPORT spreads them over both workers): every answer is right, and the
upstream saw each name exactly once; a second round is answered from the
cache without any upstream query. /metrics counts the shared cache once:
20 entries, 20 misses, 380 hits (not once per worker). Before (a cache per worker): a
name missed once in each worker, ~2 upstream queries per name.

Bounded: 400 queries, a few seconds. Ends with "N passed, N failed".
"""
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from skytest import Checks, Skydns, free_port, udp_query  # noqa: E402
from fakeup import FakeUpstream  # noqa: E402

import dns.message  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rrset  # noqa: E402

C = Checks()
NAMES = ["n%d.shared.example.test." % i for i in range(20)]
CLIENTS = 10


def handle(q, tcp):
    r = dns.message.make_response(q)
    name = q.question[0].name.to_text().lower()
    if name in NAMES:
        r.answer.append(dns.rrset.from_text(name, 300, "IN", "A",
                                            "192.0.2.%d" % (NAMES.index(name) + 1)))
    else:
        r.set_rcode(dns.rcode.NXDOMAIN)
    return r.to_wire()


def ask(port, name):
    q = dns.message.make_query(name, "A", use_edns=0)
    return dns.message.from_wire(udp_query(port, q.to_wire(), timeout=5.0))


def metrics(api_port):
    out = {}
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % api_port, timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("skydns_cache_"):
                k, v = line.split()[:2]
                out[k] = float(v)
    return out


def main():
    up = FakeUpstream(handle)
    api_port = free_port()
    sky = Skydns(extra_conf="nameservers = 127.0.0.1:%d\ncacheSize = 1000\n"
                            "[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\n"
                            % (up.port, api_port), workers=2)
    try:
        sky.start()
        for rnd in range(2):
            bad = 0
            for i, name in enumerate(NAMES):
                for _ in range(CLIENTS):
                    r = ask(sky.port, name)
                    if not (r.rcode() == dns.rcode.NOERROR and len(r.answer) == 1 and
                            r.answer[0][0].address == "192.0.2.%d" % (i + 1)):
                        bad += 1
            C.eq(bad, 0, "round %d: every answer right" % rnd)
            counts = [len(up.seen(n)) for n in NAMES]
            print("round %d: upstream queries per name %s" % (rnd, counts), flush=True)
            C.eq(counts, [1] * len(NAMES), "round %d: each name asked upstream once" % rnd)
        # Workers publish their counters about once a second.
        want = {"skydns_cache_entries": 20.0, "skydns_cache_misses_total": 20.0,
                "skydns_cache_hits_total": 2.0 * len(NAMES) * CLIENTS - 20}
        end = time.monotonic() + 5
        while True:
            got = {k: metrics(api_port).get(k) for k in want}
            if got == want or time.monotonic() > end:
                break
            time.sleep(0.2)
        C.eq(got, want, "/metrics counts the shared cache once")
    finally:
        sky.stop()
        up.stop()
    C.finish()


if __name__ == "__main__":
    main()
