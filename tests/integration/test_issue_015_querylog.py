#!/usr/bin/env python3
"""
Issue 15: the optional query log ([Log] query-log, off by default).

Every answer (sample 1) over UDP and TCP, local and NXDOMAIN, gets one
logfmt line with client, transport, name, type and rcode, written by the
writer thread within its flush interval; SIGUSR1 after a rename moves the
lines to a new file; with query-log-sample = 10 one in ten answers is kept;
without the key no file appears.

Drops are counted, never waited for: with the log on a FIFO nobody reads, the
writer blocks in write() and a worker's ring fills; the worker keeps
answering every query and /metrics counts skydns_querylog_dropped_total
{reason="ring_full"} (and lines written); with the log on /dev/full every
write fails and {reason="write_failed"} counts the lines lost.
"""
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import dns.message  # noqa: E402

from skytest import Checks, Skydns, free_port, tcp_query, udp_query  # noqa: E402

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


def metrics(api_port):
    out = {}
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % api_port, timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("skydns_querylog"):
                k, v = line.rsplit(" ", 1)
                out[k] = int(float(v))
    return out


def logged_server(path, api_port):
    sky = Skydns(ZONE, workers=1)
    conf = open(sky.conf).read().replace(
        "[Log]\n", "[Log]\nquery-log = %s\n" % path)
    conf += "[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\n" % api_port
    open(sky.conf, "w").write(conf)
    return sky


def burst(port, n):
    """n queries on one socket (one worker), each waited for: the answers that came."""
    q = dns.message.make_query("www.skydns.local.", "A")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    ok = 0
    try:
        for i in range(n):
            q.id = i & 0xffff
            s.sendto(q.to_wire(), ("127.0.0.1", port))
            r = dns.message.from_wire(s.recv(4096))
            ok += r.id == q.id and len(r.answer) == 1
    finally:
        s.close()
    return ok


def drops():
    # A FIFO with a reader that never reads (opened first, so skydns's open does
    # not wait): 64 KiB of pipe, then the writer thread blocks and the ring fills.
    api_port = free_port()
    sky = logged_server("/dev/null", api_port)
    fifo = os.path.join(sky.dir, "queries.fifo")
    os.mkfifo(fifo)
    rd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    conf = open(sky.conf).read().replace("/dev/null", fifo)
    open(sky.conf, "w").write(conf)
    drained = threading.Event()
    try:
        sky.start()
        n = 8000  # > the ring (4,096) + what the pipe and the writer's buffer hold
        c.eq(burst(sky.port, n), n, "every query answered while the log cannot keep up")
        m = metrics(api_port)
        dropped = m.get('skydns_querylog_dropped_total{reason="ring_full"}', 0)
        c.ok(dropped > 0, "ring_full drops counted: %s" % m)
        c.ok(dropped < n, "not every record dropped: %d" % dropped)

        def drain():
            while not drained.is_set():
                try:
                    if os.read(rd, 65536) == b"":
                        time.sleep(0.01)
                except BlockingIOError:
                    time.sleep(0.01)
        t = threading.Thread(target=drain, daemon=True)
        t.start()
        end = time.monotonic() + 5
        while time.monotonic() < end:
            m = metrics(api_port)
            if m.get("skydns_querylog_lines_total", 0) + dropped >= n:
                break
            time.sleep(0.1)
        c.ok(m.get("skydns_querylog_lines_total", 0) + dropped >= n,
             "with a reader the writer catches up: lines + dropped >= queries: %s" % m)
        sky.stop()
    finally:
        drained.set()
        os.close(rd)

    api_port = free_port()
    sky = logged_server("/dev/full", api_port)
    sky.start()
    c.eq(burst(sky.port, 50), 50, "answers with a log that cannot be written")
    end = time.monotonic() + 3
    while time.monotonic() < end:
        m = metrics(api_port)
        if m.get('skydns_querylog_dropped_total{reason="write_failed"}', 0) >= 50:
            break
        time.sleep(0.1)
    c.ok(m.get('skydns_querylog_dropped_total{reason="write_failed"}', 0) >= 50,
         "write_failed counts the lines /dev/full refused: %s" % m)
    c.eq(m.get("skydns_querylog_lines_total"), 0, "no line counted as written: %s" % m)
    sky.stop()


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
    drops()
    c.finish()


main()
