#!/usr/bin/env python3
"""
Issue 13: skydns-probe with icmp = true.

  - an address that answers echo (127.0.13.9 on loopback) is UP, one whose
    echoes vanish is DOWN by the timeout: the probe runs in a network namespace
    this test makes (unshare -n) where 10.99.0.0/24 is routed to lo, so the
    kernel drops the echo requests (no local address, no forwarding);
  - without the rights for either ICMP socket (run as nobody, with
    net.ipv4.ping_group_range excluding its group) the probe exits with a
    clear error instead of checking nothing.
"""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import skytest  # noqa: E402
from skytest import Checks, Skydns, free_port, http_request, wait_api  # noqa: E402

TOKEN = "icmp-token"
PROBE = os.path.join(skytest.BUILD, "server", "skydns-probe")
c = Checks()
if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
    c.skip("needs root, unshare and ip for a network namespace")
if not os.path.exists(PROBE):
    c.skip("skydns-probe is not built")

aport = free_port()
zone = """$ORIGIN skydns.local.
$TTL 30
@ IN SOA ns.skydns.local. admin.skydns.local. 1 3600 600 86400 30
svc IN A 127.0.13.9
svc IN A 10.99.0.1
"""
extra = ("[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\napi-token = %s\n"
         "[Probe]\nicmp = true\ncheck-interval = 0.5\ncheck-timeout = 0.3\nrise = 1\n"
         "fall = 2\nid = icmp13\n" % (aport, TOKEN))
HDR = {"Authorization": "Bearer " + TOKEN}


def status():
    st, body = http_request(aport, "GET", "/skydns/status/", headers=HDR)
    return {x["ip"]: x for x in json.loads(body)["status"]} if st == 200 else {}


def metric(name):
    st, body = http_request(aport, "GET", "/metrics", headers=HDR)
    for line in body.decode(errors="replace").splitlines():
        if line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


with Skydns(zone, extra_conf=extra) as d:
    d.start()
    c.ok(wait_api(aport), "the API answers")
    netns = ("ip link set lo up && ip route add 10.99.0.0/24 dev lo && exec %s -config-file %s"
             % (PROBE, d.conf))
    log = open(os.path.join(d.dir, "probe.out"), "w")
    p = subprocess.Popen(["unshare", "-n", "sh", "-c", netns], stdout=log,
                         stderr=subprocess.STDOUT)
    try:
        end = time.monotonic() + 8
        st = {}
        while time.monotonic() < end:
            st = status()
            if st.get("10.99.0.1", {}).get("status") == "DOWN" and \
                    st.get("127.0.13.9", {}).get("status") == "UP":
                break
            time.sleep(0.1)
        c.eq(st.get("127.0.13.9", {}).get("status"), "UP", "an address answering echo is UP")
        c.eq(st.get("10.99.0.1", {}).get("status"), "DOWN", "a silent address is DOWN")
        c.eq(st.get("10.99.0.1", {}).get("source"), "probe", "said by the probe")
        t = metric("skydns_probe_timeouts_total")
        c.ok(t is not None and t >= 2, "by timeouts (%s)" % t)
        c.eq(metric("skydns_probe_errors_total"), 0.0, "no send errors: the echo left")
    finally:
        p.terminate()
        c.eq(p.wait(timeout=10), 0, "the probe stops on SIGTERM")
        log.close()
    print(open(os.path.join(d.dir, "probe.out")).read()[-1500:])

    # No ICMP socket at all: a clear error, exit status 1.
    with open("/proc/sys/net/ipv4/ping_group_range") as f:
        lo, hi = (int(x) for x in f.read().split())
    if shutil.which("setpriv") and not (lo <= 65534 <= hi):
        os.chmod(d.dir, 0o755)
        os.chmod(d.conf, 0o644)
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            PROBE, "-config-file", d.conf], capture_output=True, text=True,
                           timeout=20)
        c.eq(r.returncode, 1, "without ICMP rights the probe exits 1")
        c.ok("no ICMP datagram socket" in r.stdout + r.stderr and
             "no raw socket" in r.stdout + r.stderr,
             "and says why: %r" % (r.stdout + r.stderr)[-400:])
c.finish()
