#!/usr/bin/env python3
"""
Issue 13, etcd mode: two skydns-probe processes (ids pA, pB) beside two skydns
nodes that share one real etcd. Each probe reads the addresses from its node's
store (filled by the etcd watcher), holds a lease under /skydns-probes/, and
checks only the addresses that rendezvous-hash to it among the live probes.

  - they split the addresses: each owns roughly half, together all, none twice
    (owned counts from each node's /metrics, and every status key written once
    with "source":"probe");
  - a closed backend goes DOWN in etcd and leaves both nodes' answers;
  - other fields of an existing status value survive the probe's write;
  - SIGKILL pB: pA owns everything within lease TTL + one interval (+1 s) and
    takes over pB's addresses (a backend of pB's closed after the kill goes DOWN).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import etcdlib  # noqa: E402
import skytest  # noqa: E402

c = skytest.Checks()
PROBE = os.path.join(skytest.BUILD, "server", "skydns-probe")
if not os.path.exists(etcdlib.ETCD) or not os.path.exists(PROBE):
    c.skip("needs etcd and skydns-probe")

N = 24
INTERVAL, FALL = 1.0, 2
TTL = 3  # max(3, 3 x interval)
MON = "/skydns/monitor/status/"
ADDRS = ["127.0.14.%d" % i for i in range(1, N + 1)]
bport = skytest.free_port()
root = etcdlib.tempdir()
etcd = etcdlib.Etcd(root)
probe_conf = ("[Probe]\nscan-ports = %d\ncheck-interval = %g\ncheck-timeout = 0.4\nrise = 1\n"
              "fall = %d\n" % (bport, INTERVAL, FALL))
n1 = etcdlib.Skydns(os.path.join(root, "n1"), etcd.url, etcd_extra=probe_conf)
n2 = etcdlib.Skydns(os.path.join(root, "n2"), etcd.url, etcd_extra=probe_conf)

listeners = {}


def listen(ip):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, bport))
    s.listen(128)
    s.setblocking(False)
    listeners[ip] = s


def pump(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for s in list(listeners.values()):
            try:
                while True:
                    conn, _ = s.accept()
                    conn.close()
            except OSError:
                pass
        time.sleep(0.02)


def wait(cond, within):
    t0 = time.monotonic()
    while time.monotonic() - t0 < within:
        if cond():
            return time.monotonic() - t0
        pump(0.1)
    return None


def owned(node, pid):
    m = node.metrics()
    return m.get('skydns_probe_addresses_owned{probe="%s"}' % pid)


def statuses():
    out = {}
    for k, v in etcd.items(MON).items():
        try:
            out[k[len(MON):]] = json.loads(v)
        except ValueError:
            pass
    return out


M64 = (1 << 64) - 1


def weight(pid, ip):
    """probe/etcd_mode.c's rendezvous weight of (probe id, address)."""
    h = 1469598103934665603
    for b in pid.encode() + b"\xff" + socket.inet_aton(ip):
        h = ((h ^ b) * 1099511628211) & M64
    h ^= h >> 33
    h = (h * 0xff51afd7ed558ccd) & M64
    h ^= h >> 33
    h = (h * 0xc4ceb9fe1a85ec53) & M64
    return h ^ (h >> 33)


def owner(ip, ids=("pA", "pB")):
    return max(sorted(ids), key=lambda i: weight(i, ip))


