#!/usr/bin/env python3
"""
Issue 15: the optional query log ([Log] query-log, off by default).

Every answer (sample 1) over UDP and TCP, local and NXDOMAIN, gets one
logfmt line with client, transport, name, type and rcode, written by the
writer thread within its flush interval; SIGUSR1 after a rename moves the
lines to a new file; with query-log-sample = 10 one in ten answers is kept;
without the key no file appears.
"""
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import dns.message  # noqa: E402

from skytest import Checks, Skydns, tcp_query, udp_query  # noqa: E402

ZONE = "$ORIGIN skydns.local.\n$TTL 60\nwww IN A 10.0.0.10\n"
LINE = re.compile(r"^ts=\S+Z client=127\.0\.0\.1 proto=(udp|tcp) qname=(\S+) qtype=(\S+) "
                  r"rcode=([A-Z]+)$")
c = Checks()


def ask(port, name, qtype, tcp):
    q = dns.message.make_query(name, qtype).to_wire()
    return dns.message.from_wire((tcp_query if tcp else udp_query)(port, q))


def lines_of(path, want, within=5.0):
    end = time.monotonic() + within
    got = []
    while time.monotonic() < end:
        got = open(path).read().splitlines() if os.path.exists(path) else []
        if len(got) >= want:
            break
        time.sleep(0.05)
    time.sleep(0.3)  # and nothing more arrives
    return open(path).read().splitlines() if os.path.exists(path) else []


def main():
    with Skydns(ZONE, workers=2) as sky:
        qlog = os.path.join(sky.dir, "queries.log")
        conf = open(sky.conf).read().replace("[Log]\n", "[Log]\nquery-log = %s\n" % qlog)
        open(sky.conf, "w").write(conf)
        sky.start()
        base = len(lines_of(qlog, 0, within=0.5))  # start() asked one SOA
        for i in range(30):
            ask(sky.port, "www.skydns.local.", "A", False)
        for i in range(10):
            ask(sky.port, "nope.skydns.local.", "AAAA", False)
        for i in range(10):
            ask(sky.port, "www.skydns.local.", "A", True)
        got = lines_of(qlog, base + 50)[base:]
        c.eq(len(got), 50, "one line per answer")
        parsed = [LINE.match(line) for line in got]
        c.ok(all(parsed), "every line is logfmt: %s" % [x for x, m in zip(got, parsed) if not m][:2])
        rows = [m.groups() for m in parsed if m]
        c.eq(sum(1 for r in rows if r == ("udp", "www.skydns.local.", "A", "NOERROR")), 30,
             "UDP NOERROR lines")
        c.eq(sum(1 for r in rows if r == ("udp", "nope.skydns.local.", "AAAA", "NXDOMAIN")), 10,
             "NXDOMAIN lines")
        c.eq(sum(1 for r in rows if r == ("tcp", "www.skydns.local.", "A", "NOERROR")), 10,
             "TCP lines")

        os.rename(qlog, qlog + ".1")
        sky.proc.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
        for i in range(5):
            ask(sky.port, "www.skydns.local.", "A", False)
        c.eq(len(lines_of(qlog, 5)), 5, "after a rename and SIGUSR1 lines go to a new file")
        c.eq(len(open(qlog + ".1").read().splitlines()), base + 50, "the old file is left alone")
        sky.stop()

    with Skydns(ZONE, workers=1) as sky:
        qlog = os.path.join(sky.dir, "queries.log")
        conf = open(sky.conf).read().replace(
            "[Log]\n", "[Log]\nquery-log = %s\nquery-log-sample = 10\n" % qlog)
        open(sky.conf, "w").write(conf)
        sky.start()
        for i in range(99):
            ask(sky.port, "www.skydns.local.", "A", False)
        c.eq(len(lines_of(qlog, 10)), 10, "sample 10: 10 of 100 answers logged")
        sky.stop()

    with Skydns(ZONE, workers=1) as sky:
        sky.start()
        ask(sky.port, "www.skydns.local.", "A", False)
        sky.stop()
        c.ok(not [f for f in os.listdir(sky.dir) if "quer" in f], "off by default: no file")
    c.finish()


main()
