#!/usr/bin/env python3
"""Raw DNS clients for the integration tests (stdlib + dnspython, loopback only).

  dnsraw.py pipeline HOST PORT NAME...   N queries written at once on one TCP
                                         connection; prints "rcode name answer..."
                                         per reply, in arrival order
  dnsraw.py idle HOST PORT SECONDS       open a TCP connection, send nothing, print
                                         how long until the server closed it
                                         ("open" if still open after SECONDS)
  dnsraw.py malformed HOST PORT SEED N   send N malformed packets (UDP and TCP)
                                         and after each check that a normal query
                                         is still answered; prints "ok N" or the
                                         failing case
  dnsraw.py flood HOST PORT N            N UDP queries, prints answered count
"""
import os
import random
import selectors
import socket
import struct
import sys
import time

import dns.message
import dns.rcode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import skytest  # noqa: E402  (shared framing helpers)


def query_bytes(name, qtype="A", qid=None):
    q = dns.message.make_query(name, qtype)
    q.id = qid if qid is not None else random.randrange(65536)
    return q.to_wire()


def tcp_read_msg(s):
    return dns.message.from_wire(skytest.tcp_read_msg(s))


def pipeline(host, port, names):
    s = socket.create_connection((host, port), timeout=5)
    out = b""
    for i, n in enumerate(names):
        w = query_bytes(n, "A", qid=i + 1)
        out += struct.pack("!H", len(w)) + w
    # Split the write so that framing has to be reassembled on the server.
    mid = len(out) // 2 + 1
    s.sendall(out[:mid])
    time.sleep(0.05)
    s.sendall(out[mid:])
    for _ in names:
        m = tcp_read_msg(s)
        ans = sorted(str(rr) for rrset in m.answer for rr in rrset)
        print(m.id, dns.rcode.to_text(m.rcode()), m.question[0].name, " ".join(ans))
    s.close()


def idle(host, port, seconds):
    s = socket.create_connection((host, port), timeout=seconds)
    t0 = time.monotonic()
    try:
        data = s.recv(1)
        print("closed %.2f" % (time.monotonic() - t0) if data == b"" else "data")
    except socket.timeout:
        print("open")
    except ConnectionResetError:
        print("closed %.2f" % (time.monotonic() - t0))
    s.close()


def alive(host, port):
    """One SOA query, sent once: a reply lost after a malformed packet is what
    this looks for, so a retry would hide it (loopback loses none otherwise)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    try:
        s.sendto(query_bytes("skydns.local.", "SOA"), (host, port))
        try:
            data, _ = s.recvfrom(65535)
        except socket.timeout:
            return False
        return dns.message.from_wire(data).rcode() == 0
    finally:
        s.close()


def malformed_cases(rng, n):
    good = query_bytes("www.skydns.local.", "A", qid=7)
    hdr = bytearray(good[:12])
    cases = [
        ("empty", b"", False),
        ("one byte", b"\x00", False),
        ("short header", good[:11], False),
        ("header only", good[:12], False),
        ("header qdcount=1, no question", bytes(hdr), False),
        ("truncated qname", good[:16], False),
        ("no qtype", good[: len(good) - 4], False),
        ("qdcount=2", good[:4] + b"\x00\x02" + good[6:], False),
        ("qdcount=0", good[:4] + b"\x00\x00" + good[6:], False),
        ("compression loop", good[:12] + b"\xc0\x0c\x00\x01\x00\x01", False),
        ("pointer forward", good[:12] + b"\xc0\x20\x00\x01\x00\x01", False),
        ("label too long", good[:12] + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01", False),
        ("name over 255", good[:12] + (b"\x3f" + b"a" * 63) * 5 + b"\x00\x00\x01\x00\x01", False),
        ("response bit set", good[:2] + b"\x80\x00" + good[4:], False),
        ("arcount=5 no records", good[:10] + b"\x00\x05" + good[12:], False),
        ("bad opt", good[:10] + b"\x00\x01" + good[12:] + b"\x00\x00\x29\x10", False),
        ("tcp zero length", b"\x00\x00", True),
        ("tcp huge length", b"\xff\xff" + good, True),
        ("tcp length > data, then close", b"\x01\x00" + good, True),
        ("tcp header only", struct.pack("!H", 12) + good[:12], True),
    ]
    while len(cases) < n:
        k = rng.randrange(4)
        if k == 0:
            b = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 600)))
        else:
            b = bytearray(good)
            for _ in range(rng.randrange(1, 6)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            b = bytes(b)
        tcp = rng.random() < 0.3
        if tcp:
            b = struct.pack("!H", len(b)) + b
        cases.append(("random %d" % len(cases), b, tcp))
    return cases[:n]


def send_case(host, port, data, tcp):
    if tcp:
        s = socket.create_connection((host, port), timeout=2)
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            s.recv(65535)
        except OSError:
            pass
        s.close()
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(data, (host, port))
        s.close()


def malformed(host, port, seed, n):
    rng = random.Random(seed)
    for name, data, tcp in malformed_cases(rng, n):
        send_case(host, port, data, tcp)
        if not alive(host, port):
            print("dead after: %s (%s) %s" % (name, "tcp" if tcp else "udp", data[:40].hex()))
            return 1
    print("ok %d" % n)
    return 0


def flood(host, port, n):
    # Several source ports, so SO_REUSEPORT spreads the load over every worker.
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(16)]
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    answered = sent = inflight = 0
    window = 32
    deadline = time.monotonic() + 120
    while (sent < n or inflight > 0) and time.monotonic() < deadline:
        while sent < n and inflight < window:
            socks[sent % len(socks)].sendto(query_bytes("www.skydns.local.", "A"), (host, port))
            sent += 1
            inflight += 1
        ready = sel.select(timeout=1)
        if not ready:
            inflight = 0  # lost; keep going
        for key, _ in ready:
            try:
                while True:
                    key.fileobj.recvfrom(65535)
                    answered += 1
                    inflight -= 1
            except BlockingIOError:
                pass
    print(answered)
    return 0


def main(argv):
    cmd, host, port = argv[1], argv[2], int(argv[3])
    if cmd == "pipeline":
        pipeline(host, port, argv[4:])
    elif cmd == "idle":
        idle(host, port, float(argv[4]))
    elif cmd == "malformed":
        return malformed(host, port, int(argv[4]), int(argv[5]))
    elif cmd == "flood":
        return flood(host, port, int(argv[4]))
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
