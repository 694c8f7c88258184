"""
Issue 14, item 1: forwarding routes around a dead upstream.

`nameservers = dead,live`: `dead` is a scripted server on loopback that
swallows every query, `live` is a real NSD serving *.example.test. Before
the fix every uncached question asked `dead` first and waited out its try
(1 s: forward-timeout 2 s over 2 servers), so every query took ~1 s. Now
the first question (of each worker) pays that once, `dead` is probed in the background
(". NS") and taken out after max-fails, and no later question waits on it:
each one's latency is measured. Then `dead` starts answering: it must be
back in use (a client's question reaches it) within 2 health-check
intervals, and at the first probe after it started answering.

Run with 1 and then 2 workers (health is per worker: each learns on its own,
so each worker's first question may wait). Also checks that the new keys are
validated (-check-config). Bounded: 2 x (40 + at most 100) queries, about
15 s on an idle machine. Ends "N passed, N failed".
"""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from skytest import SKYDNS, Checks, Skydns, free_port, udp_query  # noqa: E402
import skytest  # noqa: E402
from fakeup import FakeUpstream  # noqa: E402

import dns.message  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402
import dns.rrset  # noqa: E402

C = Checks()
HEALTH_S = 0.5
TRY_S = 1.0  # forward-timeout 2 s split over the two servers
# A question that asked `dead` first waited TRY_S; one that did not takes
# milliseconds. Half a try separates the two even on a loaded 2-core machine
# running ASan builds of other tests.
WAITED_S = TRY_S / 2
ZONE = """$ORIGIN example.test.
$TTL 300
@ IN SOA ns1 hostmaster 1 3600 600 86400 60
@ IN NS ns1
ns1 IN A 192.0.2.53
* IN A 192.0.2.1
"""
LIVE_IP, DEAD_IP = "192.0.2.1", "192.0.2.2"


def start_nsd(tmp):
    return skytest.start_nsd(os.path.join(tmp, "nsd"), "example.test", ZONE)


class Dead:
    """Swallows everything until revive(); then answers A DEAD_IP (and . NS)."""

    def __init__(self):
        self.alive = threading.Event()
        self.log = []  # (monotonic time, qname, qtype)
        self.lock = threading.Lock()
        self.up = FakeUpstream(self.handle)

    def handle(self, q, tcp):
        name = q.question[0].name
        with self.lock:
            self.log.append((time.monotonic(), name.to_text().lower(), q.question[0].rdtype))
        if not self.alive.is_set():
            return None
        r = dns.message.make_response(q)
        if q.question[0].rdtype == dns.rdatatype.A:
            r.answer.append(dns.rrset.from_text(name, 60, "IN", "A", DEAD_IP))
        return r.to_wire()

    def entries(self, since=0.0):
        with self.lock:
            return [x for x in self.log if x[0] >= since]


def is_probe(entry):
    return entry[1] == "." and entry[2] == dns.rdatatype.NS


def ask(port, name):
    """@return (seconds, answer address or rcode text)."""
    q = dns.message.make_query(name, "A")
    t = time.monotonic()
    r = dns.message.from_wire(udp_query(port, q.to_wire(), timeout=5.0))
    dt = time.monotonic() - t
    if r.rcode() != dns.rcode.NOERROR or not r.answer:
        return dt, dns.rcode.to_text(r.rcode())
    return dt, r.answer[0][0].address


def metrics(api_port):
    """{(name, server label, rcode or le label or None): value} of skydns_upstream_*."""
    out = {}
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % api_port, timeout=5) as r:
        for line in r.read().decode().splitlines():
            if not line.startswith("skydns_upstream_"):
                continue
            series, val = line.rsplit(" ", 1)
            name, labels = series.split("{", 1)
            kv = dict(x.split("=", 1) for x in labels.rstrip("}").split(","))
            kv = {k: v.strip('"') for k, v in kv.items()}
            out[(name, kv["server"], kv.get("rcode") or kv.get("le"))] = float(val)
    return out


def check_config_errors(tmp):
    """New keys are validated in conf/: a bad value stops start-up with file:line."""
    for line, want in (("policy = fastes", "expected fastest, sequential, random or round-robin"),
                       ("max-fails = 101", "expected a number from 0 to 100"),
                       ("health-check = 0", "expected seconds from 0.05 to 3600"),
                       ("serve-stale = -1", "expected a number from 0 to 2592000"),
                       ("stale-answer-timeout = 61", "expected seconds from 0 to 60")):
        path = os.path.join(tmp, "bad.conf")
        with open(path, "w") as f:
            f.write("[Dns]\nnameservers = 127.0.0.1\n%s\n" % line)
        r = subprocess.run([SKYDNS, "-config-file", path, "-check-config"],
                           capture_output=True, text=True, timeout=30)
        C.eq(r.returncode, 2, "-check-config with '%s': exit status" % line)
        C.ok("bad.conf:3" in r.stderr + r.stdout and want in r.stderr + r.stdout,
             "'%s': %r names the line and says %r" % (line, (r.stderr + r.stdout)[-200:], want))
    path = os.path.join(tmp, "good.conf")
    with open(path, "w") as f:
        f.write("[Dns]\nnameservers = 127.0.0.1\npolicy = Round-Robin\nmax-fails = 0\n"
                "health-check = 0.25\nserve-stale = 86400\nstale-answer-timeout = 0\n")
    r = subprocess.run([SKYDNS, "-config-file", path, "-check-config"],
                       capture_output=True, text=True, timeout=30)
    C.eq(r.returncode, 0, "-check-config accepts the new keys (%s)" % r.stderr[-200:])


