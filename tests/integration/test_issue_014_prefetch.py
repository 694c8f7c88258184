"""
Issue 14: prefetch. A name asked for in the last 10 % of its TTL is asked
upstream again in the background, so a name in use never expires.

A scripted upstream on loopback answers pf.example.test. with TTL 10, after
0.4 s, with a new address per query, and counts the queries. A client asks
every 0.1 s for 12 s (past the first expiry):
  - every answer after the first came from the cache at once (< 0.3 s: a
    miss would wait the upstream's 0.4 s);
  - the upstream was asked exactly twice: once for the first query, once in
    the last second of the TTL (one refresh, though several hits came in
    while it was in flight), before the entry expired;
  - after the old expiry the answers carry the refreshed address.
Before prefetch: the second upstream query came only after expiry, and the
query that missed waited the upstream's 0.4 s.

Bounded: 120 queries, about 13 s. Ends with "N passed, N failed".
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from skytest import Checks, Skydns, free_port, http_request, udp_query  # noqa: E402
from fakeup import FakeUpstream  # noqa: E402

import dns.message  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rrset  # noqa: E402

C = Checks()
NAME = "pf.example.test."
TTL = 10
DELAY_S = 0.4


class Up:
    def __init__(self):
        self.times = []  # when each query for NAME arrived (monotonic)
        self.lock = threading.Lock()
        self.up = FakeUpstream(self.handle)

    def handle(self, q, tcp):
        r = dns.message.make_response(q)
        if q.question[0].name.to_text().lower() != NAME:
            r.set_rcode(dns.rcode.NXDOMAIN)
            return r.to_wire()
        with self.lock:
            self.times.append(time.monotonic())
            n = len(self.times)
        r.answer.append(dns.rrset.from_text(NAME, TTL, "IN", "A", "192.0.2.%d" % n))
        return (DELAY_S, r.to_wire())


def ask(port):
    q = dns.message.make_query(NAME, "A", use_edns=0)
    t = time.monotonic()
    r = dns.message.from_wire(udp_query(port, q.to_wire(), timeout=5.0))
    return time.monotonic() - t, r


def main():
    up = Up()
    aport = free_port()
    sky = Skydns(extra_conf="nameservers = 127.0.0.1:%d\nforward-timeout = 2\n"
                            "cacheSize = 100\n[Api]\napi-enable = true\n"
                            "api-address = 127.0.0.1:%d\n" % (up.up.port, aport))
    try:
        sky.start()
        dt, r = ask(sky.port)
        C.ok(r.rcode() == dns.rcode.NOERROR and r.answer and r.answer[0][0].address ==
             "192.0.2.1", "first answer from upstream (%s)" % r.answer)
        C.ok(dt >= DELAY_S - 0.05, "the first query waited for the upstream (%.3f s)" % dt)
        cached_at = up.times[0] + DELAY_S  # about when the entry went in
        slowest, after = 0.0, []
        end = time.monotonic() + TTL + 2
        while time.monotonic() < end:
            time.sleep(0.1)
            dt, r = ask(sky.port)
            slowest = max(slowest, dt)
            ok = r.rcode() == dns.rcode.NOERROR and len(r.answer) == 1
            C.ok(ok, "an answer (%s)" % r.answer)
            if ok and time.monotonic() > cached_at + TTL + 0.2:
                after.append(r.answer[0][0].address)
        C.ok(slowest < 0.3, "no query waited for the upstream (slowest %.3f s)" % slowest)
        print("slowest cached answer %.3f s" % slowest, flush=True)
        with up.lock:
            times = list(up.times)
        C.eq(len(times), 2, "asked upstream twice: the first query and one refresh")
        if len(times) == 2:
            rel = times[1] - times[0]
            print("refresh asked %.2f s after the first query" % rel, flush=True)
            # The entry lives TTL s from about times[0] + DELAY_S; the refresh
            # goes out in its last second, so its answer lands before expiry.
            C.ok(TTL - 1 - 0.2 <= rel - DELAY_S < TTL - DELAY_S,
                 "the refresh went out in the last 10 %% of the TTL (%.2f s)" % rel)
        C.ok(after and all(a == "192.0.2.2" for a in after),
             "after the old expiry: the refreshed address (%s)" % sorted(set(after)))
        # The refresh is counted where an operator sees it.
        count = None
        for _ in range(40):
            st, body = http_request(aport, "GET", "/metrics", timeout=5)
            for line in body.decode(errors="replace").splitlines():
                if line.startswith("skydns_cache_prefetches_total"):
                    count = float(line.split()[-1])
            if count:
                break
            time.sleep(0.1)
        C.eq(count, 1.0, "/metrics: skydns_cache_prefetches_total counts the one refresh")
    finally:
        sky.stop()
        up.up.stop()
    C.finish()


if __name__ == "__main__":
    main()
