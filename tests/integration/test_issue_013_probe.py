#!/usr/bin/env python3
"""
Issue 13: skydns-probe, started by skydns ([Probe] enable = true), steers
answers by TCP checks of real listeners this test opens and closes on
127.0.13.x (embedded mode: health records in the store, source "probe").

  - a closed backend leaves the answers within fall x interval (+1 s), and is
    back within rise x interval (+1 s) once reopened;
  - one refused check (the listener closed for less than an interval) does not
    change the state (fall = 2);
  - an address whose SYNs are swallowed (a listener with backlog 0 and a full
    accept queue: Linux drops the SYN) goes DOWN by the timeout, not a refusal;
  - ports come from the SRV records aimed at the address's name, not
    scan-ports;
  - a manual statement (PUT /skydns/status/<ip>) holds the address against the
    probe until DELETE clears it; GET /skydns/status/ says who and since when;
  - /metrics shows the probe's counters and latency histogram.
"""
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import skytest  # noqa: E402
from skytest import Checks, Skydns, free_port, http_request, wait_api  # noqa: E402

INTERVAL, TIMEOUT, RISE, FALL = 1.0, 0.4, 2, 2
TOKEN = "probe-test-token"
c = Checks()

if not os.path.exists(os.path.join(skytest.BUILD, "server", "skydns-probe")):
    c.skip("skydns-probe is not built")

bport, sport, aport, apiport = free_port(), free_port(), free_port(), free_port()
APIHOST = "127.0.13.6"
DNS = {}
ADDRS = ["127.0.13.%d" % i for i in range(1, 5)]
SRVHOST = "127.0.13.5"
zone = """$ORIGIN skydns.local.
$TTL 30
@ IN SOA ns.skydns.local. admin.skydns.local. 1 3600 600 86400 30
svc IN A %s
srvhost IN A %s
_x._tcp.srvhost IN SRV 0 0 %d srvhost.skydns.local.
""" % ("\nsvc IN A ".join(ADDRS), SRVHOST, sport)


class Listener:
    """A TCP listener on (ip, port) that accepts and closes connections."""

    def __init__(self, ip, p, backlog=128):
        self.ip, self.port, self.backlog = ip, p, backlog
        self.s = None
        self.open()

    def open(self):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.s.bind((self.ip, self.port))
        self.s.listen(self.backlog)
        self.s.setblocking(False)

    def drain(self):
        while self.s:
            try:
                conn, _ = self.s.accept()
                conn.close()
            except OSError:
                return

    def close(self):
        if self.s:
            self.s.close()
            self.s = None


def dig(name):
    r = subprocess.run(["dig", "+short", "+time=1", "+tries=2", "-p", str(DNS["port"]), "@127.0.0.1",
                        name, "A"], capture_output=True, text=True, timeout=10)
    return sorted(x for x in r.stdout.split() if x.count(".") == 3 and "#" not in x)


def metrics():
    st, body = http_request(aport, "GET", "/metrics", headers={"Authorization": "Bearer " + TOKEN})
    out = {}
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("skydns_probe") and " " in line:
            k, v = line.rsplit(" ", 1)
            out[k.split("{")[0] + ("" if "le=" not in k else k[k.index("le="):])] = float(v)
    return out


def status():
    st, body = http_request(aport, "GET", "/skydns/status/",
                            headers={"Authorization": "Bearer " + TOKEN})
    return {x["ip"]: x for x in json.loads(body)["status"]} if st == 200 else {}


def set_status(ip, what):
    hdr = {"Authorization": "Bearer " + TOKEN}
    if what is None:
        return http_request(aport, "DELETE", "/skydns/status/" + ip, headers=hdr)[0]
    return http_request(aport, "PUT", "/skydns/status/" + ip,
                        body=json.dumps({"status": what}).encode(), headers=hdr)[0]


