"""
Issue 17 (the authoritative side): the real skydns next to NSD on the same zone.

- DO copied into replies (RFC 3225 section 3), seen by kdig +dnssec and dig +dnssec,
  over UDP and TCP, as NSD does.
- Wildcards (closest encloser, NODATA, CNAME wildcards) and delegations (referrals
  with AA clear, NS in authority, glue in additional, glue never answered).
- Additional-section processing: A/AAAA of in-zone SRV, MX and NS targets, and an
  address for the synthesized apex NS ns1.<domain> (ns-address, default the listen
  address), never causing TC.
- The differential part: every question below is sent to both servers over UDP and
  TCP; rcode, flags and the answer, authority and additional sets must be the same
  (SOA rdata aside: skydns synthesizes its own serial). NSD runs with
  minimal-responses: no, since "yes" drops the SRV/MX targets' addresses too; it then
  adds the apex NS (and its glue) to every positive answer, which skydns, like Knot,
  does not: that one RRset and its glue are taken out of NSD's reply before comparing.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

import skytest
from skytest import Checks, Skydns, tcp_query, udp_query

C = Checks()

BODY = """www A 10.0.0.1
www AAAA fd00::1
mail A 10.0.0.2
@ MX 10 mail
mx2 MX 10 www
mx2 MX 20 mail.example.com.
_http._tcp SRV 10 20 80 www
_http._tcp SRV 10 20 8080 gone
_big._tcp SRV 10 20 80 big
_big._tcp SRV 10 20 80 mail
*.wild A 10.0.5.1
x.wild A 10.0.5.2
*.cw CNAME www
deleg NS ns.deleg
ns.deleg A 10.0.6.1
ext NS ns.example.com.
_s._tcp SRV 0 0 53 ns.deleg
""" + "".join("big A 10.1.0.%d\n" % i for i in range(1, 41))

ZONE = "$ORIGIN skydns.local.\n$TTL 300\n" + BODY
# NSD needs what skydns synthesizes: the SOA, and the apex NS with its address.
NSD_ZONE = ("$ORIGIN skydns.local.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n"
            "@ 3600 IN NS ns1\nns1 3600 IN A 127.0.0.1\n" + BODY)

# (name, type): every kind of answer the items touch.
QUESTIONS = [
    ("www.skydns.local.", "A"),
    ("_http._tcp.skydns.local.", "SRV"),
    ("_big._tcp.skydns.local.", "SRV"),
    ("skydns.local.", "MX"),
    ("mx2.skydns.local.", "MX"),
    ("skydns.local.", "NS"),
    ("ns1.skydns.local.", "A"),
    ("ns1.skydns.local.", "AAAA"),
    ("nope.skydns.local.", "A"),
    ("www.skydns.local.", "TXT"),
    # wildcards (RFC 4592)
    ("abc.wild.skydns.local.", "A"),
    ("d.e.wild.skydns.local.", "A"),
    ("abc.wild.skydns.local.", "AAAA"),
    ("*.wild.skydns.local.", "A"),
    ("x.wild.skydns.local.", "A"),
    ("x.wild.skydns.local.", "TXT"),
    ("a.x.wild.skydns.local.", "A"),
    ("foo.cw.skydns.local.", "A"),
    ("foo.cw.skydns.local.", "CNAME"),
    # delegations: referrals, glue not answered authoritatively
    ("deleg.skydns.local.", "NS"),
    ("deleg.skydns.local.", "A"),
    ("www.deleg.skydns.local.", "A"),
    ("ns.deleg.skydns.local.", "A"),
    ("ns.deleg.skydns.local.", "AAAA"),
    ("a.ext.skydns.local.", "A"),
    ("_s._tcp.skydns.local.", "SRV"),
]


def start_nsd(tmp):
    # minimal-responses: no, because "yes" also drops the SRV/MX target addresses that
    # skydns (like Knot) adds; NSD then also adds the apex NS, which the comparison removes.
    return skytest.start_nsd(tmp, "skydns.local", NSD_ZONE, "  minimal-responses: no\n")


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def ask(port, name, rtype, tcp, do=False, payload=1232):
    q = dns.message.make_query(name, rtype, use_edns=0, payload=payload, want_dnssec=do)
    q.flags &= ~dns.flags.RD
    wire = q.to_wire()
    return dns.message.from_wire(tcp_query(port, wire) if tcp else udp_query(port, wire))


def section(rrsets):
    """A comparable set: (name, type, ttl, rdata); SOA rdata differs by design."""
    out = set()
    for rs in rrsets:
        for rd in rs:
            text = "" if rs.rdtype == dns.rdatatype.SOA else rd.to_text()
            out.add((rs.name.to_text().lower(), dns.rdatatype.to_text(rs.rdtype), rs.ttl, text))
    return out


APEX_NS = ("skydns.local.", "NS", 3600, "ns1.skydns.local.")


def nsd_minimal(r, auth, add):
    """NSD's positive answer without the apex NS it adds to the authority section."""
    if r.rcode() != dns.rcode.NOERROR or not r.answer or auth != {APEX_NS}:
        return auth, add
    targets = {x[3].split()[-1].lower() for x in section(r.answer)}
    return set(), {x for x in add if x[0] != "ns1.skydns.local." or x[0] in targets}


