#!/usr/bin/python3
"""
Issue 17, [Api] auto-ptr: a PTR kept for every A/AAAA the API writes, under the reverse
zones of dns-domains, checked with dig -x.

- POST an A (and an AAAA): dig -x gives the name, with the address's TTL; the reply's
  "added" lists the PTR.
- Two names with one address: two PTRs; deleting one name leaves the other's.
- PUT replacing the address (a new set, or "update" old -> new): the old PTR is gone, the
  new one there; DELETE of the name: NXDOMAIN.
- An address outside every reverse zone is written without a PTR (no 400); a reverse
  name a zone import holds keeps the zone's PTR alone.
- Without auto-ptr (the default) an A gets no PTR.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import dns.rcode

import skytest
from skytest import Checks, Skydns
from test_issue_017_reverse import api, ask  # noqa: E402

C = Checks()
REV = "10.in-addr.arpa."
REV6 = "d.f.ip6.arpa."


def dig_x(port, ip):
    """(status, sorted PTR targets, ttls) of dig -x ip."""
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+norec", "+noall",
                          "+answer", "+comments", "-x", ip],
                         capture_output=True, text=True, timeout=20).stdout
    status = "?"
    for line in out.splitlines():
        if "status:" in line:
            status = line.split("status:")[1].split(",")[0].strip()
    rrs = [ln.split() for ln in out.splitlines() if ln and not ln.startswith(";")]
    return status, sorted(r[4] for r in rrs if r[3] == "PTR"), sorted({r[1] for r in rrs})


def conf(apiport, auto):
    return ("dns-domains = skydns.local.%%%s%%%s\n[Api]\napi-enable = true\n"
            "api-address = 127.0.0.1:%d\n%s" % (REV, REV6, apiport,
                                                "auto-ptr = true\n" if auto else ""))


def on_checks():
    apiport = skytest.free_port()
    with Skydns(None, extra_conf=conf(apiport, True)) as d:
        d.import_zone("$ORIGIN %s\n$TTL 300\n2.0.0 PTR www.skydns.local.\n" % REV, REV)
        d.start()
        C.ok(skytest.wait_api(apiport), "API up")
        st, b = api(apiport, "POST", "/skydns/api/web", {"type": "A", "ips": ["10.0.0.7"],
                                                         "ttl": 120})
        C.eq(st, 201, "POST web A 10.0.0.7")
        C.ok({"name": "7.0.0.10.in-addr.arpa.", "type": "PTR", "ttl": 120,
              "value": "web.skydns.local."} in b.get("added", []),
             "the reply lists the PTR added (%s)" % b.get("added"))
        C.eq(dig_x(d.port, "10.0.0.7"), ("NOERROR", ["web.skydns.local."], ["120"]),
             "dig -x 10.0.0.7: web, with the A's TTL")
        st, _ = api(apiport, "POST", "/skydns/api/web", {"type": "AAAA", "ips": ["fd00::7"]})
        C.eq((st, dig_x(d.port, "fd00::7")[:2]), (201, ("NOERROR", ["web.skydns.local."])),
             "an AAAA gets its ip6.arpa. PTR")
        st, _ = api(apiport, "POST", "/skydns/api/web2", {"type": "A", "ips": ["10.0.0.7"]})
        C.eq((st, dig_x(d.port, "10.0.0.7")[1]), (201, ["web.skydns.local.",
                                                        "web2.skydns.local."]),
             "two names, one address: two PTRs")
        st, _ = api(apiport, "DELETE", "/skydns/api/web2", {"type": "A", "ips": ["10.0.0.7"]})
        C.eq((st, dig_x(d.port, "10.0.0.7")[1]), (200, ["web.skydns.local."]),
             "deleting web2's address leaves web's PTR")
        st, b = api(apiport, "PUT", "/skydns/api/web", {"type": "A", "ips": ["10.0.0.8"]})
        C.eq(st, 200, "PUT web A 10.0.0.8")
        C.eq(dig_x(d.port, "10.0.0.7")[0], "NXDOMAIN", "after PUT the old PTR is gone")
        C.eq(dig_x(d.port, "10.0.0.8")[:2], ("NOERROR", ["web.skydns.local."]),
             "after PUT the new PTR is there")
        C.ok(any(e.get("type") == "PTR" for e in b.get("removed", [])),
             "the PUT's reply lists the PTR removed")
        st, _ = api(apiport, "PUT", "/skydns/api/web", {"type": "A",
                                                        "update": {"10.0.0.8": "10.0.0.10"}})
        C.eq((st, dig_x(d.port, "10.0.0.8")[0], dig_x(d.port, "10.0.0.10")[1]),
             (200, "NXDOMAIN", ["web.skydns.local."]),
             "PUT \"update\" 10.0.0.8 -> 10.0.0.10 moves the PTR")
        st, _ = api(apiport, "DELETE", "/skydns/api/web")
        C.eq(st, 200, "DELETE web")
        C.eq((dig_x(d.port, "10.0.0.10")[0], dig_x(d.port, "fd00::7")[0]),
             ("NXDOMAIN", "NXDOMAIN"), "after DELETE both PTRs are gone")
        st, _ = api(apiport, "POST", "/skydns/api/far", {"type": "A", "ips": ["192.168.1.1"]})
        r = ask(d.port, "1.1.168.192.in-addr.arpa.", "PTR")
        C.eq((st, dns.rcode.to_text(r.rcode()), len(r.answer)), (201, "REFUSED", 0),
             "an address outside the reverse zones: written, no PTR")
        st, _ = api(apiport, "POST", "/skydns/api/x", {"type": "A", "ips": ["10.0.0.2"]})
        C.eq((st, dig_x(d.port, "10.0.0.2")[1]), (201, ["www.skydns.local."]),
             "a reverse name the zone import holds keeps the zone's PTR alone")
        st, _ = api(apiport, "POST", "/skydns/api/dup", {"type": "A", "ips": ["10.0.0.9"]})
        st2, _ = api(apiport, "POST", "/skydns/api/dup", {"type": "A", "ips": ["10.0.0.9"]})
        C.eq((st, st2, dig_x(d.port, "10.0.0.9")[1]), (201, 409, ["dup.skydns.local."]),
             "a refused write changes no PTR")
        C.ok(d.alive(), "server alive")


def off_checks():
    apiport = skytest.free_port()
    with Skydns(None, extra_conf=conf(apiport, False)) as d:
        d.start()
        C.ok(skytest.wait_api(apiport), "API up (auto-ptr off)")
        st, _ = api(apiport, "POST", "/skydns/api/web", {"type": "A", "ips": ["10.0.0.7"]})
        C.eq((st, dig_x(d.port, "10.0.0.7")[0]), (201, "NXDOMAIN"),
             "without auto-ptr an A gets no PTR")


def main():
    on_checks()
    off_checks()
    C.finish()


if __name__ == "__main__":
    main()
