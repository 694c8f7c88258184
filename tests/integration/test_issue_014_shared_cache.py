"""
Issue 14: one cache for all workers. skydns with 2 workers forwards to a
scripted upstream that counts queries. 20 names are each asked by 10
clients in turn, every client on its own socket (its own source port, so
SO_REUSEPORT spreads them over both workers): every answer is right, and the
upstream saw each name exactly once; a second round 1 s later is answered
from the cache without any upstream query. Before (a cache per worker): a
name missed once in each worker, ~2 upstream queries per name.

Bounded: 400 queries, a few seconds. Ends with "N passed, N failed".
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from skytest import Checks, Skydns, udp_query  # noqa: E402
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


def main():
    up = FakeUpstream(handle)
    sky = Skydns(extra_conf="nameservers = 127.0.0.1:%d\ncacheSize = 1000\n" % up.port,
                 workers=2)
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
    finally:
        sky.stop()
        up.stop()
    C.finish()


if __name__ == "__main__":
    main()
