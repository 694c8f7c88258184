#!/usr/bin/python3
"""
Issue 17, TSIG (RFC 8945): [Dns] tsig-keys sign queries and zone transfers, [Dns] xfr-key
makes a transfer need one of them.

- Signed queries with a known key (hmac-sha256, -sha512, -sha1; UDP and TCP) are answered
  and the answer's MAC verifies (dnspython checks it against the request MAC); a wrong
  secret gets NOTAUTH + unsigned TSIG BADSIG; a clock 1000 s off gets NOTAUTH with a
  signed TSIG BADTIME that carries our time as other data; a signed query outside the
  domains is REFUSED, signed.
- A signed AXFR of a 5000-name zone (several messages): every message verifies
  (dnspython's multi-message validation, §5.3.1) and the zone is complete; kdig -y too.
- xfr-key: unsigned AXFR and one signed with another known key are REFUSED, the xfr-key
  one is served.
- NSD as a secondary pulling with the key gets the zone; with a wrong secret it does not.
- NSD accepting only NOTIFY signed with the key (allow-notify: 127.0.0.1 k256.) follows a
  change within 2 s: skydns signs its NOTIFY with the xfr-key.
- Knot as a secondary, with and without TSIG, answers every question of the differential
  zone like skydns and follows a change after NOTIFY within 2 s.
"""
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.renderer
import dns.tsig
import dns.tsigkeyring
import dns.zone

import skytest
from skytest import Checks, Skydns, tcp_query, udp_query
from test_issue_017_auth import BODY, QUESTIONS  # noqa: E402  the differential's zone

