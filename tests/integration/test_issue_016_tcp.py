"""
Issue 16 (TCP): pipelined queries over one connection (RFC 7766 §6.2.1.1).

Before: the server answered one query per send and waited for that send's completion
before the next, on a socket with Nagle on. A client that wrote 8 queries at once and
read the 8 answers got the first at once and each later one only after the client's
delayed ACK of the one before (~40 ms): 20 such bursts took over a second. Now every
whole query of a read is answered into one send, and the listener sets TCP_NODELAY.

Method: the real skydns, one worker; over one TCP connection, 20 bursts of 8 queries
(A, AAAA NODATA, NXDOMAIN mixed), each burst written at once; every answer must match
its query (id, name, rcode) and come in the order asked; the 20 bursts must take less
than 0.5 s in all (they take a few ms; 20 x 40 ms is 0.8 s). Then one burst whose
middle query is split across two writes, and a connection closed with queries unread.
"""
import os
import struct
import sys
import time

import dns.message
import dns.rcode

sys.path.insert(0, os.path.dirname(__file__))
from skytest import Checks, Skydns, tcp_connect, tcp_read_msg  # noqa: E402

c = Checks()
ZONE = "$ORIGIN skydns.local.\n$TTL 60\n" + "".join(
    "h%d A 10.6.0.%d\n" % (i, i) for i in range(50))


def burst(k):
    """8 (wire, want) pairs: want = (rcode text, first answer or None)."""
    out = []
    for j in range(8):
        i = (k * 8 + j) % 50
        if j % 4 == 3:
            q, want = dns.message.make_query("nx%d.skydns.local." % i, "A"), ("NXDOMAIN", None)
        elif j % 4 == 2:
            q, want = dns.message.make_query("h%d.skydns.local." % i, "AAAA"), ("NOERROR", None)
        else:
            q, want = dns.message.make_query("h%d.skydns.local." % i, "A"), ("NOERROR",
                                                                           "10.6.0.%d" % i)
        q.id = k * 8 + j + 1
        out.append((q, want))
    return out


def check_answers(s, pairs, what):
    for q, want in pairs:
        r = dns.message.from_wire(tcp_read_msg(s))
        got = (dns.rcode.to_text(r.rcode()),
               r.answer[0][0].to_text() if r.answer else None)
        if not c.ok(r.id == q.id and r.question[0].name == q.question[0].name and got == want,
                    "%s: answer %d is %s %s %s, want %d %s %s" % (
                        what, q.id, r.id, r.question[0].name, got, q.id, q.question[0].name,
                        want)):
            return False
    return True


with Skydns(ZONE, workers=1) as d:
    d.start()
    s = tcp_connect(d.port, timeout=5.0)
    t0 = time.monotonic()
    ok = True
    for k in range(20):
        pairs = burst(k)
        s.sendall(b"".join(struct.pack("!H", len(w)) + w for w in (q.to_wire() for q, _ in pairs)))
        ok = check_answers(s, pairs, "burst %d" % k) and ok
    took = time.monotonic() - t0
    c.ok(ok, "160 pipelined answers, each for its query, in order")
    c.ok(took < 0.5, "20 bursts of 8 pipelined queries took %.3f s (< 0.5 s: no reply waits "
         "for the ACK of the one before)" % took)

    # A query split across two writes in the middle of a burst is answered like the others.
    pairs = burst(20)
    data = b"".join(struct.pack("!H", len(w)) + w for w in (q.to_wire() for q, _ in pairs))
    cut = len(data) // 2 + 3
    s.sendall(data[:cut])
    time.sleep(0.05)
    s.sendall(data[cut:])
    c.ok(check_answers(s, pairs, "split burst"), "a burst split mid-query is answered whole")
    s.close()

    # Queries left unread by a client that went away do not hurt the next client.
    s = tcp_connect(d.port)
    s.sendall(b"".join(struct.pack("!H", len(w)) + w
                       for w in (q.to_wire() for q, _ in burst(21) * 20)))
    s.close()
    s = tcp_connect(d.port)
    pairs = burst(22)
    s.sendall(b"".join(struct.pack("!H", len(w)) + w for w in (q.to_wire() for q, _ in pairs)))
    c.ok(check_answers(s, pairs, "after a vanished client"), "the next client is answered")
    s.close()
    c.ok(d.alive(), "skydns still runs")

c.finish()