def differential(sky, nsd):
    for tcp in (False, True):
        for name, rtype in QUESTIONS:
            what = "%s %s [%s]" % (name, rtype, "tcp" if tcp else "udp")
            s, n = ask(sky, name, rtype, tcp), ask(nsd, name, rtype, tcp)
            C.eq(dns.rcode.to_text(s.rcode()), dns.rcode.to_text(n.rcode()), what + " rcode")
            C.eq(dns.flags.to_text(s.flags), dns.flags.to_text(n.flags), what + " flags")
            C.eq(section(s.answer), section(n.answer), what + " answer")
            n_auth, n_add = nsd_minimal(n, section(n.authority), section(n.additional))
            C.eq(section(s.authority), n_auth, what + " authority")
            C.eq(section(s.additional), n_add, what + " additional")
            C.eq(s.ednsflags & dns.flags.DO, n.ednsflags & dns.flags.DO, what + " DO")
    # Without EDNS the big SRV's 40 A do not fit 512 bytes: left out, no TC (NSD agrees).
    for port, who in ((sky, "skydns"), (nsd, "NSD")):
        q = dns.message.make_query("_big._tcp.skydns.local.", "SRV")
        r = dns.message.from_wire(udp_query(port, q.to_wire()))
        C.ok(not r.flags & dns.flags.TC, "%s: additional records never set TC" % who)
        C.eq(len(r.answer[0]) if r.answer else 0, 2, "%s: both SRV answered at 512" % who)


def do_bit(sky, nsd):
    for tcp in (False, True):
        for port, who in ((sky, "skydns"), (nsd, "NSD")):
            r = ask(port, "www.skydns.local.", "A", tcp, do=True)
            C.ok(r.ednsflags & dns.flags.DO, "%s DO copied [%s]" % (who, "tcp" if tcp else "udp"))
            r = ask(port, "nope.skydns.local.", "A", tcp, do=True)
            C.ok(r.ednsflags & dns.flags.DO, "%s DO copied in NXDOMAIN" % who)


