"""
Issue 17, zone transfers: AXFR (RFC 5936) of a local domain over TCP to the clients in
xfr-allow, IXFR answered with the whole zone (RFC 1995 §4), and NSD as a real secondary
of skydns.

- dig/kdig AXFR: the synthesized SOA first and last (serial = store generation), the
  synthesized apex NS and its address, every record of the zone once; a 5000-name zone
  goes in several messages of at most 64 KiB; IXFR gets the same records.
- REFUSED with the reason (EDE): a client outside xfr-allow (18), no xfr-allow at all
  (18), AXFR over UDP (21), a name that is not a zone apex (20). IXFR over UDP gets the
  current SOA alone (RFC 1995 §2).
- NSD configured with request-xfr pulls the zone (wildcards, delegations, glue, SRV/MX
  targets) and answers every question like skydns: rcode, AA and the answer section;
  after a change skydns sends NOTIFY ([Dns] notify) and NSD serves it within 2 s.
- Other queries are answered while a big transfer is read slowly.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

import skytest
from skytest import Checks, Skydns, tcp_query, udp_query

C = Checks()
sys.path.insert(0, os.path.dirname(__file__))
from test_issue_017_auth import BODY, QUESTIONS  # noqa: E402  the differential's zone

ZONE = "$ORIGIN skydns.local.\n$TTL 300\n" + BODY
BIG = "$ORIGIN skydns.local.\n$TTL 300\n" + "".join(
    "h%d A 10.1.%d.%d\n" % (i, i // 250, i % 250) for i in range(5000))


def ask(port, name, rtype, tcp=False):
    q = dns.message.make_query(name, rtype, use_edns=0, payload=1232)
    q.flags &= ~dns.flags.RD
    wire = q.to_wire()
    return dns.message.from_wire(tcp_query(port, wire) if tcp else udp_query(port, wire))


def tool(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout


def records(out):
    return [l.split() for l in out.splitlines() if l.strip() and not l.startswith(";")]


def axfr_checks(port):
    out = tool(["dig", "@127.0.0.1", "-p", str(port), "skydns.local.", "AXFR"])
    rr = records(out)
    soa = ask(port, "skydns.local.", "SOA").answer[0][0]
    C.ok(len(rr) > 2 and rr[0][3] == "SOA" and rr[-1][3] == "SOA",
         "AXFR starts and ends with the SOA (%d records)" % len(rr))
    if rr:
        C.eq(rr[0][6], str(soa.serial), "the SOA serial is the store generation")
    body = sorted(" ".join(r) for r in rr[1:-1])
    C.eq(len(body), len(set(body)), "every record once")
    want = [("skydns.local.", "NS", "ns1.skydns.local."), ("ns1.skydns.local.", "A", "127.0.0.1"),
            ("abc.wild.skydns.local.", None, None)]
    have = {(r[0], r[3], r[4]) for r in rr}
    C.ok(want[0] in have and want[1] in have, "the synthesized apex NS and its address")
    for owner, rtype, rdata in (("*.wild.skydns.local.", "A", "10.0.5.1"),
                                ("deleg.skydns.local.", "NS", "ns.deleg.skydns.local."),
                                ("ns.deleg.skydns.local.", "A", "10.0.6.1"),
                                ("_http._tcp.skydns.local.", "SRV", "10")):
        C.ok((owner, rtype, rdata) in have, "AXFR holds %s %s" % (owner, rtype))
    C.eq(len(rr), BODY.count("\n") + 4, "records: the zone's, NS, ns1's A and two SOAs")
    out = tool(["kdig", "@127.0.0.1", "-p", str(port), "skydns.local.", "IXFR=1"])
    C.eq(sorted(" ".join(r) for r in records(out)), sorted(" ".join(r) for r in rr),
         "IXFR gets the whole zone, as AXFR")
    # UDP: REFUSED, EDE 21; a name that is not an apex: REFUSED, EDE 20.
    q = dns.message.make_query("skydns.local.", "AXFR", use_edns=0)
    r = dns.message.from_wire(udp_query(port, q.to_wire()))
    C.eq((dns.rcode.to_text(r.rcode()), [o.code for o in r.options if o.otype == 15]),
         ("REFUSED", [21]), "AXFR over UDP: REFUSED, EDE 21")
    # IXFR over UDP: the current SOA alone (RFC 1995 §2), so a current client is done.
    q = dns.message.make_query("skydns.local.", "IXFR", use_edns=0)
    q.authority.append(dns.rrset.from_text("skydns.local.", 0, "IN", "SOA",
                                           "ns1.skydns.local. h.skydns.local. 1 1 1 1 1"))
    r = dns.message.from_wire(udp_query(port, q.to_wire()))
    soa = ask(port, "skydns.local.", "SOA").answer
    C.eq((dns.rcode.to_text(r.rcode()), bool(r.flags & dns.flags.AA),
          [str(x) for x in r.answer]), ("NOERROR", True, [str(x) for x in soa]),
         "IXFR over UDP: the current SOA alone, AA")
    q = dns.message.make_query("www.skydns.local.", "AXFR", use_edns=0)
    r = dns.message.from_wire(tcp_query(port, q.to_wire()))
    C.eq((dns.rcode.to_text(r.rcode()), [o.code for o in r.options if o.otype == 15]),
         ("REFUSED", [20]), "AXFR of a name that is not a zone: REFUSED, EDE 20")


def refused_checks():
    for conf, what in (("", "no xfr-allow"), ("xfr-allow = 10.0.0.0/8, ::1\n", "outside it")):
        with Skydns(ZONE, extra_conf=conf) as d:
            d.start()
            q = dns.message.make_query("skydns.local.", "AXFR", use_edns=0)
            r = dns.message.from_wire(tcp_query(d.port, q.to_wire()))
            C.eq((dns.rcode.to_text(r.rcode()), [o.code for o in r.options if o.otype == 15]),
                 ("REFUSED", [18]), "%s: AXFR REFUSED, EDE 18" % what)
            out = tool(["dig", "@127.0.0.1", "-p", str(d.port), "skydns.local.", "AXFR"])
            C.ok("Transfer failed" in out, "%s: dig says the transfer failed" % what)


def big_checks():
    with Skydns(BIG, extra_conf="xfr-allow = 127.0.0.1\n") as d:
        d.start()
        out = tool(["dig", "@127.0.0.1", "-p", str(d.port), "skydns.local.", "AXFR"])
        m = re.search(r"XFR size: (\d+) records \(messages (\d+), bytes (\d+)\)", out)
        C.ok(m is not None and int(m.group(1)) == 5004 and int(m.group(2)) > 1,
             "5000 names: 5004 records in several messages (%s)" % (m.group(0) if m else out[-200:]))
        # A slow reader of a big transfer does not hold the worker: queries go on.
        s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
        try:
            q = dns.message.make_query("skydns.local.", "AXFR").to_wire()
            s.sendall(len(q).to_bytes(2, "big") + q)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.recv(100)  # started, then not read
            t0 = time.monotonic()
            ok = all(ask(d.port, "h%d.skydns.local." % i, "A").answer for i in range(0, 5000, 500))
            C.ok(ok and time.monotonic() - t0 < 5, "queries answered during a stalled transfer")
        finally:
            s.close()
        C.ok(d.alive(), "server alive after the stalled transfer")


def wait_nsd(port, name, want, within=20.0):
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            r = ask(port, name, "A")
            if r.flags & dns.flags.AA and {rd.to_text() for rs in r.answer for rd in rs} == want:
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def secondary_checks(d, nsd, tmp):
    sky = d.port
    nsd_proc, _ = skytest.start_nsd(
        tmp, "skydns.local", "", "  minimal-responses: no\n", probe="skydns.local.",
        extra_zone="  request-xfr: AXFR 127.0.0.1@%d NOKEY\n  allow-notify: 127.0.0.1 NOKEY\n"
        % sky, port=nsd)
    try:
        C.ok(wait_nsd(nsd, "www.skydns.local.", {"10.0.0.1"}),
             "NSD transferred the zone from skydns")
        for tcp in (False, True):
            for name, rtype in QUESTIONS:
                what = "secondary %s %s [%s]" % (name, rtype, "tcp" if tcp else "udp")
                s, n = ask(sky, name, rtype, tcp), ask(nsd, name, rtype, tcp)
                C.eq(dns.rcode.to_text(n.rcode()), dns.rcode.to_text(s.rcode()), what + " rcode")
                C.eq(bool(n.flags & dns.flags.AA), bool(s.flags & dns.flags.AA), what + " AA")
                C.eq(sorted(str(x) for x in n.answer), sorted(str(x) for x in s.answer),
                     what + " answer")
        r_sky, r_nsd = ask(sky, "skydns.local.", "SOA"), ask(nsd, "skydns.local.", "SOA")
        C.eq(r_nsd.answer[0][0].serial, r_sky.answer[0][0].serial, "NSD has skydns's serial")
        # A change: skydns sends NOTIFY, NSD transfers again (acceptance: within 2 s).
        t0 = time.monotonic()
        d.import_zone(ZONE + "fresh A 10.9.9.9\n")
        C.ok(wait_nsd(nsd, "fresh.skydns.local.", {"10.9.9.9"}, within=2.0),
             "after NOTIFY NSD answers the new record within 2 s (%.2f s)"
             % (time.monotonic() - t0))
        C.eq(ask(nsd, "skydns.local.", "SOA").answer[0][0].serial,
             ask(sky, "skydns.local.", "SOA").answer[0][0].serial,
             "NSD follows the new serial")
    finally:
        nsd_proc.terminate()
        nsd_proc.wait(timeout=10)


def main():
    for t in ("nsd", "dig", "kdig"):
        if not shutil.which(t):
            print("FAIL: %s not installed\n0 passed, 1 failed" % t)
            sys.exit(1)
    tmp = tempfile.mkdtemp(prefix="skydns-i17x-")
    try:
        nsd = skytest.free_port()
        with Skydns(ZONE, extra_conf="xfr-allow = 127.0.0.0/8\nnotify = 127.0.0.1:%d\n"
                    % nsd) as d:
            d.start()
            axfr_checks(d.port)
            secondary_checks(d, nsd, os.path.join(tmp, "nsd"))
            C.ok(d.alive(), "server alive")
        refused_checks()
        big_checks()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    C.finish()


if __name__ == "__main__":
    main()
