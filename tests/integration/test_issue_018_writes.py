"""
Issue 18 items 1 and 2: one honest write model, and names that cannot go astray.

Before: DELETE of a name from a zone import answered 200 {"deleted":true} and the
name still resolved; DELETE {"ips":[...]} of an imported address answered 404
"has no such record" although GET showed it; PUT {"ips":[...]} on an imported
name left the old addresses; a typo "cctv9.skydns.locl" created
"cctv9.skydns.locl.skydns.local.".

Method: the real skydns with a zone imported and a token API; every write goes
through HTTP and its effect is checked with the real dig. A write on an imported
name must get 409 naming the import and change nothing; PUT ips replaces the set;
DELETE ips removes exactly those (404 naming all absent ones, deleting nothing);
every 2xx write reply lists what it added and removed; dotted names outside the
local domains get 400 naming the domains and create nothing.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from skytest import Checks, Skydns, free_port, http_request

c = Checks()
TOKEN = "t0ken-018"
ZONE = """$ORIGIN skydns.local.
$TTL 60
www A 10.0.1.1
www A 10.0.1.2
mixed TXT "from the zone"
"""


def dig(port, name, rtype="A"):
    """Sorted +short answers, or the rcode text when there are none."""
    r = subprocess.run(["dig", "+time=3", "+tries=1", "-p", str(port), "@127.0.0.1", name, rtype],
                       capture_output=True, text=True, timeout=20)
    out = subprocess.run(["dig", "+short", "+time=3", "+tries=1", "-p", str(port), "@127.0.0.1",
                          name, rtype], capture_output=True, text=True, timeout=20).stdout
    lines = sorted(l for l in out.splitlines() if l)
    if lines:
        return lines
    for l in r.stdout.splitlines():
        if "status:" in l:
            return l.split("status:")[1].split(",")[0].strip()
    return "no answer"


def api(port, method, path, body=None):
    hdrs = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"}
    data = json.dumps(body).encode() if body is not None else None
    st, reply = http_request(port, method, "/skydns/api/" + path, data, hdrs, timeout=10)
    try:
        return st, json.loads(reply or b"null")
    except ValueError:
        return st, {"raw": reply.decode(errors="replace")}


def values(entries):
    return sorted(json.dumps(e["value"]) if not isinstance(e["value"], str) else e["value"]
                  for e in entries)


aport = free_port()
extra = "[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\napi-token = %s\n" % (aport, TOKEN)
with Skydns(ZONE, extra_conf="dns-domains = skydns.local.%example.test.\n" + extra) as d:
    d.start()
    for _ in range(100):
        if http_request(aport, "GET", "/health", timeout=1.0)[0] == 200:
            break
        time.sleep(0.05)
    P = d.port

    # 1. Imported names: 409 with the owner named, and nothing changes.
    c.eq(dig(P, "www.skydns.local"), ["10.0.1.1", "10.0.1.2"], "imported www resolves")
    st, r = api(aport, "GET", "www")
    c.eq(st, 200, "GET of an imported name works")
    for method, body in (("DELETE", None), ("DELETE", {"ips": ["10.0.1.1"]}),
                         ("PUT", {"type": "A", "ips": ["10.9.9.9"]}),
                         ("PUT", {"type": "A", "update": {"10.0.1.1": "10.9.9.7"}}),
                         ("PUT", {"type": "A", "ips": ["10.0.1.1"], "mode": "random-one"}),
                         ("POST", {"type": "A", "ips": ["10.9.9.8"]}),
                         ("POST", {"type": "TXT", "text": "x"})):
        st, r = api(aport, method, "www", body)
        c.eq(st, 409, "%s %s on an imported name -> 409" % (method, json.dumps(body)))
        c.ok("zone import of skydns.local." in r.get("error", ""),
             "409 names the owner: %s" % r.get("error"))
        c.eq(dig(P, "www.skydns.local"), ["10.0.1.1", "10.0.1.2"], "... and www still answers both")
    c.eq(dig(P, "www.skydns.local", "TXT"), "NOERROR", "... and got no TXT")
    st, r = api(aport, "POST", "tvwww", {"type": "cname", "alias": "www"})
    c.eq(st, 409, "a CNAME written at the imported name -> 409")
    st, r = api(aport, "POST", "www", {"type": "cname", "alias": "alias-of-www"})
    c.eq(st, 201, "an API alias pointing at an imported name is fine (%s)" % r)
    c.eq(dig(P, "alias-of-www.skydns.local", "CNAME"), ["www.skydns.local."], "dig the alias")

    # PUT ips replaces the type's set; the reply says what changed.
    st, r = api(aport, "POST", "svc1", {"type": "A", "ips": ["10.2.0.1", "10.2.0.2"]})
    c.eq(st, 201, "POST svc1")
    c.eq(values(r["added"]), ["10.2.0.1", "10.2.0.2"], "POST reply lists what it added")
    c.eq(r["removed"], [], "POST removed nothing")
    st, r = api(aport, "PUT", "svc1", {"type": "A", "ips": ["10.2.0.2", "10.2.0.3"]})
    c.eq(st, 200, "PUT svc1")
    c.eq(dig(P, "svc1.skydns.local"), ["10.2.0.2", "10.2.0.3"], "PUT ips replaced the set")
    c.eq(values(r["added"]), ["10.2.0.3"], "PUT reply: added only the new one")
    c.eq(values(r["removed"]), ["10.2.0.1"], "PUT reply: removed only the dropped one")
    st, r = api(aport, "PUT", "svc1", {"type": "A", "ips": ["10.2.0.2", "10.2.0.3"]})
    c.eq((st, r["added"], r["removed"]), (200, [], []), "PUT of the same set changes nothing")
    st, r = api(aport, "PUT", "svc1", {"type": "A", "ips": ["10.2.0.2", "10.2.0.3"], "mode": "random-one"})
    c.eq((st, r["added"], r["removed"], r.get("modes")),
         (200, [], [], [{"name": "svc1.skydns.local.", "type": "A", "mode": "random-one",
                         "was": "default"}]), "a PUT that only changes the mode says so")
    c.eq(len(dig(P, "svc1.skydns.local")), 1, "dig: random-one answers one address")
    st, r = api(aport, "PUT", "svc1", {"type": "A", "ips": ["10.2.0.2", "10.2.0.3"]})
    c.eq(r.get("modes", [{}])[0].get("mode"), "default",
         "a PUT without mode rebuilds the set with the default mode, and says so")
    c.eq(len(dig(P, "svc1.skydns.local")), 2, "dig: both addresses again")
    st, r = api(aport, "PUT", "svc1", {"type": "TXT", "text": "hello"})
    c.eq(dig(P, "svc1.skydns.local", "TXT"), ['"hello"'], "PUT TXT adds the TXT set")
    c.eq(dig(P, "svc1.skydns.local"), ["10.2.0.2", "10.2.0.3"], "... and leaves the A set")

    # DELETE ips removes exactly those; any absent one -> 404 naming all absent, nothing deleted.
    st, r = api(aport, "DELETE", "svc1", {"ips": ["10.2.0.3", "10.2.0.77", "10.2.0.78"]})
    c.eq(st, 404, "DELETE with absent ips -> 404")
    err = r.get("error", "")
    c.ok("10.2.0.77" in err and "10.2.0.78" in err and "10.2.0.3" not in err,
         "404 names exactly the absent ones: %s" % err)
    c.eq(dig(P, "svc1.skydns.local"), ["10.2.0.2", "10.2.0.3"], "... and deleted nothing")
    st, r = api(aport, "DELETE", "svc1", {"ips": ["10.2.0.3"]})
    c.eq(st, 200, "DELETE one ip")
    c.eq(values(r["removed"]), ["10.2.0.3"], "DELETE reply lists the removed address")
    c.eq(dig(P, "svc1.skydns.local"), ["10.2.0.2"], "dig: exactly that one is gone")
    st, r = api(aport, "DELETE", "svc1")
    c.eq(st, 200, "DELETE the whole name")
    c.eq(values(r["removed"]), ["10.2.0.2", "hello"], "... the reply lists all it removed")
    c.eq((r["deleted"], r["records"]), (True, []), "... deleted, nothing left")
    c.eq(dig(P, "svc1.skydns.local"), "NXDOMAIN", "dig: svc1 gone")

    # 2. Names: typos and foreign dotted names are refused and create nothing.
    for name in ("cctv9.skydns.locl", "www.example.com", "a.b"):
        st, r = api(aport, "POST", name, {"type": "A", "ips": ["10.3.0.1"]})
        c.eq(st, 400, "POST %s -> 400" % name)
        c.ok("skydns.local., example.test." in r.get("error", ""),
             "400 names the local domains: %s" % r.get("error"))
    c.eq(dig(P, "cctv9.skydns.locl.skydns.local"), "NXDOMAIN", "the typo created nothing")
    c.eq(dig(P, "www.example.com.skydns.local"), "NXDOMAIN", "www.example.com created nothing")
    st, r = api(aport, "POST", "www.example.com.", {"type": "A", "ips": ["10.3.0.1"]})
    c.eq(st, 400, "an absolute name outside the domains -> 400")
    for name, full in (("cctv9", "cctv9.skydns.local"), ("cctv8.skydns.local", "cctv8.skydns.local"),
                       ("m.example.test", "m.example.test"), ("abs.example.test.", "abs.example.test"),
                       ("_http._tcp.web", "_http._tcp.web.skydns.local")):
        st, r = api(aport, "POST", name, {"type": "A", "ips": ["10.3.0.2"]})
        c.eq(st, 201, "POST %s -> 201" % name)
        c.eq(r.get("name"), full + ".", "%s means %s." % (name, full))
        c.eq(dig(P, full), ["10.3.0.2"], "dig %s" % full)
    st, r = api(aport, "POST", "x", {"type": "cname", "alias": "tv.skydns.locl"})
    c.eq(st, 400, "a mistyped alias -> 400")
    c.ok("skydns.local." in r.get("error", ""), "... naming the domains: %s" % r.get("error"))
c.finish()
