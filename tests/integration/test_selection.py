"""
Health-aware answer selection (issue 3): hone-one session persistence,
random-one, the default rotation, fail-open, over UDP and TCP, with real
client source addresses on loopback (127.0.0.x).
"""
import collections
import os
import socket
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import dns.message

from skytest import SKYDNS, Checks, Skydns, recv_exact, udp_query

ADDRS = ["10.9.0.1", "10.9.0.2", "10.9.0.3", "10.9.0.4"]
ZONE = "$ORIGIN skydns.local.\n" + "".join("svc 30 A %s\n" % a for a in ADDRS) + \
    "".join("six 30 AAAA fd00::%d\n" % i for i in range(1, 4))
CLIENTS = ["127.0.%d.%d" % (1 + i // 250, 2 + i % 250) for i in range(200)]

c = Checks()


def answer(srv, client, name="svc.skydns.local.", tcp=False, rdtype="A"):
    q = dns.message.make_query(name, rdtype).to_wire()
    if tcp:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(3)
        s.bind((client, 0))
        s.connect(("127.0.0.1", srv.port))
        s.sendall(struct.pack("!H", len(q)) + q)
        (n,) = struct.unpack("!H", recv_exact(s, 2))
        wire = recv_exact(s, n)
        s.close()
    else:
        wire = udp_query(srv.port, q, source=client)
    r = dns.message.from_wire(wire)
    return [str(x) for rrset in r.answer for x in rrset]


def set_status(srv, ip, status):
    r = subprocess.run([SKYDNS, "-config-file", srv.conf, "-set-status", ip, status],
                       capture_output=True, text=True, timeout=30)
    c.eq(r.returncode, 0, "set-status %s %s (%s)" % (ip, status, r.stderr.strip()))


def hone_one(tcp):
    tag = "hone-one [%s]" % ("tcp" if tcp else "udp")
    with Skydns(ZONE, extra_conf="[Fun]\nhone-one = true\n") as srv:
        srv.start()
        first = answer(srv, CLIENTS[0], tcp=tcp)
        c.eq(len(first), 1, tag + " one address per answer")
        same = [answer(srv, CLIENTS[0], tcp=tcp) for _ in range(50)]
        c.ok(all(x == first for x in same), tag + " 50 queries from one client, one address")
        owner = {cl: answer(srv, cl, tcp=tcp)[0] for cl in CLIENTS}
        spread = collections.Counter(owner.values())
        c.eq(sorted(spread), ADDRS, tag + " every address used")
        c.ok(all(35 <= n <= 65 for n in spread.values()),
             tag + " spread within 30%% of even: %s" % dict(spread))
        down = ADDRS[1]
        set_status(srv, down, "DOWN")
        moved = {cl: answer(srv, cl, tcp=tcp)[0] for cl in CLIENTS}
        c.ok(all(a != down for a in moved.values()), tag + " nobody gets the DOWN address")
        c.ok(all(moved[cl] == owner[cl] for cl in CLIENTS if owner[cl] != down),
             tag + " only the clients of the DOWN address move")
        set_status(srv, down, "UP")
        back = {cl: answer(srv, cl, tcp=tcp)[0] for cl in CLIENTS}
        c.eq(back, owner, tag + " clients come back when it is UP again")
        srv.stop()
        srv.start()
        again = {cl: answer(srv, cl, tcp=tcp)[0] for cl in CLIENTS[:50]}
        c.ok(all(again[cl] == owner[cl] for cl in again), tag + " same choice after a restart")
        six = {answer(srv, cl, "six.skydns.local.", tcp, "AAAA")[0] for cl in CLIENTS[:60]}
        c.eq(len(six), 3, tag + " AAAA spread too")


def random_one(tcp):
    tag = "random-one [%s]" % ("tcp" if tcp else "udp")
    with Skydns(ZONE, extra_conf="[Fun]\nrandom-one = true\n") as srv:
        srv.start()
        set_status(srv, ADDRS[3], "DOWN")
        seen = collections.Counter()
        sizes = set()
        for i in range(100):
            got = answer(srv, CLIENTS[i % 3], tcp=tcp)
            sizes.add(len(got))
            seen.update(got)
        c.eq(sizes, {1}, tag + " one A per answer")
        c.eq(sorted(seen), ADDRS[:3], tag + " all healthy addresses seen, never the DOWN one")


def default_mode(tcp):
    tag = "default [%s]" % ("tcp" if tcp else "udp")
    with Skydns(ZONE) as srv:
        srv.start()
        orders = {tuple(answer(srv, CLIENTS[0], tcp=tcp)) for _ in range(40)}
        c.ok(all(sorted(o) == ADDRS for o in orders), tag + " all addresses in every answer")
        c.ok(len(orders) > 1, tag + " order varies (%d orders)" % len(orders))
        set_status(srv, ADDRS[0], "DOWN")
        got = answer(srv, CLIENTS[0], tcp=tcp)
        c.eq(sorted(got), ADDRS[1:], tag + " DOWN address leaves the answer at once")
        for a in ADDRS[1:]:
            set_status(srv, a, "DOWN")
        got = answer(srv, CLIENTS[0], tcp=tcp)
        c.eq(sorted(got), ADDRS, tag + " all DOWN: fail open with every address")


for tcp in (False, True):
    for fn in (hone_one, random_one, default_mode):
        try:
            fn(tcp)
        except Exception as e:
            c.ok(False, "%s tcp=%s: %r" % (fn.__name__, tcp, e))
c.finish()
