"""
Issue 18, last item of "one honest write model": an explicit way to take over an
imported name.

Before: a write to a name from a zone import got 409 naming the import, and the only way
to change it was to edit and re-import the zone file; POST ?takeover=import was an
ordinary POST (400: no body). A re-import put the file's records beside the API's at a
name the API held, so dig answered both.

Method: the real skydns with a zone imported and users (api-tokens-file); every write
through HTTP, its effect checked with the real dig. PUT on the imported www gets 409
naming the import and pointing at the takeover; POST www?takeover=import by alice answers
200 with what changed (the records, from which import, the new owner; answers
unchanged); then bob gets 403 naming alice and alice's PUT ips [10.0.9.9] makes dig show
only 10.0.9.9. Re-importing the zone (with another name changed, to prove it ran) leaves
www at 10.0.9.9 and says on stderr that it skipped www, as it skips a name the API
created that the file has too. skydns-cli -takeover does the
same for another name. A Kubernetes-owned name (the fake API server kubeapi.py and the
real skydns-watch-k8s) gets 409 naming the watcher and stays as it is.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import k8slib  # noqa: E402
import kubeapi  # noqa: E402
from skytest import BUILD, SKYDNS, Checks, Skydns, free_port, http_request  # noqa: E402

c = Checks()
ADMIN = "adm-018t"
ALICE = "ta-018t"
BOB = "tb-018t"
CLI = os.path.join(BUILD, "cli", "skydns-cli")
ZONE = """$ORIGIN skydns.local.
$TTL 60
www A 10.0.1.1
web A 10.0.2.1
other A 10.0.3.1
"""


def dig(port, name, rtype="A"):
    out = subprocess.run(["dig", "+short", "+time=3", "+tries=1", "-p", str(port), "@127.0.0.1",
                          name, rtype], capture_output=True, text=True, timeout=20).stdout
    return sorted(l for l in out.splitlines() if l)


def api(port, token, method, path, body=None, prefix="/skydns/api/"):
    hdrs = {"Authorization": "Bearer " + token}
    if body is not None:
        hdrs["Content-Type"] = "application/json"
    data = json.dumps(body).encode() if body is not None else None
    st, reply = http_request(port, method, prefix + path, data, hdrs, timeout=10)
    try:
        return st, json.loads(reply or b"null")
    except ValueError:
        return st, {"raw": reply.decode(errors="replace")}


def cli(aport, token, *args):
    r = subprocess.run([CLI, "-addr", "127.0.0.1:%d" % aport, "-token", token] + list(args),
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def local():
    aport = free_port()
    d = Skydns(ZONE, extra_conf="[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\n"
                                "api-token = %s\napi-tokens-file = @TOK@\n" % (aport, ADMIN))
    tok = os.path.join(d.dir, "tokens")
    with open(tok, "w") as f:
        f.write("alice %s\nbob %s\n" % (ALICE, BOB))
    with open(d.conf) as f:
        conf = f.read().replace("@TOK@", tok)
    with open(d.conf, "w") as f:
        f.write(conf)
    with d:
        d.start()
        for _ in range(100):
            if http_request(aport, "GET", "/health", timeout=1.0)[0] == 200:
                break
            time.sleep(0.05)
        P = d.port
        c.eq(dig(P, "www.skydns.local"), ["10.0.1.1"], "imported www resolves")

        st, r = api(aport, ALICE, "PUT", "www", {"type": "A", "ips": ["10.0.9.9"]})
        c.eq(st, 409, "PUT on the imported www -> 409")
        err = r.get("error", "")
        c.ok("zone import of skydns.local." in err and "takeover=import" in err,
             "409 names the import and the takeover: %s" % err)
        c.eq(dig(P, "www.skydns.local"), ["10.0.1.1"], "... www unchanged")

        # Refusals that change nothing.
        st, r = api(aport, ALICE, "POST", "www?takeover=etcd")
        c.eq(st, 400, "takeover=etcd -> 400 (%s)" % r.get("error"))
        st, r = api(aport, ALICE, "POST", "www?takeover=import", {"type": "A", "ips": ["10.0.9.8"]})
        c.eq(st, 400, "a takeover with a body -> 400 (%s)" % r.get("error"))
        st, r = api(aport, ALICE, "POST", "nosuch?takeover=import")
        c.eq(st, 404, "takeover of a name that does not exist -> 404 (%s)" % r.get("error"))
        c.eq(dig(P, "www.skydns.local"), ["10.0.1.1"], "... www unchanged")

        # The takeover: 200 with what changed; answers stay.
        st, r = api(aport, ALICE, "POST", "www?takeover=import")
        c.eq(st, 200, "alice takes www over -> 200 (%s)" % r)
        t = r.get("takeover", {})
        c.eq((t.get("from"), t.get("owner")), ("import:skydns.local.", "alice"),
             "the reply names the import it came from and the new owner")
        c.eq(t.get("records"), [{"name": "www.skydns.local.", "type": "A", "ttl": 60,
                                 "value": "10.0.1.1", "from": "import:skydns.local."}],
             "the reply lists the records that are the API's now")
        c.eq((r.get("added"), r.get("removed")), ([], []), "DNS data: nothing added or removed")
        c.eq(dig(P, "www.skydns.local"), ["10.0.1.1"], "dig: the same answer after the takeover")
        with open(d.log, errors="replace") as f:
            log = f.read()
        c.ok("www.skydns.local. taken over from import:skydns.local. by user alice" in log,
             "the server logs the takeover")
        st, r = api(aport, ADMIN, "GET", "www", prefix="/skydns/domainL1/")
        c.eq([e.get("source") for e in r.get("records", [])], ["api"],
             "domainL1: the record's source is the API now")
        st, r = api(aport, ALICE, "POST", "www?takeover=import")
        c.eq(st, 409, "a second takeover -> 409, the name is the API's (%s)" % r.get("error"))

        # Normal writes now, with ownership.
        st, r = api(aport, BOB, "PUT", "www", {"type": "A", "ips": ["10.0.6.6"]})
        c.eq(st, 403, "bob's PUT on alice's taken-over www -> 403")
        c.ok("alice" in r.get("error", ""), "403 names alice: %s" % r.get("error"))
        st, r = api(aport, ALICE, "PUT", "www", {"type": "A", "ips": ["10.0.9.9"]})
        c.eq(st, 200, "alice's PUT ips [10.0.9.9] -> 200 (%s)" % r)
        c.eq([e["value"] for e in r.get("added", [])], ["10.0.9.9"], "... added 10.0.9.9")
        c.eq([e["value"] for e in r.get("removed", [])], ["10.0.1.1"], "... removed 10.0.1.1")
        c.eq(dig(P, "www.skydns.local"), ["10.0.9.9"], "dig: only 10.0.9.9")

        # skydns-cli -takeover, by the admin.
        rc, out = cli(aport, ADMIN, "-takeover", "web")
        c.eq(rc, 0, "skydns-cli -takeover web exits 0 (%s)" % out.strip())
        c.ok("taken over from import:skydns.local. by admin" in out and "10.0.2.1" in out,
             "skydns-cli prints what it took over: %s" % out.strip())
        rc, out = cli(aport, ADMIN, "-domain", "web", "-method", "update", "-ips", "10.0.8.8")
        c.eq(rc, 0, "skydns-cli update of the taken-over web (%s)" % out.strip())
        c.eq(dig(P, "web.skydns.local"), ["10.0.8.8"], "dig: web is 10.0.8.8")
        rc, out = cli(aport, ADMIN, "-takeover", "web")
        c.ok(rc != 0 and "409" in out, "skydns-cli -takeover of an API name fails: %s"
             % out.strip())

        # A name created through the API that the zone file gets later: also the API's.
        st, r = api(aport, ALICE, "POST", "fresh", {"type": "A", "ips": ["10.0.4.4"]})
        c.eq(st, 201, "alice creates fresh through the API")

        # A re-import of the zone leaves the API's names alone and says so.
        path = os.path.join(d.dir, "zone2.txt")
        with open(path, "w") as f:
            f.write(ZONE.replace("10.0.3.1", "10.0.3.2") + "fresh A 10.0.5.5\n")
        r = subprocess.run([SKYDNS, "-config-file", d.conf, "-import", path],
                           capture_output=True, text=True, timeout=120)
        c.eq(r.returncode, 0, "re-import exits 0 (%s%s)" % (r.stdout, r.stderr))
        c.ok("skipped 3 records at 3 names the API owns" in r.stderr and
             "www.skydns.local." in r.stderr and "web.skydns.local." in r.stderr and
             "fresh.skydns.local." in r.stderr,
             "the re-import says it skipped www, web and fresh: %s" % r.stderr.strip())
        c.ok("imported 1 records" in r.stdout, "... and imported the rest: %s" % r.stdout.strip())
        c.eq(dig(P, "other.skydns.local"), ["10.0.3.2"], "dig: the re-import ran (other changed)")
        c.eq(dig(P, "www.skydns.local"), ["10.0.9.9"], "dig: www still only 10.0.9.9")
        c.eq(dig(P, "web.skydns.local"), ["10.0.8.8"], "dig: web still only 10.0.8.8")
        c.eq(dig(P, "fresh.skydns.local"), ["10.0.4.4"], "dig: fresh only the API's 10.0.4.4")
        st, r = api(aport, ALICE, "DELETE", "fresh")
        c.eq(st, 200, "alice can still delete fresh (no import records beside it)")


def kubernetes():
    watcher = os.path.join(os.path.dirname(SKYDNS), "skydns-watch-k8s")
    if not os.path.exists(watcher):
        print("SKIP kubernetes part: %s is not built" % watcher)
        return
    kapi = kubeapi.KubeAPI(port=free_port(), bookmark_interval=1.0).start()
    sky = k8slib.Skydns(kapi.url, token="test-token")
    try:
        kapi.add(kubeapi.service("default", "web", cluster_ip="10.96.0.10"))
        sky.start()
        name = "web.default.svc.cluster.local."
        ok = k8slib.wait_for(lambda: sky.answer(name) == ("NOERROR", ["10.96.0.10"]), 20)
        c.ok(ok is not None, "the watcher's name answers (%s)" % (sky.answer(name),))
        st, reply = http_request(sky.api_port, "POST", "/skydns/api/%s?takeover=import" % name,
                                 None, {}, timeout=10)
        err = json.loads(reply or b"{}").get("error", "")
        c.eq(st, 409, "takeover of a Kubernetes name -> 409 (%s)" % err)
        c.ok("Kubernetes watcher" in err, "... naming the watcher: %s" % err)
        c.eq(sky.answer(name), ("NOERROR", ["10.96.0.10"]), "... and the name is unchanged")
    finally:
        sky.stop()
        sky.cleanup()
        kapi.stop()


local()
kubernetes()
c.finish()
