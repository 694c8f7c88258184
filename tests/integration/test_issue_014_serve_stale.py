"""
Issue 14, item 3: serve-stale (RFC 8767).

A scripted upstream on loopback answers stale.example.test. with TTL 1. Once
that TTL ran out:
  1. the upstream swallows everything: the name is answered from the expired
     entry after stale-answer-timeout (0.5 s), not SERVFAIL after
     forward-timeout (2 s): NOERROR, the cached address, TTL 30, EDE 3
     "Stale Answer" in the OPT; a client without EDNS gets it without OPT;
     a name never cached is still SERVFAIL;
  2. the upstream answers, but slower (1 s) than stale-answer-timeout: the
     client gets the stale answer at 0.5 s, and the late answer refreshes
     the cache in the background, so the next query gets the new address
     from the cache, fresh (no EDE), without asking upstream again.
Before the fix every query of step 1 was SERVFAIL after 2 s.

Bounded: a dozen queries, about 8 s. Ends with "N passed, N failed".
"""
import os
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from skytest import Checks, Skydns, free_port, udp_query  # noqa: E402
from fakeup import FakeUpstream  # noqa: E402

import dns.edns  # noqa: E402
import dns.message  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rrset  # noqa: E402

C = Checks()
SEEN_STALE = [0]  # answers seen with TTL 30 from the stale entry
NAME = "stale.example.test."
STALE_WAIT_S = 0.5
FWD_TIMEOUT_S = 2.0


class Up:
    def __init__(self):
        self.mode = "answer"  # answer | silent | slow
        self.addr = "192.0.2.7"
        self.lock = threading.Lock()
        self.up = FakeUpstream(self.handle)

    def handle(self, q, tcp):
        if self.mode == "silent":
            return None
        r = dns.message.make_response(q)
        if q.question[0].name.to_text().lower() == NAME:
            r.answer.append(dns.rrset.from_text(NAME, 1, "IN", "A", self.addr))
        else:
            r.set_rcode(dns.rcode.NXDOMAIN)
        return (1.0, r.to_wire()) if self.mode == "slow" else r.to_wire()


def ask(port, name, edns=True):
    q = dns.message.make_query(name, "A", use_edns=0 if edns else False)
    t = time.monotonic()
    r = dns.message.from_wire(udp_query(port, q.to_wire(), timeout=5.0))
    dt = time.monotonic() - t
    if r.answer and r.answer[0].ttl == 30:
        SEEN_STALE[0] += 1
    return dt, r


def ede_codes(r):
    return [o.code for o in r.options if o.otype == dns.edns.EDE]


def check_stale(r, addr, what, edns=True):
    C.eq(dns.rcode.to_text(r.rcode()), "NOERROR", what + ": rcode")
    C.ok(len(r.answer) == 1 and r.answer[0][0].address == addr,
         what + ": the cached address (%s)" % r.answer)
    C.ok(len(r.answer) == 1 and r.answer[0].ttl == 30, what + ": TTL 30 (%s)" % r.answer)
    if edns:
        C.eq(ede_codes(r), [3], what + ": EDE 3 Stale Answer")
    else:
        C.ok(r.edns < 0, what + ": no OPT for a client without EDNS")


def stale_metric(api_port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % api_port, timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("skydns_cache_stale_answers_total "):
                return float(line.split()[1])
    return None


def main():
    up = Up()
    api_port = free_port()
    sky = Skydns(extra_conf="nameservers = 127.0.0.1:%d\nforward-timeout = %s\n"
                            "serve-stale = 60\nstale-answer-timeout = %s\ncacheSize = 100\n"
                            "[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\n"
                            % (up.up.port, FWD_TIMEOUT_S, STALE_WAIT_S, api_port))
    try:
        sky.start()
        _, r = ask(sky.port, NAME)
        C.ok(r.rcode() == dns.rcode.NOERROR and r.answer and r.answer[0].ttl <= 1,
             "first answer from upstream, TTL 1 (%s)" % r.answer)
        _, r = ask(sky.port, "never.example.test.")
        C.eq(dns.rcode.to_text(r.rcode()), "NXDOMAIN", "a name never cached: upstream's")

        # Step 1: the upstream is dead; the TTL runs out (1 s; 1.5 s for clock rounding).
        up.mode = "silent"
        time.sleep(1.5)
        dt, r = ask(sky.port, NAME)
        check_stale(r, "192.0.2.7", "dead upstream")
        # It waited stale-answer-timeout, not forward-timeout (which would be SERVFAIL):
        # bounds generous for a loaded machine, far from 2 s on either side.
        C.ok(STALE_WAIT_S - 0.05 <= dt < FWD_TIMEOUT_S - 0.3,
             "stale answer after %.3f s, want ~%.1f s" % (dt, STALE_WAIT_S))
        print("dead upstream: stale answer after %.3f s" % dt, flush=True)
        dt, r = ask(sky.port, NAME, edns=False)
        check_stale(r, "192.0.2.7", "dead upstream, no EDNS", edns=False)
        _, r = ask(sky.port, "other.example.test.")
        C.eq(dns.rcode.to_text(r.rcode()), "SERVFAIL", "a name never cached: SERVFAIL")

        # Step 2: slow upstream (1 s) with a new address; wait for the question in
        # flight from step 1 to end (forward-timeout), so a fresh one goes out.
        time.sleep(FWD_TIMEOUT_S + 0.2)
        up.mode, up.addr = "slow", "192.0.2.8"
        n0 = len(up.up.seen(NAME))
        dt, r = ask(sky.port, NAME)
        check_stale(r, "192.0.2.7", "slow upstream")
        print("slow upstream: stale answer after %.3f s" % dt, flush=True)
        # The late answer (1 s after the ask) lands in the cache; then it is fresh.
        end = time.monotonic() + 5
        fresh = None
        while time.monotonic() < end:
            time.sleep(0.2)
            _, r = ask(sky.port, NAME)
            if r.answer and r.answer[0][0].address == "192.0.2.8":
                fresh = r
                break
        C.ok(fresh is not None, "the background refresh cached the new address")
        if fresh is not None:
            C.eq(ede_codes(fresh), [], "refreshed answer: no EDE")
            C.ok(fresh.answer[0].ttl <= 1, "refreshed answer: upstream's TTL")
        C.eq(len(up.up.seen(NAME)) - n0, 1, "one upstream query refreshed it")
        C.eq(stale_metric(api_port), float(SEEN_STALE[0]),
             "skydns_cache_stale_answers_total counts the stale answers seen (%d)"
             % SEEN_STALE[0])
    finally:
        sky.stop()
        up.up.stop()
    C.finish()


if __name__ == "__main__":
    main()
