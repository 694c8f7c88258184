#!/usr/bin/python3
"""
Issue 10 item 12: TSIG-signed queries were answered as if unsigned. skydns
knows no TSIG keys, so RFC 8945 §5.2 wants NOTAUTH with an unsigned TSIG RR
whose error is BADKEY. NSD (same zone, same query bytes) is the reference:
 - real `dig -y hmac-sha256:...` over UDP and TCP: status NOTAUTH and a
   TSIG pseudosection with BADKEY, from both servers;
 - the very same signed wire query sent to both: rcode, flags and the whole
   TSIG RR (owner, class, TTL, algorithm, time signed, fudge, empty MAC,
   original ID, error, other data) are byte-identical;
 - a TSIG that is not the last RR gets FORMERR.
"""
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import dns.message
import dns.tsigkeyring

sys.path.insert(0, os.path.dirname(__file__))
from skytest import Checks, Skydns, tcp_query, udp_query  # noqa: E402
import skytest  # noqa: E402



C = Checks()
ZONE = "$ORIGIN skydns.local.\n$TTL 300\nwww IN A 10.0.0.1\n"
NSD_ZONE = ("$ORIGIN skydns.local.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n"
            "@ IN NS ns1\nns1 IN A 127.0.0.1\nwww IN A 10.0.0.1\n")
SECRET = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"  # a key neither server knows
KEY = "MyKey.Example."


def start_nsd(tmp):
    return skytest.start_nsd(tmp, "skydns.local", NSD_ZONE)


def dig(port, *extra):
    r = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+time=3", "+tries=1",
                        "-y", "hmac-sha256:%s:%s" % (KEY, SECRET), "www.skydns.local.", "A"]
                       + list(extra), capture_output=True, text=True, timeout=20)
    out = r.stdout
    status = re.search(r"status: (\w+)", out)
    tsig = re.search(r"^(\S+)\s+0\s+ANY\s+TSIG\s+(\S+) (\d+) (\d+) (\d+) (\d+) (\w+) (\d+)",
                     out, re.M)
    return (status.group(1) if status else None,
            tsig.group(1, 2, 4, 5, 7) if tsig else None, out)


def signed_query(edns):
    kr = dns.tsigkeyring.from_text({KEY: ("hmac-sha256", SECRET)})
    q = dns.message.make_query("www.skydns.local.", "A", use_edns=0 if edns else None)
    q.use_tsig(kr, keyname=KEY)
    return q.to_wire()


def skip_name(w, i):
    while True:
        n = w[i]
        if n == 0:
            return i + 1
        if n >= 0xC0:
            return i + 2
        i += n + 1


def last_rr(w):
    """(rcode, flags without rcode, the last RR's raw bytes, its type) of a reply."""
    qd, an, ns, ar = struct.unpack("!4H", w[4:12])
    i = 12
    for _ in range(qd):
        i = skip_name(w, i) + 4
    start = rtype = None
    for _ in range(an + ns + ar):
        start = i
        i = skip_name(w, i)
        rtype, _, _, rdlen = struct.unpack("!HHIH", w[i:i + 10])
        i += 10 + rdlen
    flags = struct.unpack("!H", w[2:4])[0]
    return flags & 0xF, flags & 0xFFF0, w[start:i] if start is not None else b"", rtype


def check_dig(sky, nsd, tcp):
    how = "tcp" if tcp else "udp"
    extra = ["+tcp"] if tcp else []
    s_status, s_tsig, s_out = dig(sky, *extra)
    n_status, n_tsig, n_out = dig(nsd, *extra)
    C.eq(n_status, "NOTAUTH", "dig -y %s: NSD says NOTAUTH (the reference)" % how)
    C.eq(s_status, n_status, "dig -y %s: skydns's status is NSD's" % how)
    C.ok(s_tsig is not None, "dig -y %s: skydns's reply has a TSIG:\n%s" % (how, s_out))
    C.eq(s_tsig, n_tsig, "dig -y %s: TSIG key, algorithm, fudge, MAC size, error" % how)
    C.ok(s_tsig is not None and s_tsig[4] == "BADKEY", "dig -y %s: BADKEY" % how)
    C.ok("10.0.0.1" not in s_out, "dig -y %s: no answer given to a signed query" % how)


def check_wire(sky, nsd, edns, tcp):
    how = "%s%s" % ("tcp" if tcp else "udp", " edns" if edns else "")
    q = signed_query(edns)
    ask = tcp_query if tcp else udp_query
    s = last_rr(ask(sky, q))
    n = last_rr(ask(nsd, q))
    C.eq(n[0], 9, "%s: NSD rcode NOTAUTH" % how)
    C.eq(s[0], n[0], "%s: rcode as NSD's" % how)
    C.eq(s[1], n[1], "%s: flags as NSD's" % how)
    C.eq(s[3], 250, "%s: last RR is a TSIG" % how)
    # NSD lowercases the key name; names compare case-insensitively (RFC 8945 §4.2).
    def canon(rr):
        end = skip_name(rr, 0) if rr else 0
        return (rr[:end].lower() + rr[end:]).hex()
    C.eq(canon(s[2]), canon(n[2]), "%s: TSIG RR byte for byte as NSD's" % how)


def check_not_last(sky):
    q = bytearray(signed_query(False))
    opt = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"  # an OPT after the TSIG
    q[10:12] = struct.pack("!H", 2)
    r = udp_query(sky, bytes(q) + opt)
    C.eq(last_rr(r)[0], 1, "a TSIG that is not the last RR: FORMERR")


def main():
    for tool in ("nsd", "dig"):
        if not shutil.which(tool):
            print("FAIL: %s not installed\n0 passed, 1 failed" % tool)
            sys.exit(1)
    tmp = tempfile.mkdtemp(prefix="skydns-tsig-")
    nsd_proc = None
    try:
        nsd_proc, nsd = start_nsd(tmp)
        with Skydns(ZONE) as d:
            d.start()
            for tcp in (False, True):
                check_dig(d.port, nsd, tcp)
            for edns, tcp in ((False, False), (True, False), (True, True)):
                check_wire(d.port, nsd, edns, tcp)
            check_not_last(d.port)
            C.ok(d.alive(), "server alive")
    finally:
        if nsd_proc:
            nsd_proc.terminate()
            try:
                nsd_proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                nsd_proc.kill()
                nsd_proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    C.finish()


if __name__ == "__main__":
    main()
