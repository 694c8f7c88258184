"""
Issue 18 item 3: SRV the way SkyDNS users write it.

Before: a body with "ips" and "ports" put A records on the SRV name itself and
made every SRV point at the name, so which port belonged to which address was
lost; "port": 443 was refused with "ports is required"; there was no "targets".

Method: the real skydns with a token API; SRV writes in each form, each checked
with the real dig: every SRV must name a target whose A/AAAA is exactly its own
address, with its own port, priority and weight; deletes take the generated
target names along, but only once no SRV points at them.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from skytest import Checks, Skydns, free_port, http_request

c = Checks()
TOKEN = "t0ken-018-srv"


def dig(port, name, rtype="A"):
    out = subprocess.run(["dig", "+short", "+time=3", "+tries=1", "-p", str(port), "@127.0.0.1",
                          name, rtype], capture_output=True, text=True, timeout=20).stdout
    return sorted(l for l in out.splitlines() if l)


def api(port, method, path, body=None):
    hdrs = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"}
    data = json.dumps(body).encode() if body is not None else None
    st, reply = http_request(port, method, "/skydns/api/" + path, data, hdrs, timeout=10)
    try:
        return st, json.loads(reply or b"null")
    except ValueError:
        return st, {"raw": reply.decode(errors="replace")}


def srv_map(port, name):
    """{(prio, weight, port): address of the target} from dig, or a failure text."""
    got = {}
    for line in dig(port, name, "SRV"):
        prio, weight, p, target = line.split()
        addrs = dig(port, target, "A") + dig(port, target, "AAAA")
        got[(int(prio), int(weight), int(p))] = ",".join(addrs) if addrs else "no address"
    return got


aport = free_port()
extra = "[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\napi-token = %s\n" % (aport, TOKEN)
with Skydns(None, extra_conf=extra) as d:
    d.start()
    for _ in range(100):
        if http_request(aport, "GET", "/health", timeout=1.0)[0] == 200:
            break
        time.sleep(0.05)
    P = d.port
    N = "_http._tcp.web.skydns.local"

    st, r = api(aport, "POST", "_http._tcp.web", {"type": "SRV", "targets": [
        {"host": "10.0.0.1", "port": 80, "priority": 10, "weight": 5},
        {"host": "10.0.0.2", "port": 8080, "priority": 20, "weight": 1},
        {"host": "2001:db8::7", "port": 81}]})
    c.eq(st, 201, "POST SRV targets -> 201 (%s)" % r)
    c.eq(srv_map(P, N), {(10, 5, 80): "10.0.0.1", (20, 1, 8080): "10.0.0.2",
                         (10, 10, 81): "2001:db8::7"},
         "each SRV points at a target holding its own address")
    c.eq(dig(P, "10-0-0-1." + N), ["10.0.0.1"], "the generated target name answers")
    c.eq(dig(P, N, "A"), [], "no A records on the SRV name itself")

    # Short forms: each address with its port, one port for all, "port": 443.
    st, r = api(aport, "POST", "_a._tcp.pair", {"type": "SRV", "ips": ["10.1.0.1", "10.1.0.2"],
                                                "ports": [7001, 7002], "priority": 3, "weight": 4})
    c.eq(st, 201, "POST SRV ips+ports -> 201 (%s)" % r)
    c.eq(srv_map(P, "_a._tcp.pair.skydns.local"), {(3, 4, 7001): "10.1.0.1", (3, 4, 7002): "10.1.0.2"},
         "ips and ports pair up")
    st, r = api(aport, "POST", "_b._tcp.one", {"type": "SRV", "ips": ["10.2.0.1", "10.2.0.2"],
                                               "port": 443})
    c.eq(st, 201, "\"port\": 443 accepted (%s)" % r)
    got = dig(P, "_b._tcp.one.skydns.local", "SRV")
    c.eq([l.split()[2] for l in got], ["443", "443"], "both SRVs on port 443")
    st, r = api(aport, "POST", "_c._tcp.name", {"type": "SRV", "target": "backend", "port": 9000})
    c.eq(st, 201, "target + port")
    c.eq(dig(P, "_c._tcp.name.skydns.local", "SRV"), ["10 10 9000 backend.skydns.local."],
         "dig SRV with a host name target")
    st, r = api(aport, "POST", "_d._tcp.bad", {"type": "SRV", "ips": ["10.3.0.1", "10.3.0.2",
                                                                       "10.3.0.3"], "ports": [1, 2]})
    c.eq(st, 400, "3 addresses with 2 ports -> 400")
    c.eq(dig(P, "_d._tcp.bad.skydns.local", "SRV"), [], "... created nothing")

    # One address on two ports shares a helper; deleting one SRV keeps it for the other.
    st, r = api(aport, "POST", "_e._tcp.two", {"type": "SRV", "ips": ["10.4.0.1"],
                                               "ports": [1001, 1002]})
    c.eq(st, 201, "one address, two ports")
    st, r = api(aport, "DELETE", "_e._tcp.two", {"type": "SRV", "targets": [
        {"host": "10.4.0.1", "port": 1001}]})
    c.eq(st, 200, "DELETE one SRV target (%s)" % r)
    c.eq(srv_map(P, "_e._tcp.two.skydns.local"), {(10, 10, 1002): "10.4.0.1"},
         "the other SRV still reaches its address")
    st, r = api(aport, "DELETE", "_e._tcp.two", {"type": "SRV", "targets": [
        {"host": "10.4.0.1", "port": 1002}]})
    c.eq(st, 200, "DELETE the last SRV")
    c.eq(dig(P, "10-4-0-1._e._tcp.two.skydns.local"), [], "its helper address went with it")
    c.ok(any(e["name"].startswith("10-4-0-1.") for e in r.get("removed", [])),
         "... and the reply says so: %s" % r.get("removed"))

    # PUT replaces the SRV set; the dropped target's helper goes too.
    st, r = api(aport, "PUT", "_http._tcp.web", {"type": "SRV", "targets": [
        {"host": "10.0.0.1", "port": 80, "priority": 10, "weight": 5},
        {"host": "10.0.0.3", "port": 90}]})
    c.eq(st, 200, "PUT SRV -> 200 (%s)" % r)
    c.eq(srv_map(P, N), {(10, 5, 80): "10.0.0.1", (10, 10, 90): "10.0.0.3"}, "PUT replaced the set")
    c.eq(dig(P, "10-0-0-2." + N), [], "the dropped target's address is gone")
    # A bare DELETE of the SRV name removes its helpers.
    st, r = api(aport, "DELETE", "_http._tcp.web")
    c.eq(st, 200, "DELETE the SRV name")
    c.eq(dig(P, N, "SRV") + dig(P, "10-0-0-1." + N) + dig(P, "2001-db8--7." + N, "AAAA"), [],
         "no SRV and no generated target left")
c.finish()
