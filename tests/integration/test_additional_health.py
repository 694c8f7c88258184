"""
The additional section follows health like the answer section.

Before: an SRV answer's additional section carried every A of its target,
also one marked DOWN, so a resolver that takes addresses from the additional
section (most stubs do) went to the backend the answer steered it away from.
After: DOWN addresses are left out of the additional section, and when every
address of a target is DOWN all of them are given (fail open, as answers do).

Method: the real skydns with a zone import; the target's health set through
the API; the real dig reads the additional section.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from skytest import Checks, Skydns, free_port, http_request

c = Checks()
TOKEN = "t0ken-additional-health"
ZONE = """$ORIGIN skydns.local.
$TTL 60
@ IN SOA ns1 hostmaster 1 3600 600 86400 60
_http._tcp.web IN SRV 10 10 80 backend
backend IN A 10.9.0.1
backend IN A 10.9.0.2
"""


def additional(port, name, rtype):
    out = subprocess.run(["dig", "+noall", "+additional", "+time=3", "+tries=1", "-p", str(port),
                          "@127.0.0.1", name, rtype], capture_output=True, text=True,
                         timeout=20).stdout
    rrs = [l.split() for l in out.splitlines()]
    return sorted(f[4] for f in rrs if len(f) == 5 and f[3] == "A")


def status(aport, ip, state):
    hdrs = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"}
    st, _ = http_request(aport, "PUT", "/skydns/status/" + ip,
                         json.dumps({"status": state}).encode(), hdrs, timeout=10)
    return st


aport = free_port()
extra = "[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\napi-token = %s\n" % (aport, TOKEN)
with Skydns(ZONE, extra_conf=extra) as d:
    d.start()
    for _ in range(100):
        if http_request(aport, "GET", "/health", timeout=1.0)[0] == 200:
            break
        time.sleep(0.05)
    N = "_http._tcp.web.skydns.local"
    c.eq(additional(d.port, N, "SRV"), ["10.9.0.1", "10.9.0.2"], "all UP: both in additional")
    c.eq(status(aport, "10.9.0.2", "DOWN"), 200, "10.9.0.2 set DOWN")
    c.eq(additional(d.port, N, "SRV"), ["10.9.0.1"], "the DOWN address leaves the additional section")
    c.eq(status(aport, "10.9.0.1", "DOWN"), 200, "10.9.0.1 set DOWN too")
    c.eq(additional(d.port, N, "SRV"), ["10.9.0.1", "10.9.0.2"],
         "every address DOWN: all of them (fail open, as answers)")
    c.eq(status(aport, "10.9.0.1", "UP"), 200, "10.9.0.1 UP again")
    c.eq(additional(d.port, N, "SRV"), ["10.9.0.1"], "back in")
c.finish()