def scenario(live_port, workers):
    """The whole story with `workers` workers (each learns on its own)."""
    dead = Dead()
    api_port = free_port()
    sky = Skydns(workers=workers,
                 extra_conf="nameservers = 127.0.0.1:%d,127.0.0.1:%d\n"
                            "forward-timeout = 2\nmax-fails = 2\nhealth-check = %s\n"
                            "cacheSize = 0\n[Api]\napi-enable = true\n"
                            "api-address = 127.0.0.1:%d\n"
                            % (dead.up.port, live_port, HEALTH_S, api_port))
    d_lab, l_lab = "127.0.0.1:%d" % dead.up.port, "127.0.0.1:%d" % live_port
    w = " (%d workers)" % workers
    try:
        sky.start()
        # Phase 1: dead is dead. Each worker's first question may wait on it, no other.
        lat = []
        for i in range(40):  # 40 x 50 ms: 2 s past the first, so 3 health-checks go by
            dt, got = ask(sky.port, "q%d.example.test." % i)
            lat.append(dt)
            C.eq(got, LIVE_IP, "q%d answered by the live server" % i)
            time.sleep(0.05)
        late = [(i, round(t, 3)) for i, t in enumerate(lat) if t >= WAITED_S]
        C.ok(len(late) <= workers, "at most one query per worker waited on the dead server%s: %r"
             % (w, late))
        real = [e for e in dead.entries() if not is_probe(e)]
        C.ok(len(real) <= workers, "the dead server got %d client questions%s, want <= %d"
             % (len(real), w, workers))
        probes = [e for e in dead.entries() if is_probe(e)]
        C.ok(len(probes) >= 2, "the dead server was probed (%d probes)" % len(probes))
        print("dead,live%s: %d queries waited (%.3f s max), median %.4f s; %d probes"
              % (w, len(late), max(lat), sorted(lat)[len(lat) // 2], len(probes)),
              flush=True)

        # Item 2: per-upstream metrics say which server is out and who answered.
        m = metrics(api_port)
        C.eq(m.get(("skydns_upstream_healthy", d_lab, None)), 0.0, "dead: healthy 0")
        C.eq(m.get(("skydns_upstream_healthy", l_lab, None)), 1.0, "live: healthy 1")
        C.ok(m.get(("skydns_upstream_timeouts_total", d_lab, None), 0) >= 2,
             "dead: timeouts counted (%r)" % m.get(("skydns_upstream_timeouts_total", d_lab,
                                                    None)))
        C.ok(m.get(("skydns_upstream_probes_total", d_lab, None), 0) >= 2, "dead: probes counted")
        C.eq(m.get(("skydns_upstream_responses_total", l_lab, "NOERROR")), 40.0,
             "live: 40 NOERROR answers")
        C.eq(m.get(("skydns_upstream_rtt_seconds_count", l_lab, None)), 40.0,
             "live: an RTT sample per answer")
        C.eq(m.get(("skydns_upstream_responses_total", d_lab, "NOERROR")), 0.0,
             "dead: no answers")

        # Phase 2: dead answers again; it is listed first and as fast: back in use.
        t0 = time.monotonic()
        dead.alive.set()
        back = None
        for i in range(100):  # 100 x 50 ms: 5 s at most
            dt, got = ask(sky.port, "r%d.example.test." % i)
            if got == DEAD_IP:
                back = time.monotonic()
                break
            C.ok(got == LIVE_IP, "r%d answered (%s)" % (i, got))
            time.sleep(0.05)
        C.ok(back is not None, "the revived server answers clients again")
        if back is not None:
            first_real = [e for e in dead.entries(t0) if not is_probe(e)][0][0]
            nprobes = len([e for e in dead.entries(t0) if is_probe(e) and e[0] <= first_real])
            # Load-independent: the first probe it answered brought it back. Health is per
            # worker, so each worker's own probe may arrive before the first real query
            # (seen with 2 workers on a loaded machine): at most one probe per worker.
            C.ok(1 <= nprobes <= workers, "back at the first probe after reviving (%d probes, "
                 "%d workers)" % (nprobes, workers))
            # 2 intervals; the 0.5 s margin is for a loaded machine (timers, Python threads).
            C.ok(first_real - t0 <= 2 * HEALTH_S + 0.5,
                 "back in use %.3f s after it answers, want <= %.1f s (2 health-checks)"
                 % (first_real - t0, 2 * HEALTH_S))
            print("revived%s: back in use %.3f s after it started answering" %
                  (w, first_real - t0), flush=True)
        # Every worker's next probe brings it back: within 2 health-checks (+0.5 s, load).
        end, healthy = t0 + 2 * HEALTH_S + 0.5, None
        while healthy != 1.0 and time.monotonic() < end + 0.05:
            healthy = metrics(api_port).get(("skydns_upstream_healthy", d_lab, None))
            time.sleep(0.05)
        C.eq(healthy, 1.0, "revived: healthy 1 in every worker within 2 health-checks")
        log = open(sky.log).read()
        C.ok("taken out" in log and "back in use" in log,
             "the log says the server went out and came back")
    finally:
        sky.stop()
        dead.up.stop()


def main():
    tmp = tempfile.mkdtemp(prefix="skydns-014-")
    check_config_errors(tmp)
    nsd, live_port = start_nsd(tmp)
    try:
        for workers in (1, 2):
            scenario(live_port, workers)
    finally:
        nsd.terminate()
        nsd.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    C.finish()


if __name__ == "__main__":
    main()
