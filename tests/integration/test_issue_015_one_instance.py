#!/usr/bin/env python3
"""
Issue 15: one skydns per address.

A second skydns started on the address a running one serves used to join
the first one's SO_REUSEPORT group silently (12 of 20 queries got NXDOMAIN
from its empty store). Now it must exit non-zero with the address in its
message while the first keeps answering every query. Also: a foreign TCP
listener alone is caught (the TCP check), and a restart right after a run
whose TCP connections are in TIME_WAIT still starts.
"""
import os
import random
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import dns.message  # noqa: E402
import dns.rcode  # noqa: E402

from skytest import SKYDNS, Checks, Skydns, tcp_connect, tcp_read_msg, udp_query  # noqa: E402

ZONE = "$ORIGIN skydns.local.\n$TTL 60\nwww IN A 10.0.0.10\n"
# A refused start takes well under a second; the bound is for an ASan build on
# a machine shared with other builds.
EXIT_WAIT_S = 30.0


def low_port():
    """A port free for UDP and TCP below the ephemeral range (32768), so no client
    socket of this or another test can take it between the two starts."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            u.bind(("127.0.0.1", port))
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    raise RuntimeError("no free port below 32768")


def same_port_conf(sky, port):
    """Point sky's config (own store, empty) at another server's port."""
    text = open(sky.conf).read().replace("127.0.0.1:%d" % sky.port, "127.0.0.1:%d" % port)
    with open(sky.conf, "w") as f:
        f.write(text)
    sky.port = port


def run_to_exit(sky):
    """Start sky's skydns; return (exit status or None if it kept running, output)."""
    p = subprocess.Popen([SKYDNS, "-config-file", sky.conf], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = p.communicate(timeout=EXIT_WAIT_S)
        return p.returncode, out
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        return None, out


def www_answers(port, n, tcp=False):
    """How many of n queries for www got 10.0.0.10."""
    good = 0
    q = dns.message.make_query("www.skydns.local.", "A")
    for _ in range(n):
        try:
            if tcp:
                s = tcp_connect(port, timeout=2.0)
                try:
                    w = q.to_wire()
                    s.sendall(len(w).to_bytes(2, "big") + w)
                    r = dns.message.from_wire(tcp_read_msg(s))
                finally:
                    s.close()
            else:  # a new socket, so a new source port, each time: REUSEPORT spreads them
                r = dns.message.from_wire(udp_query(port, q.to_wire(), timeout=2.0))
        except Exception:
            continue
        if r.rcode() == dns.rcode.NOERROR and [x.to_text() for a in r.answer for x in a] == [
                "10.0.0.10"]:
            good += 1
    return good


def main():
    c = Checks()
    addr = None
    with Skydns(zone_text=ZONE, workers=2) as first, Skydns(workers=2) as second:
        port = low_port()
        same_port_conf(first, port)
        same_port_conf(second, port)
        first.start()
        addr = "127.0.0.1:%d" % first.port
        c.eq(www_answers(first.port, 20), 20, "first alone: www over UDP")

        rc, out = run_to_exit(second)
        c.ok(rc is not None and rc != 0,
             "second on %s exits non-zero (got %r); output:\n%s" % (addr, rc, out))
        c.ok(addr in out, "second's message names %s:\n%s" % (addr, out))
        c.ok("already served" in out, "second's message says why:\n%s" % out)
        c.ok(not re.search(r"serving on \S+ with \d+ workers", out),
             "second never says it serves:\n%s" % out)
        c.ok(first.alive(), "first still runs and answers")
        c.eq(www_answers(first.port, 20), 20, "first after the second: www over UDP")
        c.eq(www_answers(first.port, 5, tcp=True), 5, "first after the second: www over TCP")

        # Leave a TCP connection for the server to close: its side goes to TIME_WAIT.
        s = tcp_connect(first.port)
        w = dns.message.make_query("www.skydns.local.", "A").to_wire()
        s.sendall(len(w).to_bytes(2, "big") + w)
        tcp_read_msg(s)
        first.stop()
        s.close()
        first.start()
        c.ok(first.alive(), "restart on %s with TCP in TIME_WAIT starts" % addr)
        first.stop()

        # Something else listening on TCP only (UDP free): caught by the TCP check.
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        t.bind(("127.0.0.1", first.port))
        t.listen(4)
        rc, out = run_to_exit(second)
        t.close()
        c.ok(rc is not None and rc != 0, "TCP listener in the way: exit non-zero (%r)" % rc)
        c.ok(addr in out and "TCP" in out, "TCP listener in the way: says so:\n%s" % out)
        ipv6(c, first, second, port)
    c.finish()


def v6_soa(port):
    q = dns.message.make_query("skydns.local.", "SOA").to_wire()
    try:
        r = dns.message.from_wire(udp_query(port, q, timeout=1.0, host="::1"))
        return r.rcode() == dns.rcode.NOERROR
    except Exception:
        return False


def ipv6(c, first, second, port):
    """The same on [::1]: the check binds IPv6-only, as the workers do."""
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(("::1", port))
        s.close()
    except OSError as e:
        print("skip: no IPv6 loopback (%s)" % e)
        return
    addr = "[::1]:%d" % port
    for sky in (first, second):
        text = open(sky.conf).read().replace("127.0.0.1:%d" % port, addr)
        with open(sky.conf, "w") as f:
            f.write(text)
    p = subprocess.Popen([SKYDNS, "-config-file", first.conf], stdout=subprocess.DEVNULL,
                         stderr=subprocess.STDOUT)
    try:
        end = time.monotonic() + EXIT_WAIT_S
        while time.monotonic() < end and p.poll() is None and not v6_soa(port):
            time.sleep(0.1)
        c.ok(v6_soa(port), "first serves %s" % addr)
        rc, out = run_to_exit(second)
        c.ok(rc is not None and rc != 0, "second on %s exits non-zero (%r)" % (addr, rc))
        c.ok(addr in out and "already served" in out, "second names %s:\n%s" % (addr, out))
        c.ok(v6_soa(port), "first still answers on %s" % addr)
    finally:
        p.kill()
        p.wait()


main()
