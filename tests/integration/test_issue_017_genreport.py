#!/usr/bin/python3
"""
Issue 17, the project's own equivalent of ISC genreport (the EDNS compliance report;
genreport itself is not packaged in Debian): its probe set, plus TSIG, sent to skydns,
NSD and Knot DNS serving the same zone (NSD and Knot are secondaries of the skydns under
test, so the data is identical), with a table of which server passes which check.

Every check is a question and a rule on the reply, as genreport states them: plain DNS,
EDNS version 0, version 1 (BADVERS, version 0 in the reply, with and without DO and an
unknown option), an unknown EDNS option (ignored, not echoed), unknown EDNS flag bits
(cleared in the reply), DO copied, the header Z bit (cleared), EDNS over TCP, opcode 15
(NOTIMP, only RD copied), an unknown type (NODATA), EDNS buffer 512 with a big answer
(TC over UDP, whole over TCP; a small answer fits), a buffer below 512 (treated as 512),
padding, cookie (alone and with DO), ECS and keepalive options and genreport's option
list, an unknown option over TCP, two OPT RRs (FORMERR), a DO query on the unsigned zone
(no RRSIG, NODATA for DNSKEY, also at buffer 512), and TSIG: good (signed reply that
verifies), unknown key (NOTAUTH/BADKEY), wrong secret (NOTAUTH/BADSIG), a clock off by
1000 s (NOTAUTH/BADTIME, signed) and a TSIG that is not the last record (FORMERR).

Last run: skydns passes all 34; NSD 4.6 fails edns1do (DO not copied on BADVERS), opcode
(CD copied), cookie (none) and tsig-badtime (unsigned); Knot 3.2 fails cookie (its cookies
module is off by default).

The assertion: on every check, skydns is nothing worse than NSD or Knot (it passes every
check either of them passes), and it passes the checks the issue names outright (DO bit,
opcode flags, TSIG).
"""
import os
import shutil
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.renderer
import dns.rdatatype
import dns.tsigkeyring

import skytest
from skytest import Checks, Skydns, tcp_query, udp_query
from test_issue_017_auth import BODY  # noqa: E402  the differential's zone
from test_issue_017_tsig import (RING, S256, WRONG, nsd_key, signed,  # noqa: E402
                                 tsig_fields, wait_for)

C = Checks()
ZONE = "$ORIGIN skydns.local.\n$TTL 300\n" + BODY
APEX = "skydns.local."
WWW = "www.skydns.local."
BIG = "big.skydns.local."  # 40 A records: more than 512 bytes
COOKIE = bytes(range(1, 9))
# Checks skydns must pass whatever the others do: the acceptance names them.
REQUIRED = {"do", "edns1do", "ednstcp-do", "opcode", "opcode-tcp", "dnssec-unsigned", "tsig-good",
            "tsig-badkey", "tsig-badsig", "tsig-badtime"}


def hdr(flags=0x0000, qd=1, ar=0, id_=0x4242):
    return struct.pack("!HHHHHH", id_, flags, qd, 0, 0, ar)


def question(name, qtype):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00" + struct.pack("!HH", dns.rdatatype.from_text(qtype), 1)


def opt(udp=4096, version=0, flags=0, options=()):
    body = b"".join(struct.pack("!HH", c, len(v)) + v for c, v in options)
    return b"\x00" + struct.pack("!HHBBHH", 41, udp, 0, version, flags, len(body)) + body


def raw(port, wire, tcp):
    return tcp_query(port, wire) if tcp else udp_query(port, wire)


def send(port, name, qtype, flags=0, edns=None, tcp=False):
    """Ask (edns: opt() bytes or None); returns (wire, parsed message)."""
    wire = hdr(flags, ar=1 if edns else 0) + question(name, qtype) + (edns or b"")
    r = raw(port, wire, tcp)
    return r, dns.message.from_wire(r)


def hflags(r):
    return struct.unpack("!H", r[2:4])[0]


