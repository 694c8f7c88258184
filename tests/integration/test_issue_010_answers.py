"""
Issue 10 items 3, 9 and 11: what skydns relays from an upstream.

Item 3, the CD bit: the cache key and the in-flight merge ignored CD, and the
upstream query took CD from the first client. A validating upstream (faked:
SERVFAIL without CD, the "unvalidated" address with CD) showed it: one CD=1
query made the unvalidated answer every CD=0 client's, and a cached SERVFAIL
was served to CD=1 clients.

Item 9, scrubbing: an answer for x.evil.test with a CNAME to
www.skydns.local and a forged A for it was relayed as is, although skydns is
authoritative for www.skydns.local; out-of-bailiwick additional records of a
subDomainServers upstream were relayed too.

Item 11, TTLs: 2147483647 from an upstream reached clients; now capped at
max-ttl (default 86400, what the cache keeps).

A fake upstream (fakeup.py, loopback) answers by name; dnspython asks.
"""
import os
import sys
import threading
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fakeup import FakeUpstream  # noqa: E402
from skytest import Checks, Skydns, free_port, tcp_query, udp_query  # noqa: E402

import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402
import dns.rrset  # noqa: E402

C = Checks()
ZONE = "$ORIGIN skydns.local.\nwww 300 IN A 10.0.0.1\n"
FORGED = "6.6.6.6"


def reply(q, records=(), additional=(), rcode=0):
    r = dns.message.make_response(q)
    r.set_rcode(rcode)
    for name, ttl, rtype, data in records:
        r.answer.append(dns.rrset.from_text(name, ttl, "IN", rtype, data))
    for name, ttl, rtype, data in additional:
        r.additional.append(dns.rrset.from_text(name, ttl, "IN", rtype, data))
    return r.to_wire()


def handler(q, tcp):
    name = q.question[0].name.to_text().lower()
    cd = bool(q.flags & dns.flags.CD)
    if name.endswith(".dnssec.test."):  # a validating upstream and a bogus zone
        out = reply(q, [(name, 300, "A", "192.0.2.66")]) if cd else reply(q, rcode=2)
        return (0.3, out) if name.startswith("slow") and not tcp else out
    if name == "x.evil.test.":
        return reply(q, [(name, 300, "CNAME", "www.skydns.local."),
                         ("www.skydns.local.", 300, "A", FORGED)])
    if name == "h.sub.test.":
        return reply(q, [(name, 300, "A", "192.0.2.7")],
                     additional=[("ns.sub.test.", 300, "A", "192.0.2.53"),
                                 ("www.example.com.", 300, "A", FORGED)])
    if name == "ttl.test.":
        return reply(q, [(name, 2147483647, "A", "192.0.2.8")])
    return reply(q, rcode=3)


def ask(port, name, cd=False, tcp=False):
    q = dns.message.make_query(name, "A", use_edns=0, payload=1232)
    if cd:
        q.flags |= dns.flags.CD
    wire = tcp_query(port, q.to_wire()) if tcp else udp_query(port, q.to_wire(), timeout=3.0)
    return dns.message.from_wire(wire)


def addrs(r):
    return sorted(rd.address for rrs in r.answer if rrs.rdtype == dns.rdatatype.A for rd in rrs)


