"""
Issue 17, EDNS options: NSID (RFC 5001), DNS cookies (RFC 7873, server cookies as RFC
9018 builds them) and Extended DNS Errors (RFC 8914), on the real daemon over UDP and TCP.

- NSID: answered only when asked and only when `nsid` is set; text, 0x-hex and
  `hostname`; the same option bytes as NSD configured with the same identity.
- Cookies: a client cookie gets it back with a fresh 16-byte server cookie (version 1,
  timestamp now); a returned server cookie is accepted; a malformed COOKIE length is
  FORMERR; `cookies = require` answers BADCOOKIE (with a fresh cookie) to UDP queries
  without a valid server cookie, answers the same query once the cookie is returned and
  never over TCP; `cookies = off` sends none; two servers with one `cookie-secret`
  accept each other's cookies (anycast); a valid cookie exempts a client from RRL.
- EDE: REFUSED outside the domains with forwarding off says 20 (Not Authoritative), a
  class other than IN 21 (Not Supported), a forwarded SERVFAIL after every upstream failed
  22 (No Reachable Authority), a closed upstream port 23 (Network Error); kdig shows them.
"""
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import dns.edns
import dns.flags
import dns.message
import dns.rcode

import skytest
from skytest import Checks, Skydns, tcp_query, udp_query

C = Checks()
ZONE = "$ORIGIN skydns.local.\n$TTL 300\nwww A 10.0.0.1\n"
NSD_ZONE = ("$ORIGIN skydns.local.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n"
            "@ IN NS ns1\nns1 IN A 127.0.0.1\nwww A 10.0.0.1\n")
CLIENT = bytes(range(1, 9))


def query(port, name="www.skydns.local.", opts=(), tcp=False, rdclass="IN", edns=True):
    q = dns.message.make_query(name, "A", rdclass=rdclass, use_edns=0 if edns else False,
                               payload=1232,
                               options=[dns.edns.GenericOption(c, v) for c, v in opts])
    wire = q.to_wire()
    raw = tcp_query(port, wire) if tcp else udp_query(port, wire)
    return dns.message.from_wire(raw)


def opt(r, code):
    for o in r.options:
        if o.otype == code:
            return o.to_wire() if hasattr(o, "to_wire") else o.data
    return None


def nsid_checks(sky, nsd):
    for tcp in (False, True):
        how = "tcp" if tcp else "udp"
        s = query(sky, opts=[(3, b"")], tcp=tcp)
        n = query(nsd, opts=[(3, b"")], tcp=tcp)
        C.eq(opt(s, 3), b"node-7", "NSID answered [%s]" % how)
        C.eq(opt(s, 3), opt(n, 3), "NSID bytes as NSD's [%s]" % how)
        C.eq(opt(query(sky, tcp=tcp), 3), None, "no NSID when not asked [%s]" % how)
        C.eq(opt(query(sky, name="nope.skydns.local.", opts=[(3, b"")], tcp=tcp), 3),
             b"node-7", "NSID in an NXDOMAIN [%s]" % how)
    out = subprocess.run(["kdig", "@127.0.0.1", "-p", str(sky), "+nsid", "www.skydns.local."],
                         capture_output=True, text=True, timeout=20).stdout
    C.ok('NSID: 6E6F64652D37 "node-7"' in out, "kdig +nsid shows it")
    for conf, want in (("nsid = 0x6e6f6465\n", b"node"),
                       ("nsid = hostname\n", socket.gethostname().encode()),
                       ("", None)):
        with Skydns(ZONE, extra_conf=conf) as d:
            d.start()
            C.eq(opt(query(d.port, opts=[(3, b"")]), 3), want, "nsid %r" % conf.strip())


def server_cookie(r):
    c = opt(r, 10)
    return c[8:] if c and len(c) == 24 and c[:8] == CLIENT else None