def opt_rr(m):
    """(version, ednsflags, option codes) of the reply's OPT, None without one."""
    if m.edns < 0:
        return None
    return m.edns, m.ednsflags, [o.otype for o in m.options]


def soa_ok(m, r):
    return (m.rcode() == 0 and hflags(r) & 0x0400 and
            any(rs.rdtype == dns.rdatatype.SOA for rs in m.answer))


# Each check: (port) -> (passed, what the reply was). The rules are genreport's.
def c_dns(p):
    r, m = send(p, APEX, "SOA")
    return bool(soa_ok(m, r) and opt_rr(m) is None), "rcode %d no OPT %s" % (
        m.rcode(), opt_rr(m) is None)


def c_aa_rd(p):
    # genreport's rd check: RD in the query is copied, AA set for the zone.
    r, m = send(p, APEX, "SOA", flags=0x0100)
    return bool(soa_ok(m, r) and hflags(r) & 0x0100), "flags %04x" % hflags(r)


def c_zflag(p):
    r, m = send(p, APEX, "SOA", flags=0x0040)
    return bool(soa_ok(m, r) and not hflags(r) & 0x0040), "flags %04x" % hflags(r)


def c_edns(p):
    r, m = send(p, APEX, "SOA", edns=opt())
    o = opt_rr(m)
    return bool(soa_ok(m, r) and o and o[0] == 0), "opt %s" % (o,)


def c_edns1(p, flags=0, options=()):
    r, m = send(p, APEX, "SOA", edns=opt(version=1, flags=flags, options=options))
    o = opt_rr(m)
    good = m.rcode() == dns.rcode.BADVERS and o and o[0] == 0 and not m.answer
    if flags & 0x8000:
        good = good and o[1] & 0x8000
    if options:
        good = good and not set(o[2]) & {c for c, _ in options}
    return bool(good), "rcode %s opt %s" % (dns.rcode.to_text(m.rcode()), o)


def c_edns1opt(p):
    return c_edns1(p, options=[(100, b"")])


def c_edns1do(p):
    return c_edns1(p, flags=0x8000)


def c_ednsopt(p):
    r, m = send(p, APEX, "SOA", edns=opt(options=[(100, b"")]))
    o = opt_rr(m)
    return bool(soa_ok(m, r) and o and 100 not in o[2]), "opt %s" % (o,)


def c_ednsflags(p):
    # genreport: +ednsflags=0x80, an undefined bit; the reply must clear it (RFC 6891 §6.1.4).
    r, m = send(p, APEX, "SOA", edns=opt(flags=0x0080))
    o = opt_rr(m)
    return bool(soa_ok(m, r) and o and o[1] & 0x7fff == 0), "opt %s" % (o,)


def c_do(p, tcp=False):
    r, m = send(p, APEX, "SOA", edns=opt(flags=0x8000), tcp=tcp)
    o = opt_rr(m)
    return bool(soa_ok(m, r) and o and o[1] & 0x8000), "opt %s" % (o,)


def c_ednstcp(p):
    r, m = send(p, APEX, "SOA", edns=opt(), tcp=True)
    o = opt_rr(m)
    return bool(soa_ok(m, r) and o and o[0] == 0), "opt %s" % (o,)


def c_ednstcp_do(p):
    return c_do(p, tcp=True)


def c_opcode(p, tcp=False):
    # genreport: +opcode=15 → NOTIMP. Of the query's RD, CD and AD, only RD comes back
    # (RFC 1035 §4.1.1 copies RD; CD and AD mean nothing without a query).
    wire = hdr((15 << 11) | 0x0100 | 0x0010 | 0x0020) + question(APEX, "SOA")
    r = raw(p, wire, tcp)
    f = hflags(r)
    good = (f & 0xf == dns.rcode.NOTIMP and (f >> 11) & 0xf == 15 and f & 0x8000 and
            f & 0x0100 and not f & 0x0030 and not f & 0x0400)
    return bool(good), "flags %04x" % f


def c_opcode_tcp(p):
    return c_opcode(p, tcp=True)