procs = {}
try:
    etcd.start()
    for i, ip in enumerate(ADDRS):
        etcd.put_fast("/skydns/local/skydns/svc/h%d" % i, json.dumps({"host": ip}))
        listen(ip)
    # A status value with a field of its own, which the probe must keep.
    etcd.put_fast(MON + ADDRS[0], json.dumps({"status": "UP", "note": "rack 7",
                                              "source": "probe"}))
    n1.start()
    n2.start()
    c.ok(etcdlib.wait_for(lambda: len(n1.answer("svc.skydns.local.")[1]) == N and
                          len(n2.answer("svc.skydns.local.")[1]) == N, 15) is not None,
         "both nodes answer all %d addresses" % N)
    for pid, node in (("pA", n1), ("pB", n2)):
        log = open(os.path.join(node.dir, "probe-%s.out" % pid), "w")
        procs[pid] = subprocess.Popen([PROBE, "-config-file", node.conf, "-id", pid],
                                      stdout=log, stderr=subprocess.STDOUT)
    ok = wait(lambda: (owned(n1, "pA") or 0) + (owned(n2, "pB") or 0) == N and
              0 < (owned(n1, "pA") or 0) < N, 10)
    a, b = owned(n1, "pA"), owned(n2, "pB")
    c.ok(ok is not None, "the probes split the addresses: pA %s, pB %s" % (a, b))
    c.ok(a is not None and b is not None and N * 0.2 <= a <= N * 0.8,
         "roughly half each: pA %s, pB %s of %d" % (a, b, N))
    c.eq(n1.metrics().get('skydns_probe_peers{probe="pA"}'), 2.0, "pA sees two live probes")
    want_a = sum(1 for ip in ADDRS if owner(ip) == "pA")
    c.eq((a, b), (want_a, N - want_a), "the split is the rendezvous hash's")
    # Every address gets one UP statement from whichever probe owns it.
    wait(lambda: len(statuses()) >= N, 3 * INTERVAL + 2)
    st = statuses()
    c.eq(sorted(st), sorted(ADDRS), "a status key for every address")
    c.ok(all(v.get("status") == "UP" and v.get("source") == "probe" for v in st.values()),
         "all UP, source probe")
    c.eq(st.get(ADDRS[0], {}).get("note"), "rack 7", "other fields of a value are kept")
    # Checks in a window match ownership: nobody checks an address twice.
    ca0 = n1.metrics().get('skydns_probe_checks_total{probe="pA"}', 0)
    cb0 = n2.metrics().get('skydns_probe_checks_total{probe="pB"}', 0)
    pump(4 * INTERVAL)
    ca = n1.metrics().get('skydns_probe_checks_total{probe="pA"}', 0) - ca0
    cb = n2.metrics().get('skydns_probe_checks_total{probe="pB"}', 0) - cb0
    c.ok(abs((ca + cb) - 4 * N) <= N, "checks in 4 intervals: pA %d + pB %d ~ %d" % (ca, cb, 4 * N))
    c.ok(abs(ca - 4 * a) <= a + 2 and abs(cb - 4 * b) <= b + 2,
         "each checks only its own: pA %d for %s, pB %d for %s" % (ca, a, cb, b))

    # A closed backend: DOWN in etcd, out of both nodes' answers.
    victim = ADDRS[5]
    listeners.pop(victim).close()
    t = wait(lambda: victim not in n1.answer("svc.skydns.local.")[1] and
             victim not in n2.answer("svc.skydns.local.")[1], FALL * INTERVAL + 4)
    c.ok(t is not None and t <= FALL * INTERVAL + 1.5,
         "closed backend left both nodes' answers in %s s" % t)
    c.eq(statuses().get(victim, {}).get("status"), "DOWN", "its status key says DOWN")
    listen(victim)

    # SIGKILL pB: its lease expires and pA takes everything.
    procs["pB"].send_signal(signal.SIGKILL)
    procs["pB"].wait()
    t = wait(lambda: owned(n1, "pA") == N, TTL + INTERVAL + 1 + 3)
    c.ok(t is not None and t <= TTL + INTERVAL + 1,
         "pA owns all %d within TTL + interval (+1 s): %s s" % (N, t))
    print("measured: split pA %s / pB %s of %d; takeover after SIGKILL in %s s" % (a, b, N, t))
    # An address that was pB's: pA notices its backend closing now.
    victim = [ip for ip in ADDRS if owner(ip) == "pB"][-1]
    listeners.pop(victim).close()
    t = wait(lambda: statuses().get(victim, {}).get("status") == "DOWN", FALL * INTERVAL + 3)
    c.ok(t is not None, "after the takeover a closed backend still goes DOWN (%s s)" % t)
    c.ok(etcdlib.wait_for(lambda: victim not in n2.answer("svc.skydns.local.")[1], 3)
         is not None, "and leaves node 2's answers")
finally:
    for p in procs.values():
        if p.poll() is None:
            p.terminate()
            try:
                rc = p.wait(timeout=10)
                c.eq(rc, 0, "a probe stops cleanly on SIGTERM")
            except subprocess.TimeoutExpired:
                p.kill()
                c.ok(False, "a probe ignored SIGTERM")
    for pid, node in (("pA", n1), ("pB", n2)):
        path = os.path.join(node.dir, "probe-%s.out" % pid)
        if os.path.exists(path) and c.failed:
            print("--- %s ---\n%s" % (pid, open(path).read()[-2500:]))
    n1.stop()
    n2.stop()
    etcd.stop()
    for s in listeners.values():
        s.close()
    shutil.rmtree(root, ignore_errors=True)
c.finish()
