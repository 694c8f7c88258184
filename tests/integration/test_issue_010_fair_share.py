"""
Issue 10, item 7: one client network must not deny forwarding to all others.

One /24 (127.0.0.x) floods the real skydns with 6,000 unique names that go to
an upstream that never answers; another /24 (127.1.0.x, also loopback) then
asks names of a subdomain served by a second, working upstream. Before the
fix the flood held all 4,096 in-flight slots for the whole forward-timeout
and every other client's forwarded query got SERVFAIL at once. Now the flood
gets its share (forward-max-per-client, 512 by default) and SERVFAIL for the
rest, counted in skydns_forward_share_drops_total, and the other network's
queries over UDP and TCP are answered by the working upstream. A TCP query
from the flooding network is refused as well (TCP clients are counted too).

Everything on loopback, one worker (so all of it meets one table), bounded:
6,000 queries (sending capped at 30 s), 20 victim queries of at most 5 s each;
about 10 s in all on an idle machine. Ends with "N passed, N failed".
"""
import os
import socket
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from skytest import Checks, Skydns, free_port  # noqa: E402

import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rrset  # noqa: E402

C = Checks()
FLOOD = 6000
ATTACKER = "127.0.0.1"
VICTIM = "127.1.0.1"
# The flood's tries must still be in flight while the victim asks: one try of
# 40 s. Generous because a loaded machine may take many seconds to send the
# flood (5 s under ASan on 2 busy cores); it costs nothing, since the test
# stops the daemon as soon as it has checked.
FORWARD_TIMEOUT_S = 40


class Upstream:
    """A UDP DNS server on loopback: answers victim.test names, swallows the rest."""

    def __init__(self, answer):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.seen = 0
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop_ev.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            self.seen += 1
            if not self.answer:
                continue
            try:
                msg = dns.message.from_wire(data)
            except Exception:
                continue
            r = dns.message.make_response(msg)
            r.flags |= dns.flags.AA
            r.answer.append(dns.rrset.from_text(msg.question[0].name, 60, "IN", "A",
                                                "192.0.2.55"))
            self.sock.sendto(r.to_wire(), addr)

    def stop(self):
        self.stop_ev.set()
        self.t.join(2)
        self.sock.close()


def metrics(api_port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % api_port, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = int(float(v))
    return out


def flood(port):
    """6,000 unique names from one /24, paced in bursts so the kernel drops none of
    them on the way in; returns the rcodes of the replies that came back."""
    socks = []
    for i in range(8):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        s.bind(("127.0.0.%d" % (1 + i), 0))  # several hosts of the same /24
        s.setblocking(False)
        socks.append(s)
    rcodes = {}
    end = time.monotonic() + 30

    def drain(wait):
        stop = time.monotonic() + wait
        while time.monotonic() < stop:
            got = False
            for s in socks:
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    continue
                got = True
                rc = dns.message.from_wire(data).rcode()
                rcodes[rc] = rcodes.get(rc, 0) + 1
            if not got:
                time.sleep(0.005)

    for i in range(FLOOD):
        q = dns.message.make_query("f%d.attack.test." % i, "A")
        socks[i % len(socks)].sendto(q.to_wire(), ("127.0.0.1", port))
        if i % 200 == 199:
            drain(0.02)
        if time.monotonic() > end:
            break
    drain(1.0)
    for s in socks:
        s.close()
    return rcodes


def ask(port, name, tcp=False, source=VICTIM, timeout=5.0):
    q = dns.message.make_query(name, "A")
    t0 = time.monotonic()
    try:
        if tcp:
            r = dns.query.tcp(q, "127.0.0.1", port=port, source=source, timeout=timeout)
        else:
            r = dns.query.udp(q, "127.0.0.1", port=port, source=source, timeout=timeout)
    except Exception as e:  # timeout, reset: a failed check, not a crash
        return None, "%s" % type(e).__name__, time.monotonic() - t0
    addrs = sorted(rr.address for rrset in r.answer for rr in rrset)
    return r.rcode(), addrs, time.monotonic() - t0


def main():
    dead = Upstream(answer=False)
    good = Upstream(answer=True)
    api = free_port()
    conf = ("nameservers = 127.0.0.1:%d\n"
            "subDomainServers = victim.test@127.0.0.1:%d\n"
            "forward-timeout = %d\n"
            "[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\n"
            % (dead.port, good.port, FORWARD_TIMEOUT_S, api))
    try:
        with Skydns(extra_conf=conf, workers=1) as sky:
            sky.start()
            rc, addrs, _ = ask(sky.port, "warmup.victim.test.")
            C.eq((rc, addrs), (dns.rcode.NOERROR, ["192.0.2.55"]), "victim answered before")

            t0 = time.monotonic()
            rcodes = flood(sky.port)
            flood_s = time.monotonic() - t0
            m = metrics(api)
            print("flood: %d queries in %.1f s, replies by rcode %r, upstream saw %d; "
                  "forwarded %d, share drops %d, table-full drops %d"
                  % (FLOOD, flood_s, rcodes, dead.seen, m.get("skydns_forward_queries_total"),
                     m.get("skydns_forward_share_drops_total", -1),
                     m.get("skydns_forward_drops_total")), flush=True)
            # The flood really is in flight: the dead upstream got its questions.
            C.ok(dead.seen >= 400, "flood reached the dead upstream (%d)" % dead.seen)
            C.ok(flood_s < FORWARD_TIMEOUT_S / 2, "flood sent well within the try timeout")

            # Another network: every forwarded query answered by the working upstream.
            for i in range(20):
                rc, addrs, took = ask(sky.port, "v%d.victim.test." % i, tcp=(i % 4 == 3))
                C.eq((rc, addrs), (dns.rcode.NOERROR, ["192.0.2.55"]),
                     "victim query %d (%s) during the flood, %.2f s"
                     % (i, "tcp" if i % 4 == 3 else "udp", took))

            # The flooding network over TCP is over its share too: SERVFAIL now, not
            # after the 40 s try.
            rc, addrs, took = ask(sky.port, "tcp.attack.test.", tcp=True, source="127.0.0.200")
            C.eq(rc, dns.rcode.SERVFAIL, "flooding /24 over TCP refused at once")
            C.ok(took < FORWARD_TIMEOUT_S / 2, "TCP refusal did not wait for the upstream "
                 "(%.2f s)" % took)

            m = metrics(api)
            shared = m.get("skydns_forward_share_drops_total", 0)
            C.ok(shared >= FLOOD - 512 - 200,
                 "share drops counted in /metrics (%d)" % shared)
            C.ok(rcodes.get(dns.rcode.SERVFAIL, 0) >= FLOOD - 512 - 200,
                 "flood over its share got SERVFAIL at once (%r)" % rcodes)
            C.ok(m.get("skydns_forward_queries_total", 0) <= 512 + 30,
                 "flood started at most its share upstream (%d)"
                 % m.get("skydns_forward_queries_total", 0))
            C.ok(sky.alive(), "server alive")
    finally:
        dead.stop()
        good.stop()
    C.finish()


if __name__ == "__main__":
    main()