def c_type666(p):
    r, m = send(p, WWW, "TYPE666", edns=opt())
    good = (m.rcode() == 0 and hflags(r) & 0x0400 and not m.answer and
            any(rs.rdtype == dns.rdatatype.SOA for rs in m.authority))
    return bool(good), "rcode %d answer %d" % (m.rcode(), len(m.answer))


def c_tc512(p):
    # An answer over 512 bytes with EDNS buffer 512: TC over UDP, the whole over TCP.
    r, m = send(p, BIG, "A", edns=opt(udp=512))
    rt, mt = send(p, BIG, "A", edns=opt(udp=512), tcp=True)
    n = sum(len(rs) for rs in mt.answer)
    good = len(r) <= 512 and hflags(r) & 0x0200 and not hflags(rt) & 0x0200 and n == 40
    return bool(good), "udp %d bytes flags %04x, tcp %d records" % (len(r), hflags(r), n)


def c_edns512(p):
    r, m = send(p, APEX, "SOA", edns=opt(udp=512))
    return bool(soa_ok(m, r) and not hflags(r) & 0x0200), "flags %04x" % hflags(r)


def c_bufsize_small(p):
    # RFC 6891 §6.2.5: a buffer below 512 is treated as 512, so a small answer still fits.
    r, m = send(p, APEX, "SOA", edns=opt(udp=100))
    return bool(soa_ok(m, r) and not hflags(r) & 0x0200), "%d bytes flags %04x" % (
        len(r), hflags(r))


def c_padding(p):
    # RFC 7830: a padding option is accepted (a server pads only over encrypted transports).
    r, m = send(p, APEX, "SOA", edns=opt(options=[(12, b"\x00" * 32)]), tcp=True)
    o = opt_rr(m)
    return bool(soa_ok(m, r) and o), "opt %s" % (o,)


def c_cookie(p):
    r, m = send(p, APEX, "SOA", edns=opt(options=[(10, COOKIE)]))
    got = [o.to_wire() if hasattr(o, "to_wire") else o.data for o in m.options if o.otype == 10]
    good = (soa_ok(m, r) and len(got) == 1 and got[0][:8] == COOKIE and
            16 <= len(got[0]) <= 40)
    return bool(good), "cookie %s" % (got[0].hex() if got else None)


def c_optlist(p):
    # genreport's optlist: NSID, ECS, EXPIRE, COOKIE, keepalive, padding in one query.
    ecs = struct.pack("!HBB", 1, 24, 0) + bytes([192, 0, 2])
    opts = [(3, b""), (8, ecs), (9, b""), (10, COOKIE), (11, b""), (12, b"\x00" * 8)]
    r, m = send(p, APEX, "SOA", edns=opt(options=opts))
    o = opt_rr(m)
    return bool(soa_ok(m, r) and o), "opt %s" % (o,)


def c_ecs(p):
    # A server without ECS support ignores the option (RFC 7871 §7.1.3): an answer, no error.
    ecs = struct.pack("!HBB", 1, 24, 0) + bytes([192, 0, 2])
    r, m = send(p, APEX, "SOA", edns=opt(options=[(8, ecs)]))
    return bool(soa_ok(m, r)), "rcode %d" % m.rcode()


def c_keepalive(p):
    # RFC 7828: edns-tcp-keepalive over TCP is answered (with a timeout or without one).
    r, m = send(p, APEX, "SOA", edns=opt(options=[(11, b"")]), tcp=True)
    o = opt_rr(m)
    return bool(soa_ok(m, r) and o), "opt %s" % (o,)


def c_ednsopt_tcp(p):
    r, m = send(p, APEX, "SOA", edns=opt(options=[(100, b"")]), tcp=True)
    o = opt_rr(m)
    return bool(soa_ok(m, r) and o and 100 not in o[2]), "opt %s" % (o,)


def c_do_cookie(p):
    r, m = send(p, APEX, "SOA", edns=opt(flags=0x8000, options=[(10, COOKIE)]))
    o = opt_rr(m)
    return bool(soa_ok(m, r) and o and o[1] & 0x8000), "opt %s" % (o,)


