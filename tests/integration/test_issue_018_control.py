"""
Issue 18: the original's control routes, which its operators' scripts call.

  GET    /skydns/stats/<name>     how often a name was asked
  GET    /skydns/domain/<name>    the forward cache's answers for a name
  DELETE /skydns/domain/<name>    flush them: the next query goes upstream again
  GET    /skydns/domainL1/<name>  the store's records of a name, sources and health
  GET|POST /skydns/master         {"cacheTtl": s}: the forward cache's TTL cap, live

Before: every one of these answered 404 "no such route".

Method: the real skydns with two workers (each has its own cache: the flush must
reach both), a scripted upstream on loopback that counts the queries it gets, a
zone import for domainL1, a token API. Each effect is checked with DNS queries and
the upstream's count. Bounded: some 60 queries, a few seconds.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from skytest import BUILD, Checks, Skydns, free_port, http_request, udp_query  # noqa: E402
from fakeup import FakeUpstream  # noqa: E402

import dns.message  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rrset  # noqa: E402

C = Checks()
TOKEN = "t0ken-018c"
ZONE = """$ORIGIN skydns.local.
$TTL 60
www A 10.0.1.1
www A 10.0.1.2
"""
FWD = "fwd.example.test."


def handle(q, tcp):
    r = dns.message.make_response(q)
    name = q.question[0].name.to_text().lower()
    if name.endswith("example.test."):
        r.answer.append(dns.rrset.from_text(name, 300, "IN", "A", "192.0.2.7"))
    else:
        r.set_rcode(dns.rcode.NXDOMAIN)
    return r.to_wire()


def ask(port, name):
    """One query from a fresh source port (so either worker may take it)."""
    q = dns.message.make_query(name, "A")
    return dns.message.from_wire(udp_query(port, q.to_wire(), timeout=5.0))


def api(port, method, path, body=None, token=TOKEN):
    hdrs = {"Content-Type": "application/json"}
    if token:
        hdrs["Authorization"] = "Bearer " + token
    data = json.dumps(body).encode() if body is not None else None
    st, reply = http_request(port, method, "/skydns/" + path, data, hdrs, timeout=10)
    try:
        return st, json.loads(reply or b"null")
    except ValueError:
        return st, {"raw": reply.decode(errors="replace")}


CLI = os.path.join(BUILD, "cli", "skydns-cli")


def cli(aport, *args):
    r = subprocess.run([CLI, "-addr", "127.0.0.1:%d" % aport, "-token", TOKEN] + list(args),
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def warm(port, up, name, n=12):
    """Ask n times; @return how many reached the upstream."""
    before = len(up.seen(name))
    for _ in range(n):
        ask(port, name)
    return len(up.seen(name)) - before


def main():
    up = FakeUpstream(handle)
    aport = free_port()
    sky = Skydns(ZONE, workers=2,
                 extra_conf="nameservers = 127.0.0.1:%d\n[Api]\napi-enable = true\n"
                            "api-address = 127.0.0.1:%d\napi-token = %s\n"
                            % (up.port, aport, TOKEN))
    try:
        sky.start()
        P = sky.port

        # The token is needed as for every route.
        st, _ = api(aport, "GET", "domain/" + FWD, token=None)
        C.eq(st, 401, "domain/<name> without the token")

        # Forward cache: cached in the workers that saw it; then nothing goes upstream.
        warm(P, up, FWD, 12)
        C.eq(warm(P, up, FWD, 12), 0, "a cached name is not asked upstream again")
        st, r = api(aport, "GET", "domain/" + FWD)
        C.eq(st, 200, "GET domain/<name>")
        C.eq(r.get("name"), FWD, "GET domain: the name")
        C.eq(r.get("workers"), 2, "GET domain: both workers answered")
        answers = r.get("answers") or []
        C.ok(1 <= len(answers) <= 2 and all(a["type"] == "A" and 0 < a["ttl"] <= 300
                                            and a["rcode"] == "NOERROR" for a in answers),
             "GET domain: the cached A answers with their TTLs (%s)" % r)
        cached = len(answers)

        st, r = api(aport, "DELETE", "domain/" + FWD)
        C.eq(st, 200, "DELETE domain/<name>")
        C.eq(r.get("flushed"), cached, "DELETE domain: every worker's entry flushed (%s)" % r)
        st, r = api(aport, "GET", "domain/" + FWD)
        C.eq((st, r.get("count")), (200, 0), "after the flush nothing is cached")
        n = warm(P, up, FWD, 12)
        C.ok(1 <= n <= 2, "a flushed name is asked upstream again (%d upstream queries)" % n)
        st, r = api(aport, "DELETE", "domain/never.example.test.")
        C.eq((st, r.get("flushed")), (200, 0), "flushing a name never cached drops nothing")

        # Run-time cacheTtl: answers cached from now on are capped, without a restart.
        st, r = api(aport, "GET", "master")
        C.eq((st, r.get("cacheTtl")), (200, 86400), "GET master: cacheTtl is max-ttl")
        st, r = api(aport, "POST", "master", {"cacheTtl": 5})
        C.eq((st, r.get("cacheTtl")), (200, 5), "POST master cacheTtl 5")
        st, r = api(aport, "GET", "master")
        C.eq(r.get("cacheTtl"), 5, "GET master shows the new cacheTtl")
        ttls = [a.ttl for _ in range(6) for a in ask(P, "short.example.test.").answer]
        C.ok(ttls and max(ttls) <= 5, "a new cached answer's TTL is capped at 5 (%s)" % ttls)
        st, r = api(aport, "GET", "domain/short.example.test.")
        C.ok(r.get("answers") and all(a["ttl"] <= 5 for a in r["answers"]),
             "the cache keeps it for 5 s at most (%s)" % r)
        ttls = [a.ttl for _ in range(3) for a in ask(P, FWD).answer]
        C.ok(ttls and min(ttls) > 5, "an answer cached before keeps its TTL (%s)" % ttls)
        st, r = api(aport, "POST", "master", {"cacheTtl": -1})
        C.eq(st, 400, "a negative cacheTtl is refused")
        st, r = api(aport, "POST", "master", {"cacheTtl": 0})
        C.eq((st, r.get("cacheTtl")), (200, 86400), "cacheTtl 0 goes back to max-ttl")
        ttls = [a.ttl for _ in range(3) for a in ask(P, "long.example.test.").answer]
        C.ok(ttls and min(ttls) > 5, "after the reset the upstream's TTL is kept (%s)" % ttls)

        # The cap outlives a reload (SIGHUP) that rebuilds nothing.
        api(aport, "POST", "master", {"cacheTtl": 7})
        sky.proc.send_signal(1)
        time.sleep(1.0)
        ttls = [a.ttl for _ in range(4) for a in ask(P, "after-hup.example.test.").answer]
        C.ok(ttls and max(ttls) <= 7, "cacheTtl 7 holds after a reload (%s)" % ttls)
        api(aport, "POST", "master", {"cacheTtl": 0})

        # domainL1: the store's records with their source and health.
        http_request(aport, "PUT", "/skydns/status/10.0.1.2", b'{"status":"DOWN"}',
                     {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"})
        st, r = api(aport, "GET", "domainL1/www")
        C.eq(st, 200, "GET domainL1/www")
        recs = sorted((x["value"], x["source"], x.get("health")) for x in r.get("records", []))
        C.eq(recs, [("10.0.1.1", "import:skydns.local.", "UP"),
                    ("10.0.1.2", "import:skydns.local.", "DOWN")],
             "domainL1: each address with its source and health")
        st, r = api(aport, "POST", "domainL1/www")
        C.ok(st == 409 and "etcd" in r.get("error", ""),
             "POST domainL1 without etcd: 409 saying there is no etcd to re-read (%s)" % r)
        st, r = api(aport, "GET", "domainL1/nothing")
        C.eq(st, 404, "domainL1 of a name with no records")
        st, r = api(aport, "GET", "domainL1/www.example.com")
        C.eq(st, 400, "domainL1 of a name outside the local domains")

        # skydns-cli: a flag for each route, the table by default.
        ask(P, FWD)
        rc, out = cli(aport, "-cache", FWD)
        C.ok(rc == 0 and "domain: " + FWD in out and "type:A" in out,
             "skydns-cli -cache (%d: %s)" % (rc, out))
        rc, out = cli(aport, "-flush", FWD)
        C.ok(rc == 0 and "flushed:" in out and "flushed: 0" not in out,
             "skydns-cli -flush (%d: %s)" % (rc, out))
        n = warm(P, up, FWD, 6)
        C.ok(n >= 1, "asked upstream again after skydns-cli -flush (%d)" % n)
        rc, out = cli(aport, "-cache-ttl", "9")
        C.ok(rc == 0 and "cacheTtl: 9" in out, "skydns-cli -cache-ttl (%d: %s)" % (rc, out))
        rc, out = cli(aport, "-master")
        C.ok(rc == 0 and "cacheTtl: 9  maxTtl: 86400" in out, "skydns-cli -master (%s)" % out)
        cli(aport, "-cache-ttl", "0")
        rc, out = cli(aport, "-l1", "www")
        C.ok(rc == 0 and "val:10.0.1.2" in out and "status:DOWN" in out
             and "source:import:skydns.local." in out, "skydns-cli -l1 (%d: %s)" % (rc, out))
        rc, out = cli(aport, "-json", "-l1", "www")
        C.ok(rc == 0 and json.loads(out).get("name") == "www.skydns.local.",
             "skydns-cli -json -l1 (%s)" % out)

        # stats/<name>: counted from the workers' top-N tables (published each second).
        t0 = int(time.time())
        ask(P, "www.skydns.local.")
        time.sleep(1.1)
        for _ in range(4):
            ask(P, "www.skydns.local.")
        t1 = int(time.time())
        time.sleep(1.5)
        st, r = api(aport, "GET", "stats/www")
        # The original's first and last query time of the name (issue 18).
        first, last = r.get("first", 0), r.get("last", 0)
        C.ok(t0 - 1 <= first <= last <= t1 + 1 and last >= first + 1,
             "stats/www: first %d and last %d query times within [%d, %d]"
             % (first, last, t0, t1))
        C.ok(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last)) == r.get("lastQueryTime"),
             "stats/www: lastQueryTime as RFC 3339 UTC (%s)" % r)
        C.eq((st, r.get("name"), r.get("tracked")), (200, "www.skydns.local.", True),
             "stats/www: tracked (%s)" % r)
        C.ok(r.get("count", 0) >= 5, "stats/www: asked at least 5 times (%s)" % r)
        st, r = api(aport, "GET", "stats/never-asked")
        C.eq((st, r.get("count"), r.get("tracked")), (200, 0, False), "stats of a name never asked")
        rc, out = cli(aport, "-stats", "www")
        C.ok(rc == 0 and "domain: www.skydns.local.  count: " in out,
             "skydns-cli -stats (%d: %s)" % (rc, out))
    finally:
        sky.stop()
        up.stop()
    C.finish()


if __name__ == "__main__":
    main()
