"""
Issue 17, reverse zones: an in-addr.arpa./ip6.arpa. domain in dns-domains is a zone of
its own, even when it is listed first.

- A reverse zone file imports with -origin and answers like NSD on the same zone
  (PTR, NODATA, NXDOMAIN, empty non-terminals, the apex SOA/NS, an RFC 2317 style
  delegation with its CNAME), over UDP and TCP: rcode, flags and all sections.
- Short names (API owners, PTR hosts, the import's default origin) complete with the
  first domain that is not a reverse zone: "web" is web.skydns.local., never
  web.10.in-addr.arpa.
- The API writes PTR records by name (POST /skydns/api/7.0.0.10.in-addr.arpa.) and by
  address ({"type":"PTR","ip":"10.0.0.7","host":"web"} to /skydns/api/, IPv4 and IPv6),
  refuses an "ip" outside every reverse zone, an "ip" that is not the URL's name and
  an "ip" on another type; skydns-cli -ptr does the same.
- A record written straight into the store at 1.0.0.10.in-addr.arpa. (as the
  watchers write them) answers when in-addr.arpa. itself is the local domain.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

import skytest
from skytest import Checks, Skydns, tcp_query, udp_query

C = Checks()
REV = "10.in-addr.arpa."
BODY = """2.0.0 PTR www.skydns.local.
2.0.0 PTR www2.skydns.local.
3.0.0 PTR mail.skydns.local.
5.1.0 TXT "host five"
65.1.0 CNAME 65.64-127.1.0
64-127.1.0 NS ns.example.net.
"""
ZONE = "$ORIGIN %s\n$TTL 300\n" % REV + BODY
NSD_ZONE = ("$ORIGIN %s\n$TTL 300\n@ 60 IN SOA ns1 hostmaster 1 3600 600 86400 60\n"
            "@ 3600 IN NS ns1\nns1 3600 IN A 127.0.0.1\n" % REV + BODY)
QUESTIONS = [
    ("2.0.0.10.in-addr.arpa.", "PTR"),
    ("3.0.0.10.in-addr.arpa.", "PTR"),
    ("3.0.0.10.in-addr.arpa.", "A"),
    ("9.9.9.10.in-addr.arpa.", "PTR"),
    ("0.0.10.in-addr.arpa.", "PTR"),
    ("5.1.0.10.in-addr.arpa.", "TXT"),
    ("10.in-addr.arpa.", "SOA"),
    ("10.in-addr.arpa.", "NS"),
    ("65.64-127.1.0.10.in-addr.arpa.", "PTR"),
    ("64-127.1.0.10.in-addr.arpa.", "NS"),
]
CLI = os.path.join(skytest.BUILD, "cli", "skydns-cli")
JSON = {"Content-Type": "application/json"}


def ask(port, name, rtype, tcp=False):
    q = dns.message.make_query(name, rtype, use_edns=0, payload=1232)
    q.flags &= ~dns.flags.RD
    wire = q.to_wire()
    return dns.message.from_wire(tcp_query(port, wire) if tcp else udp_query(port, wire))


def section(rrsets):
    out = set()
    for rs in rrsets:
        for rd in rs:
            text = "" if rs.rdtype == dns.rdatatype.SOA else rd.to_text()
            out.add((rs.name.to_text().lower(), dns.rdatatype.to_text(rs.rdtype), rs.ttl, text))
    return out


APEX_NS = (REV, "NS", 3600, "ns1.10.in-addr.arpa.")


def differential(sky, nsd):
    for tcp in (False, True):
        for name, rtype in QUESTIONS:
            what = "%s %s [%s]" % (name, rtype, "tcp" if tcp else "udp")
            s, n = ask(sky, name, rtype, tcp), ask(nsd, name, rtype, tcp)
            C.eq(dns.rcode.to_text(s.rcode()), dns.rcode.to_text(n.rcode()), what + " rcode")
            C.eq(dns.flags.to_text(s.flags), dns.flags.to_text(n.flags), what + " flags")
            C.eq(section(s.answer), section(n.answer), what + " answer")
            n_auth, n_add = section(n.authority), section(n.additional)
            # NSD (minimal-responses: no) adds the apex NS to positive answers; skydns not.
            if n.rcode() == dns.rcode.NOERROR and n.answer and n_auth == {APEX_NS}:
                n_auth = set()
                n_add = {x for x in n_add if x[0] != "ns1.10.in-addr.arpa."
                         or rtype == "NS"}
            C.eq(section(s.authority), n_auth, what + " authority")
            C.eq(section(s.additional), n_add, what + " additional")
        soa = ask(sky, REV, "SOA", tcp).answer
        C.ok(len(soa) == 1 and soa[0].name.to_text() == REV and
             soa[0][0].mname.to_text() == "ns1." + REV,
             "the reverse zone has its own SOA apex [%s]" % ("tcp" if tcp else "udp"))


def api(port, method, path, body=None):
    raw = json.dumps(body).encode() if body is not None else None
    st, out = skytest.http_request(port, method, path, raw, JSON)
    try:
        return st, json.loads(out or b"{}")
    except ValueError:
        return st, {"raw": out}


def ptr(port, name):
    r = ask(port, name, "PTR")
    return dns.rcode.to_text(r.rcode()), sorted(rd.to_text() for rs in r.answer for rd in rs)


def cli(apiport, *args):
    r = subprocess.run([CLI, "-addr", "127.0.0.1:%d" % apiport] + list(args),
                       capture_output=True, text=True, timeout=20)
    return r.returncode, r.stdout + r.stderr


def api_writes(d, apiport):
    st, b = api(apiport, "POST", "/skydns/api/web", {"type": "A", "ips": ["10.0.0.7"]})
    C.eq((st, b.get("name")), (201, "web.skydns.local."),
         "a short name gets the first forward domain, not the reverse zone listed first")
    st, b = api(apiport, "POST", "/skydns/api/", {"type": "PTR", "ip": "10.0.0.7", "host": "web"})
    C.eq((st, b.get("name")), (201, "7.0.0.10.in-addr.arpa."), "PTR by ip: the reverse name")
    C.eq(ptr(d.port, "7.0.0.10.in-addr.arpa."), ("NOERROR", ["web.skydns.local."]),
         "PTR by ip answers, its short host completed in the forward domain")
    st, b = api(apiport, "POST", "/skydns/api/6.0.0.10.in-addr.arpa.",
                {"type": "PTR", "host": "db.skydns.local."})
    C.eq(st, 201, "PTR by its reverse name (the DESIGN section 6 body)")
    C.eq(ptr(d.port, "6.0.0.10.in-addr.arpa."), ("NOERROR", ["db.skydns.local."]),
         "PTR by name answers")
    st, b = api(apiport, "POST", "/skydns/api/", {"type": "PTR", "ip": "fd00::1", "host": "web"})
    want6 = ".".join(reversed("fd000000000000000000000000000001")) + ".ip6.arpa."
    C.eq((st, b.get("name")), (201, want6), "PTR by IPv6 ip: the nibble name")
    C.eq(ptr(d.port, want6), ("NOERROR", ["web.skydns.local."]), "IPv6 PTR answers")
    st, b = api(apiport, "POST", "/skydns/api/", {"type": "PTR", "ip": "192.168.1.1",
                                                  "host": "web"})
    C.ok(st == 400 and "dns-domains" in b.get("error", ""),
         "an ip outside every reverse zone: 400 saying what to configure (%d %s)" % (st, b))
    st, b = api(apiport, "POST", "/skydns/api/8.0.0.10.in-addr.arpa.",
                {"type": "PTR", "ip": "10.0.0.9", "host": "web"})
    C.eq(st, 400, "an ip that is not the URL's name: 400")
    st, b = api(apiport, "POST", "/skydns/api/x", {"type": "A", "ip": "10.0.0.9",
                                                   "ips": ["10.0.0.9"]})
    C.eq(st, 400, "\"ip\" on an A body: 400")
    st, b = api(apiport, "POST", "/skydns/api/", {"type": "A", "ips": ["10.0.0.1"]})
    C.eq(st, 405, "other writes to the list stay 405")
    st, b = api(apiport, "DELETE", "/skydns/api/", {"type": "PTR", "ip": "10.0.0.7"})
    C.eq(st, 200, "DELETE a PTR by ip")
    C.eq(ptr(d.port, "7.0.0.10.in-addr.arpa.")[0], "NXDOMAIN", "the deleted PTR is gone")
    # skydns-cli
    rc, out = cli(apiport, "-ptr", "10.0.0.8", "-host", "mail")
    C.eq(rc, 0, "skydns-cli -ptr exits 0 (%s)" % out.strip())
    C.eq(ptr(d.port, "8.0.0.10.in-addr.arpa."), ("NOERROR", ["mail.skydns.local."]),
         "skydns-cli -ptr 10.0.0.8 -host mail answers")
    rc, out = cli(apiport, "-domain", "9.0.0.10.in-addr.arpa.", "-type", "PTR", "-host", "db")
    C.eq(ptr(d.port, "9.0.0.10.in-addr.arpa."), ("NOERROR", ["db.skydns.local."]),
         "skydns-cli -domain <reverse name> -type PTR answers")
    rc, out = cli(apiport, "-ptr", "10.0.0.8", "-method", "delete")
    C.eq((rc, ptr(d.port, "8.0.0.10.in-addr.arpa.")[0]), (0, "NXDOMAIN"),
         "skydns-cli -ptr -method delete removes it")
    r = ask(d.port, "web.skydns.local.", "A")
    C.eq(section(r.answer), {("web.skydns.local.", "A", 30, "10.0.0.7")},
         "the forward zone is unchanged beside the reverse one")


def whole_arpa():
    """in-addr.arpa. itself as the local domain; a record written at a full reverse name."""
    apiport = skytest.free_port()
    conf = ("dns-domains = skydns.local.%%in-addr.arpa.\n[Api]\napi-enable = true\n"
            "api-address = 127.0.0.1:%d\n" % apiport)
    with Skydns(None, extra_conf=conf) as d:
        d.start()
        C.ok(skytest.wait_api(apiport), "API up")
        st, _ = api(apiport, "POST", "/skydns/api/1.0.0.10.in-addr.arpa.",
                    {"type": "PTR", "host": "k8s.skydns.local."})
        C.eq(st, 201, "a PTR at 1.0.0.10.in-addr.arpa. written")
        C.eq(ptr(d.port, "1.0.0.10.in-addr.arpa."), ("NOERROR", ["k8s.skydns.local."]),
             "in-addr.arpa. as the domain: the record answers")
        r = ask(d.port, "2.0.0.10.in-addr.arpa.", "PTR")
        C.ok(r.rcode() == dns.rcode.NXDOMAIN and r.flags & dns.flags.AA and r.authority and
             r.authority[0].name.to_text() == "in-addr.arpa.",
             "NXDOMAIN with in-addr.arpa.'s own SOA")
        C.ok(d.alive(), "server alive")


def main():
    for t in ("nsd", "dig"):
        if not shutil.which(t):
            print("FAIL: %s not installed\n0 passed, 1 failed" % t)
            sys.exit(1)
    tmp = tempfile.mkdtemp(prefix="skydns-i17r-")
    nsd_proc = None
    apiport = skytest.free_port()
    # The reverse zones first: short names must still go to skydns.local.
    conf = ("dns-domains = %s%%skydns.local.%%d.f.ip6.arpa.\n[Api]\napi-enable = true\n"
            "api-address = 127.0.0.1:%d\n" % (REV, apiport))
    try:
        nsd_proc, nsd = skytest.start_nsd(tmp, "10.in-addr.arpa", NSD_ZONE,
                                          "  minimal-responses: no\n",
                                          probe="2.0.0.10.in-addr.arpa.")
        with Skydns(None, extra_conf=conf) as d:
            d.import_zone(ZONE, REV)
            # Without -origin a zone goes to the first forward domain, not to 10.in-addr.arpa.
            d.import_zone("$TTL 300\nmail A 10.0.0.3\n")
            d.start()
            C.ok(skytest.wait_api(apiport), "API up")
            r = ask(d.port, "mail.skydns.local.", "A")
            C.eq(section(r.answer), {("mail.skydns.local.", "A", 300, "10.0.0.3")},
                 "an import without -origin lands in skydns.local., listed second")
            differential(d.port, nsd)
            api_writes(d, apiport)
            C.ok(d.alive(), "server alive")
        whole_arpa()
    finally:
        if nsd_proc:
            nsd_proc.terminate()
            nsd_proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    C.finish()


if __name__ == "__main__":
    main()