def c_two_opt(p):
    # RFC 6891 §6.1.1: more than one OPT RR is FORMERR.
    wire = hdr(ar=2) + question(APEX, "SOA") + opt() + opt()
    r = raw(p, wire, False)
    return r[3] & 0xf == dns.rcode.FORMERR, "rcode %d" % (r[3] & 0xf)


def c_tsig_not_last(p):
    # RFC 8945 §5.1: a TSIG that is not the last additional record is FORMERR.
    wire = signed(WWW, "A", "k256.", edns=False).to_wire()
    wire = wire[:11] + bytes([wire[11] + 1]) + wire[12:] + opt()
    r = raw(p, wire, False)
    return r[3] & 0xf == dns.rcode.FORMERR, "rcode %d" % (r[3] & 0xf)


def c_dnssec_512(p):
    # genreport's edns512: DNSKEY with DO at buffer 512; on an unsigned zone a NODATA that fits.
    r, m = send(p, APEX, "DNSKEY", edns=opt(udp=512, flags=0x8000))
    good = (m.rcode() == 0 and not m.answer and not hflags(r) & 0x0200 and
            m.ednsflags & 0x8000 and hflags(r) & 0x0400)
    return bool(good), "rcode %d flags %04x" % (m.rcode(), hflags(r))


def c_dnssec_unsigned(p):
    # DO on an unsigned zone: the answer as without DO, DO copied, no RRSIG; DNSKEY: NODATA.
    r, m = send(p, APEX, "SOA", edns=opt(flags=0x8000))
    rk, mk = send(p, APEX, "DNSKEY", edns=opt(flags=0x8000))
    sigs = [rs for rs in m.answer + m.authority if rs.rdtype == dns.rdatatype.RRSIG]
    good = (soa_ok(m, r) and m.ednsflags & 0x8000 and not sigs and mk.rcode() == 0 and
            not mk.answer and hflags(rk) & 0x0400)
    return bool(good), "rrsig %d dnskey rcode %d answer %d" % (len(sigs), mk.rcode(),
                                                              len(mk.answer))


def c_tsig_good(p):
    q = signed(WWW, "A", "k256.")
    try:
        m = dns.message.from_wire(udp_query(p, q.to_wire()), keyring=RING, request_mac=q.mac)
    except dns.exception.DNSException as e:
        return False, repr(e)
    return bool(m.had_tsig and m.rcode() == 0 and m.answer), "rcode %d signed %s" % (
        m.rcode(), m.had_tsig)


def tsig_error(wire_q, p):
    r = udp_query(p, wire_q)
    try:
        err, _, maclen = tsig_fields(r)
    except (AssertionError, IndexError, struct.error):
        return r[3] & 0xf, None, None
    return r[3] & 0xf, err, maclen


def c_tsig_badkey(p):
    q = dns.message.make_query(WWW, "A", use_edns=0)
    q.use_tsig(dns.tsigkeyring.from_text({"nokey.": ("hmac-sha256", S256)}), keyname="nokey.",
               algorithm="hmac-sha256")
    got = tsig_error(q.to_wire(), p)
    return got[:2] == (dns.rcode.NOTAUTH, 17), "rcode, tsig error, mac %s" % (got,)


def c_tsig_badsig(p):
    got = tsig_error(signed(WWW, "A", "k256.", ring=WRONG).to_wire(), p)
    return got[:2] == (dns.rcode.NOTAUTH, 16), "rcode, tsig error, mac %s" % (got,)


def c_tsig_badtime(p):
    real = dns.renderer.time.time
    dns.renderer.time.time = lambda: real() - 1000
    try:
        wire_q = signed(WWW, "A", "k256.").to_wire()
    finally:
        dns.renderer.time.time = real
    got = tsig_error(wire_q, p)
    # §5.2.3: BADTIME is signed (a MAC), so the client knows the time came from the server.
    return got[:2] == (dns.rcode.NOTAUTH, 18) and bool(got[2]), "rcode, tsig error, mac %s" % (
        got,)