def cookie_checks(port):
    for tcp in (False, True):
        how = "tcp" if tcp else "udp"
        r = query(port, opts=[(10, CLIENT)], tcp=tcp)
        sc = server_cookie(r)
        C.ok(sc is not None, "client cookie echoed with a 16-byte server cookie [%s]" % how)
        if sc:
            C.eq(sc[:4], b"\x01\x00\x00\x00", "RFC 9018 version 1, reserved 0 [%s]" % how)
            ts = struct.unpack("!I", sc[4:8])[0]
            C.ok(abs(ts - time.time()) < 30, "timestamp is now [%s]" % how)
            r2 = query(port, opts=[(10, CLIENT + sc)], tcp=tcp)
            C.ok(r2.rcode() == dns.rcode.NOERROR and server_cookie(r2) is not None,
                 "the returned cookie is answered, with a fresh one [%s]" % how)
        # Default policy: a bad server cookie is answered, with a fresh cookie.
        r = query(port, opts=[(10, CLIENT + b"\x01" + b"\x00" * 15)], tcp=tcp)
        C.ok(r.rcode() == dns.rcode.NOERROR and server_cookie(r) is not None,
             "a bad server cookie is still answered by default [%s]" % how)
        for bad in (5, 12, 41):
            r = query(port, opts=[(10, b"\x07" * bad)], tcp=tcp)
            C.eq(dns.rcode.to_text(r.rcode()), "FORMERR",
                 "a %d-byte COOKIE is FORMERR [%s]" % (bad, how))
        r = query(port, tcp=tcp)
        C.eq(opt(r, 10), None, "no cookie asked, none sent [%s]" % how)
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+cookie", "www.skydns.local."],
                         capture_output=True, text=True, timeout=20).stdout
    C.ok("COOKIE:" in out and "(good)" in out, "dig +cookie calls it good")


def require_checks():
    conf = "cookies = require\ncookie-secret = 000102030405060708090a0b0c0d0e0f\n"
    with Skydns(ZONE, extra_conf=conf) as a, Skydns(ZONE, extra_conf=conf) as b:
        a.start()
        b.start()
        r = query(a.port, opts=[(10, CLIENT)])
        C.eq(r.rcode(), 23, "require: a client cookie alone gets BADCOOKIE over UDP")
        sc = server_cookie(r)
        C.ok(sc is not None and not r.answer, "BADCOOKIE carries a fresh cookie, no answer")
        if sc:
            r = query(a.port, opts=[(10, CLIENT + sc)])
            C.ok(r.rcode() == dns.rcode.NOERROR and len(r.answer) == 1,
                 "require: the returned cookie gets the answer")
            r = query(b.port, opts=[(10, CLIENT + sc)])
            C.ok(r.rcode() == dns.rcode.NOERROR and len(r.answer) == 1,
                 "one cookie-secret: the other server accepts the cookie")
            tampered = sc[:-1] + bytes([sc[-1] ^ 1])
            C.eq(query(a.port, opts=[(10, CLIENT + tampered)]).rcode(), 23,
                 "require: a tampered server cookie gets BADCOOKIE")
        C.eq(query(a.port, opts=[(10, CLIENT)], tcp=True).rcode(), dns.rcode.NOERROR,
             "require: TCP is answered without a server cookie")
        C.eq(query(a.port).rcode(), dns.rcode.NOERROR,
             "require: a client without cookies is answered")
        out = subprocess.run(["kdig", "@127.0.0.1", "-p", str(a.port), "+cookie",
                              "www.skydns.local."], capture_output=True, text=True,
                             timeout=20).stdout
        C.ok("status: NOERROR" in out and "10.0.0.1" in out,
             "kdig +cookie retries after BADCOOKIE and gets the answer")
    with Skydns(ZONE, extra_conf="cookies = off\n") as d:
        d.start()
        C.eq(opt(query(d.port, opts=[(10, CLIENT)]), 10), None, "cookies = off: none sent")


