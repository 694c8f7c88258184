"""
Issue 14: "2 workers ask upstream once per name" while the question is still
in flight. skydns with 2 workers forwards to a scripted upstream that answers
each question 300 ms late and counts questions per name. For each of 20
names, 12 clients on their own sockets (own source ports, so SO_REUSEPORT
spreads them over both workers) ask at once: every client gets the right
answer, and the upstream saw each name exactly once. /metrics shows the
workers joined each other's questions (skydns_forward_joined_workers_total
> 0: both workers got clients, and the second waited for the first).
A name the upstream answers SERVFAIL (300 ms late) and a name it never
answers: all 12 clients get SERVFAIL (the waiting worker takes the owner's
cached SERVFAIL, nobody is left without a reply), still one upstream
question per name (with one server, forward-timeout 2 s).
Before (per-worker in-flight joining only): the second worker asked again,
2 upstream questions for most names.

Bounded: 240 queries, a few seconds. Ends with "N passed, N failed".
"""
import os
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from skytest import Checks, Skydns, free_port, udp_query  # noqa: E402
from fakeup import FakeUpstream  # noqa: E402

import dns.message  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rrset  # noqa: E402

C = Checks()
NAMES = ["n%d.inflight.example.test." % i for i in range(20)]
CLIENTS = 12
DELAY_S = 0.3
FAIL = "fail.inflight.example.test."
SILENT = "silent.inflight.example.test."


def handle(q, tcp):
    r = dns.message.make_response(q)
    name = q.question[0].name.to_text().lower()
    if name == SILENT:
        return None
    if name == FAIL:
        r.set_rcode(dns.rcode.SERVFAIL)
    elif name in NAMES:
        r.answer.append(dns.rrset.from_text(name, 300, "IN", "A",
                                            "192.0.2.%d" % (NAMES.index(name) + 1)))
    else:
        r.set_rcode(dns.rcode.NXDOMAIN)
    return (DELAY_S, r.to_wire())


LAT = []  # seconds per answered client (the list append is atomic under the GIL)


def ask(port, name, i, out, k):
    t0 = time.monotonic()
    try:
        q = dns.message.make_query(name, "A", use_edns=0)
        r = dns.message.from_wire(udp_query(port, q.to_wire(), timeout=5.0))
        if i >= 0:
            LAT.append(time.monotonic() - t0)
        if i < 0:
            out[k] = r.rcode() == dns.rcode.SERVFAIL
        else:
            out[k] = (r.rcode() == dns.rcode.NOERROR and len(r.answer) == 1 and
                      r.answer[0][0].address == "192.0.2.%d" % (i + 1))
    except Exception as e:  # a timeout is a wrong answer
        print("client %d: %s" % (k, e), flush=True)
        out[k] = False


def metric(api_port, key):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % api_port, timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(key + " "):
                return float(line.split()[1])
    return None


def main():
    up = FakeUpstream(handle)
    api_port = free_port()
    sky = Skydns(extra_conf="nameservers = 127.0.0.1:%d\ncacheSize = 1000\n"
                            "[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\n"
                            % (up.port, api_port), workers=2)
    try:
        sky.start()
        bad = 0
        for i, name in list(enumerate(NAMES)) + [(-1, FAIL), (-1, SILENT)]:
            out = [None] * CLIENTS
            ts = [threading.Thread(target=ask, args=(sky.port, name, i, out, k))
                  for k in range(CLIENTS)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(timeout=10)
            bad += sum(1 for x in out if x is not True)
        LAT.sort()
        print("client latency with a %d ms upstream: p50 %.0f ms, max %.0f ms"
              % (DELAY_S * 1000, LAT[len(LAT) // 2] * 1000, LAT[-1] * 1000), flush=True)
        C.eq(bad, 0, "every client got the right answer (SERVFAIL for the failing names)")
        counts = [len(up.seen(n)) for n in NAMES + [FAIL, SILENT]]
        print("upstream questions per name %s" % counts, flush=True)
        C.eq(counts, [1] * (len(NAMES) + 2), "each name asked upstream once, by one worker")
        # Workers publish their counters about once a second.
        end = time.monotonic() + 5
        joined = None
        while time.monotonic() < end:
            joined = metric(api_port, "skydns_forward_joined_workers_total")
            if joined:
                break
            time.sleep(0.2)
        print("joined across workers: %s" % joined, flush=True)
        C.ok(joined is not None and joined > 0,
             "both workers got clients: one waited for the other's question")
    finally:
        sky.stop()
        up.stop()
    C.finish()


if __name__ == "__main__":
    main()