def pump(listeners, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for li in listeners:
            li.drain()
        time.sleep(0.02)


def wait_answers(listeners, want, within):
    """Seconds until `svc` answers exactly `want`, or None after `within`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < within:
        if dig("svc.skydns.local.") == sorted(want):
            return time.monotonic() - t0
        pump(listeners, 0.1)
    return None


extra = ("[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\napi-token = %s\n"
         "[Probe]\nenable = true\nscan-ports = %d\ncheck-interval = %g\ncheck-timeout = %g\n"
         "rise = %d\nfall = %d\nid = it13\n" % (aport, TOKEN, bport, INTERVAL, TIMEOUT, RISE,
                                                FALL))
lst = [Listener(ip, bport) for ip in ADDRS]
srvl = Listener(SRVHOST, sport)
apil = Listener(APIHOST, apiport)
alll = lst + [srvl, apil]
with Skydns(zone, extra_conf=extra) as d:
    d.start()
    DNS["port"] = d.port
    c.ok(wait_api(aport), "the API answers")
    # Every address counts UP from the start, and the first checks confirm it.
    c.eq(dig("svc.skydns.local."), sorted(ADDRS), "all addresses answer at start")
    end = time.monotonic() + 3 * INTERVAL + 2
    while time.monotonic() < end and len(status()) < 5:
        pump(alll, 0.1)
    st = status()
    c.eq(sorted(st), sorted(ADDRS + [SRVHOST]), "the probe stated every address")
    c.ok(all(x["ip"] != APIHOST for x in st.values()), "nothing yet for the API's address")
    c.ok(all(x["source"] == "probe" and x["status"] == "UP" for x in st.values()),
         "the probe's statements are UP with source probe: %r" % st)
    c.ok(all(x.get("since", "").endswith("Z") for x in st.values()), "status says since when")
    # SRV port, not scan-ports: srvhost listens on sport only and stays UP.
    pump(alll, 3 * INTERVAL)
    c.eq(status().get(SRVHOST, {}).get("status"), "UP", "the SRV port is what is checked")
    # Ports given through the API: an SRV created with ips + ports.
    st_, body = http_request(aport, "POST", "/skydns/api/_y._tcp.apisvc",
                             body=json.dumps({"type": "SRV", "ips": [APIHOST],
                                              "ports": [apiport]}).encode(),
                             headers={"Authorization": "Bearer " + TOKEN,
                                      "Content-Type": "application/json"})
    c.eq(st_, 201, "POST SRV through the API (%s)" % body[:200])
    end = time.monotonic() + 3 * INTERVAL + 2
    while time.monotonic() < end and APIHOST not in status():
        pump(alll, 0.1)
    pump(alll, 3 * INTERVAL)
    c.eq(status().get(APIHOST, {}).get("status"), "UP", "the API's port is what is checked")
    apil.close()
    end = time.monotonic() + FALL * INTERVAL + 2
    while time.monotonic() < end and status().get(APIHOST, {}).get("status") != "DOWN":
        pump(alll, 0.1)
    c.eq(status().get(APIHOST, {}).get("status"), "DOWN", "and its closing is seen")
    apil.open()  # no more refusals from it: section 3 counts them

    # 1. A closed backend leaves the answers within fall x interval (+1 s).
    lst[1].close()
    t = wait_answers(alll, [ADDRS[0], ADDRS[2], ADDRS[3]], FALL * INTERVAL + 1 + 2)
    c.ok(t is not None and t <= FALL * INTERVAL + 1,
         "closed backend left answers in %s s (limit %g)" % (t, FALL * INTERVAL + 1))
    print("measured: closed backend out of answers in %s s" % t)
    c.eq(status().get(ADDRS[1], {}).get("status"), "DOWN", "the probe says DOWN")
    # ... and is back within rise x interval (+1 s) once reopened.
    lst[1].open()
    t = wait_answers(alll, ADDRS, RISE * INTERVAL + 1 + 2)
    c.ok(t is not None and t <= RISE * INTERVAL + 1,
         "reopened backend back in %s s (limit %g)" % (t, RISE * INTERVAL + 1))
    print("measured: reopened backend back in %s s" % t)

    # 2. One refused check does not flap: close for 0.5 s until a refusal is counted.
    m0 = metrics()
    flapped = False
    for _ in range(6):
        r0 = metrics().get("skydns_probe_refused_total", 0)
        lst[3].close()
        pump(alll, 0.5)
        lst[3].open()
        t_end = time.monotonic() + INTERVAL * 1.5
        while time.monotonic() < t_end:
            if ADDRS[3] not in dig("svc.skydns.local."):
                flapped = True
            pump(alll, 0.1)
        if metrics().get("skydns_probe_refused_total", 0) > r0:
            break
    m1 = metrics()
    c.ok(m1.get("skydns_probe_refused_total", 0) > m0.get("skydns_probe_refused_total", 0),
         "a check was refused during the short close")
    c.ok(not flapped, "one refused check did not take the address out")
    c.eq(m1.get("skydns_probe_down_changes_total"), m0.get("skydns_probe_down_changes_total"),
         "no state change from one refused check")

    # 3. Swallowed SYNs: DOWN by the timeout, not by a refusal.
    lst[2].close()
    lst[2] = Listener(ADDRS[2], bport, backlog=0)
    filler = [socket.create_connection((ADDRS[2], bport), timeout=2)]
    # Anything the probe got queued fills it too; stop accepting from now on.
    alll_but = [li for li in alll if li is not lst[2]]
    m0 = metrics()
    t = wait_answers(alll_but, [ADDRS[0], ADDRS[1], ADDRS[3]], FALL * INTERVAL + 1 + 2)
    m1 = metrics()
    c.ok(t is not None and t <= FALL * INTERVAL + 1 + TIMEOUT,
         "silent backend left answers in %s s" % t)
    print("measured: silent backend out of answers in %s s" % t)
    c.ok(m1.get("skydns_probe_timeouts_total", 0) >= m0.get("skydns_probe_timeouts_total", 0) + FALL,
         "it went DOWN by timeouts: %r -> %r" % (m0.get("skydns_probe_timeouts_total"),
                                                m1.get("skydns_probe_timeouts_total")))
    c.eq(m1.get("skydns_probe_refused_total"), m0.get("skydns_probe_refused_total"),
         "no refusal was counted meanwhile")
    for f in filler:
        f.close()
    lst[2].close()
    lst[2] = Listener(ADDRS[2], bport)
    c.ok(wait_answers(alll, ADDRS, RISE * INTERVAL + 3) is not None, "back after the silence")

    # 4. Manual statements hold the address against the probe until cleared.
    c.eq(set_status(ADDRS[0], "DOWN"), 200, "PUT DOWN")
    pump(alll, 3 * INTERVAL)
    c.ok(ADDRS[0] not in dig("svc.skydns.local."), "manual DOWN holds a healthy address out")
    c.eq(status().get(ADDRS[0], {}).get("source"), "api", "status says the API said so")
    c.eq(metrics().get("skydns_probe_addresses_manual"), 1.0, "one address held by hand")
    c.eq(set_status(ADDRS[0], None), 200, "DELETE")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 2 and status().get(ADDRS[0], {}).get("source") != "probe":
        pump(alll, 0.05)
    c.eq(status().get(ADDRS[0], {}).get("source"), "probe", "the probe states it again")
    c.ok(ADDRS[0] in dig("svc.skydns.local."), "cleared: back in answers")
    lst[1].close()
    c.ok(wait_answers(alll, [ADDRS[0], ADDRS[2], ADDRS[3]], FALL * INTERVAL + 3) is not None,
         "closed one out")
    c.eq(set_status(ADDRS[1], "UP"), 200, "PUT UP over the probe's DOWN")
    c.ok(wait_answers(alll, ADDRS, 1) is not None, "manual UP brings it back")
    pump(alll, 2 * INTERVAL)
    c.ok(ADDRS[1] in dig("svc.skydns.local."), "manual UP holds against failing checks")
    set_status(ADDRS[1], None)
    t = wait_answers(alll, [ADDRS[0], ADDRS[2], ADDRS[3]], 2)
    c.ok(t is not None and t < 1.0, "cleared: the probe's DOWN is back at once (%s s)" % t)
    lst[1].open()

    # 5. Metrics.
    m = metrics()
    c.ok(m.get("skydns_probe_checks_total", 0) > 10, "checks counted: %r" % m)
    c.eq(m.get("skydns_probe_addresses_owned"), 6.0, "six addresses owned")
    c.ok(m.get("skydns_probe_check_seconds_count", 0) > 0, "latency histogram filled")
    c.eq(m.get("skydns_probe_addresses_manual"), 0.0, "none held by hand once cleared")
for li in alll:
    li.close()
c.finish()
