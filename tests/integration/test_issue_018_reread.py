"""
Issue 18: POST /skydns/domainL1/<name> re-reads that name from etcd.

The watch keeps the store in step with etcd, but not when etcd itself is replaced
under it: an etcd rebuilt (or restored) as the same cluster (same member, same
cluster id) and already past the store's revision looks to the watcher like the
etcd it left, so it resumes and the store keeps its old copy of the names. The
original's POST domainL1/<name> is the operator's way to fix one name: skydns-watch-
etcd reads the name's keys (its own and those below) from etcd at one revision and
writes them into the store, without moving the stored revision, and the watch goes on.

Before: POST answered 501 "not offered yet" with etcd configured.

Method: a real one-member etcd (Debian's etcd-server) and skydns on loopback; the
store is made to diverge as above (checked with dig first), then the POST, dig for
its effect on the name, its children and a sibling it must leave alone, a later
etcd write still arriving through the watch, and skydns-cli -reread. Bounded: some
40 etcd writes and a few dozen queries, each with a timeout.
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import etcdlib  # noqa: E402
from skytest import BUILD, Checks, http_request  # noqa: E402

C = Checks()
D = "skydns.local."
TOKEN = "t0ken-018-reread"
CLI = os.path.join(BUILD, "cli", "skydns-cli")


def api(port, method, path):
    hdrs = {"Content-Type": "application/json", "Authorization": "Bearer " + TOKEN}
    st, reply = http_request(port, method, "/skydns/" + path, b"{}" if method == "POST" else None,
                             hdrs, timeout=40)
    try:
        return st, json.loads(reply or b"null")
    except ValueError:
        return st, {"raw": reply.decode(errors="replace")}


def values(doc):
    return sorted(str(r.get("value")) for r in (doc or {}).get("records", [])
                  if r.get("type") == "A")


def main():
    if not os.path.exists(etcdlib.ETCD):
        C.skip("no etcd binary")
    root = etcdlib.tempdir()
    et = etcdlib.Etcd(root)
    sky = etcdlib.Skydns(os.path.join(root, "sky"), et.url)
    with open(sky.conf) as f:
        conf = f.read().replace("api-enable = true\n",
                                "api-enable = true\napi-token = %s\n" % TOKEN)
    with open(sky.conf, "w") as f:
        f.write(conf)

    def a(name):
        return sky.answer(name + "." + D, "A")

    def put(k, host):
        et.put_fast("/skydns/local/skydns/" + k, json.dumps({"host": host}))
    try:
        et.start()
        sky.start()
        C.ok(etcdlib.wait_for(lambda: sky.ready() == 200, 20) is not None, "skydns ready")
        put("rr/a", "10.7.0.1")
        put("rr/gone", "10.7.0.9")
        put("rr2", "10.7.1.1")
        for i in range(5):
            put("fill", "10.7.9.%d" % i)
        C.ok(etcdlib.wait_for(lambda: a("fill") == (0, ["10.7.9.4"]), 10) is not None,
             "the watch applied every write")
        C.eq(a("rr"), (0, ["10.7.0.1", "10.7.0.9"]), "rr from etcd")

        # In step: a re-read finds nothing to change.
        st, r = api(sky.api_port, "POST", "domainL1/rr")
        rr = r.get("reread") or {}
        C.ok(st == 200 and rr.get("keys") == 2 and rr.get("changed") == 0
             and rr.get("dropped") == 0, "POST in step: 2 keys, nothing changed (%d %s)" % (st, r))
        stored = sky.metrics().get("skydns_etcd_revision_applied")
        C.eq(rr.get("storedRev"), int(stored or -1), "the reply names the stored revision")

        # etcd rebuilt as the same cluster, past the stored revision, with other data.
        sky.stop()
        et.stop()
        shutil.rmtree(os.path.join(et.dir, "data"))
        et.start()
        put("rr/a", "10.7.0.2")
        put("rr/b", "10.7.0.3")
        put("rr2", "10.7.1.2")
        while et.revision() < stored + 3:  # bounded: a few puts outside the prefix
            et.put_fast("/elsewhere/filler", "x")
        sky.start()
        C.ok(etcdlib.wait_for(lambda: sky.ready() == 200, 20) is not None, "skydns ready again")
        C.ok("resumed from revision" in sky.log(since_start=True),
             "the watcher resumed (it cannot tell the rebuilt etcd from the old one)")
        C.eq(a("rr"), (0, ["10.7.0.1", "10.7.0.9"]), "precondition: the store kept its old rr")

        st, r = api(sky.api_port, "POST", "domainL1/rr")
        rr = r.get("reread") or {}
        C.eq(st, 200, "POST domainL1/rr with etcd configured (%s)" % r)
        C.ok(rr.get("keys") == 2 and rr.get("changed") == 2 and rr.get("dropped") == 1,
             "the re-read: 2 keys, 2 put, 1 dropped (%s)" % rr)
        C.ok(rr.get("rev", 0) >= et.revision() and rr.get("key") == "/skydns/local/skydns/rr",
             "read at etcd's current revision, from the name's key (%s)" % rr)
        C.eq(values(r), ["10.7.0.2", "10.7.0.3"], "the reply shows the store after the re-read")
        C.eq(a("rr"), (0, ["10.7.0.2", "10.7.0.3"]), "dig rr: etcd's addresses now")
        C.eq(a("b.rr"), (0, ["10.7.0.3"]), "dig b.rr: a key new in etcd")
        C.eq(a("gone.rr")[0], 3, "dig gone.rr: NXDOMAIN, etcd has no such key")
        C.eq(a("rr2"), (0, ["10.7.1.1"]), "dig rr2: a sibling is not re-read")
        C.eq(sky.metrics().get("skydns_etcd_revision_applied"), stored,
             "the stored revision did not move")

        # The watch goes on: a later write arrives, and the name's re-read keys stay.
        put("rr/c", "10.7.0.4")
        C.ok(etcdlib.wait_for(lambda: a("rr") == (0, ["10.7.0.2", "10.7.0.3", "10.7.0.4"]), 10)
             is not None, "a later etcd write arrives through the watch (%s)" % (a("rr"),))

        r = subprocess.run([CLI, "-addr", "127.0.0.1:%d" % sky.api_port, "-token", TOKEN,
                            "-reread", "rr2"], capture_output=True, text=True, timeout=60)
        C.ok(r.returncode == 0 and "10.7.1.2" in r.stdout,
             "skydns-cli -reread rr2 (%d: %s%s)" % (r.returncode, r.stdout, r.stderr))
        C.eq(a("rr2"), (0, ["10.7.1.2"]), "dig rr2 after skydns-cli -reread")
        st, r = api(sky.api_port, "POST", "domainL1/nothing-here")
        C.ok(st == 200 and r.get("records") == [] and (r.get("reread") or {}).get("keys") == 0,
             "a name etcd does not have: 200, no records (%d %s)" % (st, r))
        st, r = api(sky.api_port, "POST", "domainL1/www.example.com")
        C.eq(st, 400, "a name outside the local domains: 400")
    finally:
        sky.stop()
        et.stop()
        shutil.rmtree(root, ignore_errors=True)
    C.finish()


main()