def check_cd(sky, up):
    r1 = ask(sky.port, "one.dnssec.test.", cd=True)
    C.eq(addrs(r1), ["192.0.2.66"], "CD=1 client gets the unvalidated answer")
    r2 = ask(sky.port, "one.dnssec.test.")
    C.eq(r2.rcode(), dns.rcode.SERVFAIL, "CD=0 client after it: the validator's SERVFAIL, "
         "not the CD=1 answer from the cache")
    C.ok(any(not (f & dns.flags.CD) for _, _, f, _ in up.seen("one.dnssec.test.")),
         "a CD=0 query went upstream for the CD=0 client")
    r3 = ask(sky.port, "two.dnssec.test.")
    C.eq(r3.rcode(), dns.rcode.SERVFAIL, "CD=0 client: SERVFAIL (now cached)")
    r4 = ask(sky.port, "two.dnssec.test.", cd=True)
    C.eq(addrs(r4), ["192.0.2.66"], "CD=1 client after a cached SERVFAIL gets the answer")

    # In flight at once: not merged, each upstream query carries its client's CD.
    out = {}
    ts = [threading.Thread(target=lambda k=k: out.__setitem__(
        k, ask(sky.port, "slow.dnssec.test.", cd=k))) for k in (True, False)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=10)
    seen = up.seen("slow.dnssec.test.")
    C.eq(sorted(bool(f & dns.flags.CD) for _, _, f, _ in seen), [False, True],
         "concurrent CD=1 and CD=0 questions: one upstream query each, CD as asked")
    C.eq(addrs(out[True]) if True in out else None, ["192.0.2.66"], "concurrent CD=1 answer")
    C.eq(out[False].rcode() if False in out else None, dns.rcode.SERVFAIL,
         "concurrent CD=0 answer")


def check_scrub(sky):
    for tcp in (False, True):
        r = ask(sky.port, "x.evil.test.", tcp=tcp)
        how = "TCP" if tcp else "UDP"
        C.ok(FORGED not in addrs(r), "%s: forged A for www.skydns.local not relayed: %s"
             % (how, r.answer))
        cn = [rrs for rrs in r.answer if rrs.rdtype == dns.rdatatype.CNAME]
        C.eq([str(rrs[0].target) for rrs in cn], ["www.skydns.local."],
             "%s: the upstream's CNAME kept" % how)
        C.eq(addrs(r), ["10.0.0.1"], "%s: the chain continues from the store" % how)
        C.eq(r.rcode(), dns.rcode.NOERROR, "%s: rcode" % how)
    r = ask(sky.port, "h.sub.test.")
    C.eq(addrs(r), ["192.0.2.7"], "subdomain answer")
    extra = sorted(rrs.name.to_text() for rrs in r.additional
                   if rrs.rdtype == dns.rdatatype.A)
    C.eq(extra, ["ns.sub.test."], "out-of-bailiwick additional A dropped, in-bailiwick kept")


def metric(api_port, name):
    """Sum of a /metrics counter over its label sets."""
    url = "http://127.0.0.1:%d/metrics" % api_port
    with urllib.request.urlopen(url, timeout=3) as r:
        text = r.read().decode()
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
               if line.startswith(name + " ") or line.startswith(name + "{"))


def ttls(r):
    return [rrs.ttl for rrs in r.answer]


def main():
    up = FakeUpstream(handler)
    ns = "nameservers = 127.0.0.1:%d\nsubDomainServers = sub.test@127.0.0.1:%d\n" % (
        up.port, up.port)
    api = free_port()
    try:
        with Skydns(ZONE, extra_conf=ns + "[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\n"
                    % api, workers=1) as sky:
            sky.start()
            check_cd(sky, up)
            check_scrub(sky)
            # The forged A twice (UDP, TCP: a cut chain is never cached), one additional.
            C.eq(metric(api, "skydns_forward_scrubbed_total"), 3,
                 "skydns_forward_scrubbed_total counts the dropped records")
            t = ttls(ask(sky.port, "ttl.test."))
            C.ok(t and max(t) <= 86400, "TTL 2147483647 upstream, default max-ttl: %s" % t)
            C.ok(sky.alive(), "server alive")
        with Skydns(ZONE, extra_conf=ns + "max-ttl = 3600\n", workers=1) as sky:
            sky.start()
            for tcp in (False, True):
                t = ttls(ask(sky.port, "ttl.test.", tcp=tcp))
                C.ok(t and max(t) <= 3600 and min(t) > 3500,
                     "max-ttl = 3600 (%s): %s" % ("TCP" if tcp else "UDP", t))
    finally:
        up.stop()
    C.finish()


if __name__ == "__main__":
    main()