C = Checks()
ZONE = "$ORIGIN skydns.local.\n$TTL 300\n" + BODY
BIG = "$ORIGIN skydns.local.\n$TTL 300\n" + "".join(
    "h%d A 10.1.%d.%d\n" % (i, i // 250, i % 250) for i in range(5000))
S256 = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"
S512 = "b3RoZXJvdGhlcm90aGVyb3RoZXJvdGhlcm90aGVy"
S1 = "c2hhb25lc2hhb25l"
LONGKEY = ".".join(["k" * 60] * 2) + "."  # 123 bytes on the wire; a config line holds it
KEYS = {"k256.": ("hmac-sha256", S256), "k512.": ("hmac-sha512", S512),
        "k1.": ("hmac-sha1", S1), LONGKEY: ("hmac-sha512", S512)}
# One line per key (the list continues on repeated keys; a line holds < 200 bytes).
CONF_KEYS = "".join("tsig-keys = %s %s %s\n" % (n, a, s) for n, (a, s) in KEYS.items())
RING = dns.tsigkeyring.from_text(KEYS)
WRONG = dns.tsigkeyring.from_text({"k256.": ("hmac-sha256", "d3Jvbmd3cm9uZ3dyb25n")})


def signed(name, rtype, key, ring=RING, edns=True):
    q = dns.message.make_query(name, rtype, use_edns=0 if edns else None)
    q.flags &= ~dns.flags.RD
    q.use_tsig(ring, keyname=key, algorithm=KEYS[key][0])
    return q


def tsig_fields(wire):
    """(error, other data) of the reply's last RR, a TSIG, read from the raw bytes."""
    # Parse forward to the last RR: header, question, then every RR.
    qd, an, ns, ar = struct.unpack("!4H", wire[4:12])

    def skip(i):
        while True:
            n = wire[i]
            if n == 0:
                return i + 1
            if n >= 0xC0:
                return i + 2
            i += n + 1
    i = 12
    for _ in range(qd):
        i = skip(i) + 4
    last = None
    for _ in range(an + ns + ar):
        i = skip(i)
        rtype, _, _, rdlen = struct.unpack("!HHIH", wire[i:i + 10])
        last = (rtype, i + 10, rdlen)
        i += 10 + rdlen
    rtype, rd, rdlen = last
    assert rtype == 250
    j = skip(rd) + 6 + 2
    maclen = struct.unpack("!H", wire[j:j + 2])[0]
    j += 2 + maclen + 2
    err, olen = struct.unpack("!HH", wire[j:j + 4])
    return err, wire[j + 4:j + 4 + olen], maclen


def query_checks(port):
    for key in KEYS:
        for tcp in (False, True):
            what = "%s %s" % (KEYS[key][0], "tcp" if tcp else "udp")
            q = signed("www.skydns.local.", "A", key)
            wire = tcp_query(port, q.to_wire()) if tcp else udp_query(port, q.to_wire())
            try:
                r = dns.message.from_wire(wire, keyring=RING, request_mac=q.mac)
                C.ok(r.had_tsig and r.tsig_error == 0, what + ": reply signed, MAC verifies")
                C.eq([str(x) for x in r.answer],
                     ["www.skydns.local. 300 IN A 10.0.0.1"], what + ": answer")
            except dns.exception.DNSException as e:
                C.ok(False, "%s: reply verifies (%r)" % (what, e))
    # Wrong secret: unsigned NOTAUTH/BADSIG.
    q = signed("www.skydns.local.", "A", "k256.", ring=WRONG)
    wire = udp_query(port, q.to_wire())
    C.eq(wire[3] & 0xf, 9, "wrong secret: NOTAUTH")
    err, _, maclen = tsig_fields(wire)
    C.eq((err, maclen), (16, 0), "wrong secret: TSIG BADSIG, no MAC")
    # 1000 s in the past: BADTIME, signed, our time as other data.
    real = dns.renderer.time.time
    dns.renderer.time.time = lambda: real() - 1000
    try:
        wire_q = signed("www.skydns.local.", "A", "k256.").to_wire()
    finally:
        dns.renderer.time.time = real
    wire = udp_query(port, wire_q)
    C.eq(wire[3] & 0xf, 9, "skewed clock: NOTAUTH")
    err, other, maclen = tsig_fields(wire)
    now = int(time.time())
    C.ok(err == 18 and maclen == 32 and len(other) == 6 and
         abs(int.from_bytes(other, "big") - now) < 5,
         "skewed clock: signed TSIG BADTIME with the server's time (err %d mac %d other %r)"
         % (err, maclen, other))
    # A long key and a long name over UDP without EDNS: no room for a TSIG in 512 bytes, so
    # TC (and the client retries over TCP, where the signed answer comes).
    long_name = ".".join(["n" * 61] * 3 + ["x" * 53]) + ".skydns.local."  # 254 bytes
    q = signed(long_name, "A", LONGKEY, edns=False)
    wire = udp_query(port, q.to_wire())
    C.ok(len(wire) <= 512 and wire[2] & 0x02, "long key and name over UDP: TC within 512 bytes")
    r = dns.message.from_wire(tcp_query(port, q.to_wire()), keyring=RING, request_mac=q.mac)
    C.ok(r.had_tsig and dns.rcode.to_text(r.rcode()) == "NXDOMAIN",
         "... over TCP: NXDOMAIN, signed and verified")
    # Outside the domains (forwarding off): REFUSED, signed.
    q = signed("example.org.", "A", "k512.")
    r = dns.message.from_wire(udp_query(port, q.to_wire()), keyring=RING, request_mac=q.mac)
    C.eq(dns.rcode.to_text(r.rcode()), "REFUSED", "signed query outside the domains: REFUSED")
    C.ok(r.had_tsig, "... and signed")


def axfr(port, key=None, ring=RING):
    """(rcode or 'ok', list of records) of an AXFR, verified by dnspython when signed."""
    try:
        z = dns.zone.from_xfr(dns.query.xfr("127.0.0.1", "skydns.local.", port=port,
                                            keyring=ring if key else None, keyname=key,
                                            keyalgorithm=KEYS[key][0] if key else None,
                                            timeout=10, lifetime=30, relativize=False),
                              relativize=False)
        return "ok", z
    except dns.xfr.TransferError as e:
        return dns.rcode.to_text(e.rcode), None
    except Exception as e:  # noqa: BLE001 - a bad MAC surfaces as any DNSException
        return repr(e), None


def axfr_checks():
    with Skydns(BIG, extra_conf="xfr-allow = 127.0.0.1\n" + CONF_KEYS) as d:
        d.start()
        st, z = axfr(d.port, "k256.")
        C.eq(st, "ok", "signed AXFR of 5000 names: every message verifies")
        if z is not None:
            C.eq(sum(1 for n in z.nodes if str(n).startswith("h")), 5000, "... all of them")
        st, _ = axfr(d.port, "k256.", WRONG)
        C.ok(st != "ok", "AXFR signed with a wrong secret fails (%s)" % st)
        out = subprocess.run(["kdig", "@127.0.0.1", "-p", str(d.port), "-y",
                              "hmac-sha512:k512.:" + S512, "skydns.local.", "AXFR"],
                             capture_output=True, text=True, timeout=60).stdout
        C.ok("5004 records" in out and "TSIG" in out and "failed" not in out.lower(),
             "kdig -y verifies the signed AXFR: %s" % out.strip().splitlines()[-4:])
        C.ok(d.alive(), "server alive")
    with Skydns(ZONE, extra_conf="xfr-allow = 127.0.0.1\nxfr-key = k256.\n" + CONF_KEYS) as d:
        d.start()
        C.eq(axfr(d.port)[0], "REFUSED", "xfr-key: an unsigned AXFR is REFUSED")
        C.eq(axfr(d.port, "k512.")[0], "REFUSED", "xfr-key: another key's AXFR is REFUSED")
        C.eq(axfr(d.port, "k256.")[0], "ok", "xfr-key: the key's AXFR is served")
        query_checks(d.port)
        C.ok(d.alive(), "server alive")


def ask(port, name, rtype, tcp=False):
    q = dns.message.make_query(name, rtype, use_edns=0, payload=1232)
    q.flags &= ~dns.flags.RD
    wire = q.to_wire()
    return dns.message.from_wire(tcp_query(port, wire) if tcp else udp_query(port, wire))


def wait_for(port, name, want, within=10.0):
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            r = ask(port, name, "A")
            if r.flags & dns.flags.AA and {rd.to_text() for rs in r.answer for rd in rs} == want:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def nsd_key(secret):
    return "key:\n  name: k256.\n  algorithm: hmac-sha256\n  secret: \"%s\"\n" % secret


def nsd_checks(tmp):
    with Skydns(ZONE, extra_conf="xfr-allow = 127.0.0.1\nxfr-key = k256.\n" + CONF_KEYS) as d:
        d.start()
        for label, secret, want in (("right", S256, True), ("wrong", "d3Jvbmd3cm9uZ3dyb25n",
                                                              False)):
            proc, port = skytest.start_nsd(
                os.path.join(tmp, "nsd-" + label), "skydns.local", "",
                "  minimal-responses: no\n" + nsd_key(secret), probe="skydns.local.",
                extra_zone="  request-xfr: AXFR 127.0.0.1@%d k256.\n" % d.port)
            try:
                got = wait_for(port, "www.skydns.local.", {"10.0.0.1"},
                               within=5.0 if want else 3.0)
                C.eq(got, want, "NSD with the %s secret %s the zone" %
                     (label, "transfers" if want else "does not get"))
            finally:
                proc.terminate()
                proc.wait(timeout=10)
        C.ok(d.alive(), "server alive after NSD")


def nsd_notify_checks(tmp):
    nport = skytest.free_port()
    extra = "xfr-allow = 127.0.0.1\nxfr-key = k256.\nnotify = 127.0.0.1:%d\n" % nport
    with Skydns(ZONE, extra_conf=extra + CONF_KEYS) as d:
        d.start()
        proc, _ = skytest.start_nsd(
            os.path.join(tmp, "nsd-notify"), "skydns.local", "",
            "  minimal-responses: no\n" + nsd_key(S256), probe="skydns.local.",
            extra_zone="  request-xfr: AXFR 127.0.0.1@%d k256.\n"
            "  allow-notify: 127.0.0.1 k256.\n" % d.port, port=nport)
        try:
            C.ok(wait_for(nport, "www.skydns.local.", {"10.0.0.1"}, within=5.0),
                 "NSD (signed NOTIFY only) transferred the zone")
            t0 = time.monotonic()
            d.import_zone(ZONE + "fresh A 10.9.9.9\n")
            C.ok(wait_for(nport, "fresh.skydns.local.", {"10.9.9.9"}, within=2.0),
                 "NSD accepting only signed NOTIFY follows a change within 2 s (%.2f s)"
                 % (time.monotonic() - t0))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        C.ok(d.alive(), "server alive after NSD's signed NOTIFY")


def knot_checks(tmp):
    for keyed in (False, True):
        kport = skytest.free_port()
        extra = "xfr-allow = 127.0.0.1\nnotify = 127.0.0.1:%d\n" % kport + CONF_KEYS
        if keyed:
            extra += "xfr-key = k256.\n"
        with Skydns(ZONE, extra_conf=extra) as d:
            d.start()
            tag = "knot %s" % ("with TSIG" if keyed else "without TSIG")
            proc = skytest.start_knot(os.path.join(tmp, "knot%d" % keyed), "skydns.local",
                                      d.port, key=("k256.", "hmac-sha256", S256)
                                      if keyed else None, port=kport)
            try:
                C.ok(wait_for(kport, "www.skydns.local.", {"10.0.0.1"}),
                     tag + ": transferred the zone")
                for tcp in (False, True):
                    for name, rtype in QUESTIONS:
                        what = "%s %s %s [%s]" % (tag, name, rtype, "tcp" if tcp else "udp")
                        s, k = ask(d.port, name, rtype, tcp), ask(kport, name, rtype, tcp)
                        C.eq(dns.rcode.to_text(k.rcode()), dns.rcode.to_text(s.rcode()),
                             what + " rcode")
                        C.eq(bool(k.flags & dns.flags.AA), bool(s.flags & dns.flags.AA),
                             what + " AA")
                        C.eq(sorted(str(x) for x in k.answer),
                             sorted(str(x) for x in s.answer), what + " answer")
                t0 = time.monotonic()
                d.import_zone(ZONE + "fresh A 10.9.9.9\n")
                C.ok(wait_for(kport, "fresh.skydns.local.", {"10.9.9.9"}, within=2.0),
                     "%s: after NOTIFY answers the new record within 2 s (%.2f s)"
                     % (tag, time.monotonic() - t0))
                C.eq(ask(kport, "skydns.local.", "SOA").answer[0][0].serial,
                     ask(d.port, "skydns.local.", "SOA").answer[0][0].serial,
                     tag + ": follows the new serial")
            finally:
                proc.terminate()
                proc.wait(timeout=10)
            C.ok(d.alive(), tag + ": server alive")


def main():
    for t in ("nsd", "knotd", "kdig"):
        if not shutil.which(t):
            print("SKIP: %s not installed" % t)
            sys.exit(77)
    tmp = tempfile.mkdtemp(prefix="skydns-i17t-")
    try:
        axfr_checks()
        nsd_checks(tmp)
        nsd_notify_checks(tmp)
        knot_checks(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    C.finish()


if __name__ == "__main__":
    main()