CHECKS = [("dns", c_dns), ("rd", c_aa_rd), ("zflag", c_zflag), ("edns", c_edns),
          ("edns1", c_edns1), ("edns1opt", c_edns1opt), ("edns1do", c_edns1do),
          ("ednsopt", c_ednsopt), ("ednsflags", c_ednsflags), ("do", c_do),
          ("ednstcp", c_ednstcp), ("ednstcp-do", c_ednstcp_do), ("opcode", c_opcode),
          ("opcode-tcp", c_opcode_tcp),          ("type666", c_type666), ("edns512-tc", c_tc512), ("edns512", c_edns512),
          ("bufsize<512", c_bufsize_small), ("padding", c_padding), ("cookie", c_cookie),
          ("optlist", c_optlist), ("ecs", c_ecs), ("keepalive-tcp", c_keepalive),
          ("ednsopt-tcp", c_ednsopt_tcp), ("do-cookie", c_do_cookie), ("two-opt", c_two_opt),
          ("dnssec-unsigned", c_dnssec_unsigned), ("dnssec-512", c_dnssec_512),
          ("tsig-not-last", c_tsig_not_last),
          ("tsig-good", c_tsig_good), ("tsig-badkey", c_tsig_badkey),
          ("tsig-badsig", c_tsig_badsig), ("tsig-badtime", c_tsig_badtime)]


def run(port):
    out = {}
    for name, fn in CHECKS:
        try:
            out[name] = fn(port)
        except Exception as e:  # noqa: BLE001 - no answer or an unparseable one fails
            out[name] = (False, repr(e))
    return out


def report(results):
    names = list(results)
    print("%-16s %s" % ("check", " ".join("%-7s" % n for n in names)))
    for check, _ in CHECKS:
        print("%-16s %s" % (check, " ".join("%-7s" % ("ok" if results[n][check][0] else "FAIL")
                                           for n in names)))
    for n in names:
        for check, _ in CHECKS:
            if not results[n][check][0]:
                print("  %s %s: %s" % (n, check, results[n][check][1]))


def main():
    for t in ("nsd", "knotd"):
        if not shutil.which(t):
            print("FAIL: %s not installed\n0 passed, 1 failed" % t)
            sys.exit(1)
    tmp = tempfile.mkdtemp(prefix="skydns-i17g-")
    procs = []
    try:
        keys = "tsig-keys = k256. hmac-sha256 %s\n" % S256
        with Skydns(ZONE, extra_conf="xfr-allow = 127.0.0.1\n" + keys) as d:
            d.start()
            nsd, nport = skytest.start_nsd(
                os.path.join(tmp, "nsd"), "skydns.local", "",
                "  minimal-responses: no\n" + nsd_key(S256), probe=APEX,
                extra_zone="  request-xfr: AXFR 127.0.0.1@%d NOKEY\n" % d.port)
            procs.append(nsd)
            kport = skytest.free_port()
            procs.append(skytest.start_knot(os.path.join(tmp, "knot"), "skydns.local", d.port,
                                            key=("k256.", "hmac-sha256", S256), port=kport))
            for who, port in (("nsd", nport), ("knot", kport)):
                C.ok(wait_for(port, WWW, {"10.0.0.1"}, within=10.0),
                     "%s has the zone from skydns" % who)
            results = {"skydns": run(d.port), "nsd": run(nport), "knot": run(kport)}
            report(results)
            for check, _ in CHECKS:
                sky = results["skydns"][check]
                better = [n for n in ("nsd", "knot") if results[n][check][0]]
                C.ok(sky[0] or not better, "%s: skydns no worse than %s (%s)" % (
                    check, "/".join(better) or "nsd and knot", sky[1]))
                if check in REQUIRED:
                    C.ok(sky[0], "%s: skydns passes (%s)" % (check, sky[1]))
            C.ok(d.alive(), "server alive")
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    C.finish()


if __name__ == "__main__":
    main()