def tool(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout


def with_tools(sky):
    for tcp in (False, True):
        how = "tcp" if tcp else "udp"
        if shutil.which("kdig"):
            out = tool(["kdig", "@127.0.0.1", "-p", str(sky), "+dnssec", "+norec"]
                       + (["+tcp"] if tcp else []) + ["www.skydns.local.", "A"])
            C.ok(re.search(r"Version: 0; flags: do;", out) is not None,
                 "kdig +dnssec sees DO in the reply [%s]" % how)
            out = tool(["kdig", "@127.0.0.1", "-p", str(sky), "+norec"]
                       + (["+tcp"] if tcp else []) + ["_http._tcp.skydns.local.", "SRV"])
            C.ok(re.search(r"^www\.skydns\.local\.\s+300\s+IN\s+A\s+10\.0\.0\.1$", out, re.M)
                 is not None, "kdig: the SRV target's A in additional [%s]" % how)
        else:
            C.ok(False, "kdig not installed")
        out = tool(["dig", "@127.0.0.1", "-p", str(sky), "+dnssec", "+norec"]
                   + (["+tcp"] if tcp else []) + ["skydns.local.", "NS"])
        C.ok(re.search(r"; EDNS: version: 0, flags: do;", out) is not None,
             "dig +dnssec sees DO [%s]" % how)
        C.ok(re.search(r"^ns1\.skydns\.local\.\s+3600\s+IN\s+A\s+127\.0\.0\.1$", out, re.M)
             is not None, "dig: the synthesized NS has its address in additional [%s]" % how)
        out = tool(["dig", "@127.0.0.1", "-p", str(sky), "+norec"]
                   + (["+tcp"] if tcp else []) + ["www.deleg.skydns.local.", "A"])
        flags = re.search(r";; flags: ([a-z ]+);", out)
        C.ok(flags is not None and "aa" not in flags.group(1).split(),
             "dig: a referral has AA clear [%s]" % how)
        C.ok(re.search(r"AUTHORITY: 1, ADDITIONAL: 2", out) is not None and
             re.search(r"^ns\.deleg\.skydns\.local\.\s+300\s+IN\s+A\s+10\.0\.6\.1$", out, re.M)
             is not None, "dig: referral NS in authority, glue in additional [%s]" % how)
        if shutil.which("kdig"):
            out = tool(["kdig", "@127.0.0.1", "-p", str(sky), "+norec", "+short"]
                       + (["+tcp"] if tcp else []) + ["any.name.wild.skydns.local.", "A"])
            C.eq(out.strip(), "10.0.5.1", "kdig: a wildcard answers [%s]" % how)
        out = tool(["dig", "@127.0.0.1", "-p", str(sky), "+norec", "+short"]
                   + (["+tcp"] if tcp else []) + ["ns1.skydns.local.", "A"])
        C.eq(out.strip(), "127.0.0.1", "dig: ns1.skydns.local. answers its address [%s]" % how)


def ns_address_conf():
    # A configured ns-address wins over the listen address.
    with Skydns(ZONE, extra_conf="ns-address = 192.0.2.53, 2001:db8::53\n") as d:
        d.start()
        r = ask(d.port, "skydns.local.", "NS", False)
        C.eq(section(r.additional), {("ns1.skydns.local.", "A", 3600, "192.0.2.53"),
                                     ("ns1.skydns.local.", "AAAA", 3600, "2001:db8::53")},
             "ns-address: both addresses in additional")
        r = ask(d.port, "ns1.skydns.local.", "AAAA", True)
        C.eq(section(r.answer), {("ns1.skydns.local.", "AAAA", 3600, "2001:db8::53")},
             "ns-address: AAAA answered")
    with Skydns(ZONE, extra_conf="ns-address = none\n") as d:
        d.start()
        r = ask(d.port, "skydns.local.", "NS", False)
        C.eq(len(r.additional), 0, "ns-address = none: no address")
        C.eq(ask(d.port, "ns1.skydns.local.", "A", False).rcode(), dns.rcode.NXDOMAIN,
             "ns-address = none: ns1 does not exist")


def main():
    for t in ("nsd", "dig"):
        if not shutil.which(t):
            print("FAIL: %s not installed\n0 passed, 1 failed" % t)
            sys.exit(1)
    tmp = tempfile.mkdtemp(prefix="skydns-i17-")
    nsd_proc = None
    try:
        nsd_proc, nsd = start_nsd(tmp)
        with Skydns(ZONE) as d:
            d.start()
            differential(d.port, nsd)
            do_bit(d.port, nsd)
            with_tools(d.port)
            C.ok(d.alive(), "server alive")
        ns_address_conf()
    finally:
        if nsd_proc:
            stop(nsd_proc)
        shutil.rmtree(tmp, ignore_errors=True)
    C.finish()


if __name__ == "__main__":
    main()