def burst(port, opts, n=30):
    """Send n queries at once from one socket; count the answers within 1 s."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.3)
    try:
        for i in range(n):
            q = dns.message.make_query("www.skydns.local.", "A", use_edns=0, options=[
                dns.edns.GenericOption(c, v) for c, v in opts])
            s.sendto(q.to_wire(), ("127.0.0.1", port))
        got, end = 0, time.monotonic() + 1.0
        while got < n and time.monotonic() < end:
            try:
                s.recv(4096)
                got += 1
            except socket.timeout:
                pass
        return got
    finally:
        s.close()


def rrl_checks():
    with Skydns(ZONE, extra_conf="rrl-responses-per-second = 2\nrrl-slip = 0\n") as d:
        d.start()
        sc = server_cookie(query(d.port, opts=[(10, CLIENT)], tcp=True))
        C.ok(sc is not None, "cookie over TCP for the RRL test")
        got_plain = burst(d.port, [(10, CLIENT)])  # no server cookie: limited
        got_cookie = burst(d.port, [(10, CLIENT + sc)])
        C.ok(got_plain < 15, "without a valid server cookie RRL drops (%d/30 answered)"
             % got_plain)
        C.eq(got_cookie, 30, "a valid server cookie is exempt from RRL")


def ede_checks(port):
    for tcp in (False, True):
        how = "tcp" if tcp else "udp"
        r = query(port, name="example.com.", tcp=tcp)
        C.eq((dns.rcode.to_text(r.rcode()), opt(r, 15)), ("REFUSED", b"\x00\x14"),
             "outside the domains, no forwarding: REFUSED, EDE 20 [%s]" % how)
        r = query(port, rdclass="CH", tcp=tcp)
        C.eq((dns.rcode.to_text(r.rcode()), opt(r, 15)), ("REFUSED", b"\x00\x15"),
             "class CH: REFUSED, EDE 21 [%s]" % how)
        C.eq(opt(query(port, tcp=tcp), 15), None, "an answer carries no EDE [%s]" % how)
    out = subprocess.run(["kdig", "@127.0.0.1", "-p", str(port), "+edns", "example.com."],
                         capture_output=True, text=True, timeout=20).stdout
    C.ok(re.search(r"EDE: 20 \(Not Authoritative\)", out) is not None, "kdig shows EDE 20")


def forward_ede_checks():
    """Every upstream failed: SERVFAIL says why (EDE 22). A bound socket that never answers."""
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind(("127.0.0.1", 0))
    try:
        conf = ("nameservers = 127.0.0.1:%d\nforward-timeout = 0.3\nmax-fails = 0\n"
                % dead.getsockname()[1])
        with Skydns(ZONE, extra_conf=conf) as d:
            d.start()
            q = dns.message.make_query("example.com.", "A", use_edns=0)
            r = dns.message.from_wire(udp_query(d.port, q.to_wire(), timeout=5.0))
            C.eq((dns.rcode.to_text(r.rcode()), opt(r, 15)), ("SERVFAIL", b"\x00\x16"),
                 "no upstream answered: SERVFAIL, EDE 22 (No Reachable Authority)")
    finally:
        dead.close()
    # A closed port: ICMP port unreachable on every try, no timeout: EDE 23 (Network Error).
    closed = skytest.free_port()
    conf = "nameservers = 127.0.0.1:%d\nforward-timeout = 1\nmax-fails = 0\n" % closed
    with Skydns(ZONE, extra_conf=conf) as d:
        d.start()
        q = dns.message.make_query("example.com.", "A", use_edns=0)
        r = dns.message.from_wire(udp_query(d.port, q.to_wire(), timeout=5.0))
        C.eq((dns.rcode.to_text(r.rcode()), opt(r, 15)), ("SERVFAIL", b"\x00\x17"),
             "the upstream port is closed: SERVFAIL, EDE 23 (Network Error)")


def main():
    for t in ("nsd", "kdig", "dig"):
        if not shutil.which(t):
            print("FAIL: %s not installed\n0 passed, 1 failed" % t)
            sys.exit(1)
    tmp = tempfile.mkdtemp(prefix="skydns-i17e-")
    nsd_proc = None
    try:
        nsd_proc, nsd = skytest.start_nsd(tmp, "skydns.local", NSD_ZONE,
                                          "  nsid: \"ascii_node-7\"\n")
        with Skydns(ZONE, extra_conf="nsid = node-7\n") as d:
            d.start()
            nsid_checks(d.port, nsd)
            cookie_checks(d.port)
            ede_checks(d.port)
            C.ok(d.alive(), "server alive")
        require_checks()
        rrl_checks()
        forward_ede_checks()
    finally:
        if nsd_proc:
            nsd_proc.terminate()
            nsd_proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    C.finish()


if __name__ == "__main__":
    main()
