"""
Issue 11, distributed mode: with etcd configured the admin API writes etcd
(one txn per request, create-if-absent / compare-and-swap on mod_revision)
through the local skydns-watch-etcd, and replies once this node's store has
applied the write.

A 3-member etcd cluster on loopback and two skydns nodes (own data dirs and
ports). First the write model on one node (read-your-writes: dig right after
the reply; 409 on a duplicate; update old -> new; delete; cname alias; status
from the API and from skydns -set-status into the monitor keys). Then 200 API writes spread over both nodes from four
threads, half of them racing on the same ten names (each node adding its own
addresses), plus same-address and same-update races that only one node may
win; at the end both stores equal etcd for every name and no write is lost.
Then one etcd member dies: writes and answers go on. Then a node is stopped,
written around, and restarted: it catches up.
"""
import json
import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
import etcdlib  # noqa: E402
import skytest  # noqa: E402
from dns.rcode import NOERROR, NXDOMAIN  # noqa: E402

D = "skydns.local."
c = skytest.Checks()
root = etcdlib.tempdir()
cl = etcdlib.EtcdCluster(root, 3)
sky1 = etcdlib.Skydns(os.path.join(root, "sky1"), cl.urls())
sky2 = etcdlib.Skydns(os.path.join(root, "sky2"),
                      ",".join(m.url for m in reversed(cl.members)))
JSON = {"Content-Type": "application/json"}


def api(node, method, name, body=None):
    data = json.dumps(body).encode() if body is not None else None
    st, out = skytest.http_request(node.api_port, method, "/skydns/api/" + name, data,
                                   JSON if data is not None else None, timeout=20)
    try:
        return st, json.loads(out.decode() or "null")
    except ValueError:
        return st, out


def status(node, method, ip, body=None):
    data = json.dumps(body).encode() if body is not None else None
    st, out = skytest.http_request(node.api_port, method, "/skydns/status/" + ip, data,
                                   JSON if data is not None else None, timeout=20)
    return st, out


def etcd_view(member):
    """{name: sorted addresses} from etcd's keys as the API writes them."""
    out = {}
    for k, v in member.items("/skydns/local/skydns/").items():
        parts = k.rstrip("/").split("/")[4:]
        host = json.loads(v).get("host")
        if parts and parts[-1].startswith("ip-") and host:
            out.setdefault(".".join(reversed(parts[:-1])), []).append(host)
    return {n: sorted(a) for n, a in out.items()}


def dns_view(node, names):
    return {n: node.answer(n + "." + D, "A")[1] for n in names}


try:
    cl.start()
    m0, m1, m2 = cl.members
    sky1.start()
    sky2.start()
    for node in (sky1, sky2):
        c.ok(etcdlib.wait_for(lambda: node.ready() == 200, 20) is not None,
             "node on port %d ready (first etcd read committed)" % node.port)

    # ---- the write model, on one node ----
    st, body = api(sky1, "POST", "web", {"type": "A", "ips": ["10.0.0.1"]})
    c.eq(st, 201, "create: 201 (%r)" % (body,))
    # Read-your-writes: the reply came after this node's store applied the revision.
    c.eq(sky1.answer("web." + D, "A"), (NOERROR, ["10.0.0.1"]),
         "the node that answered has it at once")
    c.eq([(a["name"], a["type"], a["value"]) for a in (body or {}).get("added", [])],
         [("web." + D, "A", "10.0.0.1")], "the reply lists what it added")
    c.eq(json.loads(m1.ctl("get", "/skydns/local/skydns/web/ip-10-0-0-1",
                           "--print-value-only").strip() or "{}").get("host"),
         "10.0.0.1", "the record is an etcd key in the CoreDNS format")
    c.ok(etcdlib.wait_for(lambda: sky2.answer("web." + D, "A") == (NOERROR, ["10.0.0.1"]),
                          5) is not None, "the other node answers it through its watch")
    st, body = api(sky2, "POST", "web", {"type": "A", "ips": ["10.0.0.1"]})
    c.eq(st, 409, "the same record again, through the other node: 409 (%r)" % (body,))
    st, body = api(sky2, "PUT", "web", {"type": "A", "update": {"10.0.0.1": "10.0.0.2"}})
    c.eq(st, 200, "update old -> new: 200 (%r)" % (body,))
    c.eq(sky2.answer("web." + D, "A"), (NOERROR, ["10.0.0.2"]), "update visible at once")
    st, body = api(sky1, "POST", "web", {"type": "cname", "alias": "www"})
    c.eq(st, 201, "cname alias: 201 (%r)" % (body,))
    r = sky1.query("www." + D, "A")
    c.eq(sorted(str(x) for rr in r.answer for x in rr),
         sorted(["web." + D, "10.0.0.2"]), "www is an alias of web")
    st, body = api(sky1, "PUT", "web", {"type": "A", "ips": ["10.0.0.3", "10.0.0.4"]})
    c.eq(st, 200, "replace the set: 200 (%r)" % (body,))
    c.eq(sorted(a["value"] for a in (body or {}).get("removed", [])), ["10.0.0.2"],
         "replace: removed the old address")
    c.eq(sky1.answer("web." + D, "A"), (NOERROR, ["10.0.0.3", "10.0.0.4"]), "replaced set")
    st, _ = status(sky2, "PUT", "10.0.0.3", {"status": "DOWN"})
    c.eq(st, 200, "status DOWN through the API: 200")
    c.eq(json.loads(m0.ctl("get", "/skydns/monitor/status/10.0.0.3",
                           "--print-value-only").strip() or "{}"),
         {"status": "DOWN"}, "status is a monitor key in etcd")
    c.eq(sky2.answer("web." + D, "A"), (NOERROR, ["10.0.0.4"]), "DOWN leaves the answer")
    c.ok(etcdlib.wait_for(lambda: sky1.answer("web." + D, "A") == (NOERROR, ["10.0.0.4"]),
                          5) is not None, "the other node applies the status too")
    st, _ = status(sky1, "PUT", "10.0.0.3", {"status": "UP"})
    # skydns -set-status with etcd configured writes the monitor key too (through
    # skydns-watch-etcd, which owns the etcd client).
    r = subprocess.run([skytest.SKYDNS, "-config-file", sky2.conf, "-set-status", "10.0.0.4",
                        "DOWN"], capture_output=True, text=True, timeout=30)
    c.eq(r.returncode, 0, "-set-status exits 0 (%s%s)" % (r.stdout, r.stderr))
    c.eq(json.loads(m2.ctl("get", "/skydns/monitor/status/10.0.0.4",
                           "--print-value-only").strip() or "{}"),
         {"status": "DOWN"}, "-set-status writes the monitor key in etcd")
    c.ok(etcdlib.wait_for(lambda: sky1.answer("web." + D, "A") == (NOERROR, ["10.0.0.3"]),
                          5) is not None, "-set-status DOWN reaches the other node")
    r = subprocess.run([skytest.SKYDNS, "-config-file", sky2.conf, "-set-status", "10.0.0.4",
                        "UP"], capture_output=True, text=True, timeout=30)
    c.ok(r.returncode == 0 and etcdlib.wait_for(
        lambda: sky1.answer("web." + D, "A") == (NOERROR, ["10.0.0.3", "10.0.0.4"]), 5)
        is not None, "-set-status UP brings it back")
    c.eq(sky1.answer("web." + D, "A"), (NOERROR, ["10.0.0.3", "10.0.0.4"]), "UP brings it back")
    st, body = api(sky1, "DELETE", "web", {"ips": ["10.0.0.9"]})
    c.eq(st, 404, "delete of an address it does not have: 404")
    st, body = api(sky2, "DELETE", "web", {"ips": ["10.0.0.3"]})
    c.eq((st, sky2.answer("web." + D, "A")), (200, (NOERROR, ["10.0.0.4"])), "delete one")
    st, body = api(sky1, "DELETE", "web")
    c.eq((st, sky1.answer("web." + D, "A")[0]), (200, NXDOMAIN),
         "delete all: no key is left under web (%r)" % (body,))
    st, body = api(sky1, "POST", "srv", {"type": "SRV", "ips": ["10.0.0.1"], "ports": [80]})
    c.eq(st, 501, "SRV is not written in distributed mode yet: 501")

    # ---- 200 writes over both nodes, half racing on the same names ----
    results = []
    lock = threading.Lock()

    def worker(node, jobs):
        for name, body in jobs:
            st, out = api(node, "POST", name, body)
            with lock:
                results.append((node.port, name, body["ips"][0], st, out))

    want = {}
    jobs = {0: [], 1: [], 2: [], 3: []}
    for i in range(100):  # distinct names, alternating nodes
        ip = "10.10.%d.%d" % (i // 200, i % 200 + 1)
        jobs[i % 2].append(("n%d" % i, {"type": "A", "ips": [ip]}))
        want["n%d" % i] = [ip]
    for j in range(5):  # ten names, both nodes adding their own addresses at once
        for i in range(10):
            for side in (0, 1):
                ip = "10.%d.%d.%d" % (20 + side, i, j + 1)
                jobs[2 + side].append(("race%d" % i, {"type": "A", "ips": [ip]}))
                want.setdefault("race%d" % i, []).append(ip)
    threads = [threading.Thread(target=worker, args=(sky1 if k % 2 == 0 else sky2, jobs[k]))
               for k in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    c.eq(len(results), 200, "200 writes made")
    bad = [(p, n, ip, st, out) for p, n, ip, st, out in results if st != 201]
    c.eq(bad[:5], [], "every one of the 200 writes got 201")
    want = {n: sorted(a) for n, a in want.items()}
    ev = etcd_view(m2)
    c.eq({n: ev.get(n) for n in want}, want, "etcd holds every write (none lost)")
    for node in (sky1, sky2):
        got = etcdlib.wait_for(lambda: dns_view(node, want) == want, 15)
        c.ok(got is not None, "node on port %d answers every name as etcd holds it" % node.port)
        if got is None:
            view = dns_view(node, want)
            c.eq({n: view[n] for n in want if view[n] != want[n]}, {}, "names that differ")

    # Both nodes add the same address / update the same old address: one wins, the
    # other gets an honest refusal, and the loser's reply does not lie.
    out = {}

    def one(node, key, method, name, body):
        out[key] = api(node, method, name, body)[0]

    for k in range(5):
        ts = [threading.Thread(target=one, args=(n, (k, i), "POST", "same%d" % k,
                                                 {"type": "A", "ips": ["10.30.0.%d" % k]}))
              for i, n in enumerate((sky1, sky2))]
        [t.start() for t in ts]
        [t.join() for t in ts]
    c.eq(sorted(out.values()), [201] * 5 + [409] * 5,
         "same address from both nodes at once: one 201 and one 409 each time")
    out.clear()
    for k in range(5):
        ts = [threading.Thread(target=one, args=(n, (k, i), "PUT", "same%d" % k,
                                                 {"type": "A", "update": {
                                                     "10.30.0.%d" % k: "10.31.%d.%d" % (i, k)}}))
              for i, n in enumerate((sky1, sky2))]
        [t.start() for t in ts]
        [t.join() for t in ts]
    c.eq(sorted(out.values()), [200] * 5 + [404] * 5,
         "the same update from both nodes at once: one wins, the other finds the old "
         "address gone (404)")
    c.ok("computing the request again" in sky1.log() + sky2.log(),
         "a lost compare was seen and the request computed again (logged)")
    for k in range(5):
        won = [i for i in (0, 1) if out[(k, i)] == 200]
        exp = (NOERROR, ["10.31.%d.%d" % (won[0], k)] if won else [])
        c.ok(etcdlib.wait_for(lambda: sky1.answer("same%d.%s" % (k, D)) == exp and
                              sky2.answer("same%d.%s" % (k, D)) == exp, 10) is not None,
             "same%d: both nodes answer the winner's address %r" % (k, exp))

    # A set replaced on one node while the other adds to it: the replace's subtree
    # compare fails whenever the add landed after its copy was read, and it must then
    # be computed again (not lost, not applied over the add unseen); both succeed.
    out.clear()
    for k in range(5):
        name = "rep%d" % k
        c.eq(api(sky1, "POST", name, {"type": "A", "ips": ["10.32.%d.1" % k]})[0], 201,
             "%s created" % name)
        ts = [threading.Thread(target=one, args=(sky1, (k, 0), "PUT", name,
                                                 {"type": "A", "ips": ["10.32.%d.9" % k]})),
              threading.Thread(target=one, args=(sky2, (k, 1), "POST", name,
                                                 {"type": "A", "ips": ["10.32.%d.5" % k]}))]
        [t.start() for t in ts]
        [t.join() for t in ts]
    c.eq(sorted(out.values()), [200] * 5 + [201] * 5, "replace and add at once: both succeed")
    for k in range(5):
        name = "rep%d" % k
        ev = etcd_view(m1).get(name)
        c.ok(ev in (["10.32.%d.9" % k], ["10.32.%d.5" % k, "10.32.%d.9" % k]),
             "%s in etcd is a serial outcome (replace then add, or add then replace): %r"
             % (name, ev))
        c.ok(etcdlib.wait_for(lambda: sky1.answer(name + "." + D)[1] == ev and
                              sky2.answer(name + "." + D)[1] == ev, 10) is not None,
             "%s: both nodes answer what etcd holds" % name)

    # ---- one etcd member down: writes and answers go on ----
    m0.kill()  # sky1's first member
    st, body = api(sky1, "POST", "after-kill", {"type": "A", "ips": ["10.40.0.1"]})
    c.eq(st, 201, "a write through the node whose member died: 201 (%r)" % (body,))
    c.eq(sky1.answer("after-kill." + D, "A"), (NOERROR, ["10.40.0.1"]),
         "answered by that node at once")
    c.ok(etcdlib.wait_for(lambda: sky2.answer("after-kill." + D, "A") ==
                          (NOERROR, ["10.40.0.1"]), 15) is not None, "and by the other node")
    c.eq(sky2.answer("n7." + D, "A"), (NOERROR, [want["n7"][0]]), "old answers stay")

    # ---- a node restarted catches up ----
    sky2.stop()
    for i in range(10):
        st, _ = api(sky1, "POST", "while-down%d" % i, {"type": "A", "ips": ["10.50.0.%d" % i]})
        c.eq(st, 201, "write while the other node is down (%d)" % i)
    st, _ = api(sky1, "DELETE", "n3")
    c.eq(st, 200, "delete while the other node is down")
    sky2.start()
    for i in range(10):
        c.ok(etcdlib.wait_for(lambda: sky2.answer("while-down%d.%s" % (i, D)) ==
                              (NOERROR, ["10.50.0.%d" % i]), 15) is not None,
             "restarted node caught up on while-down%d" % i)
    c.eq(sky2.answer("n3." + D, "A")[0], NXDOMAIN, "restarted node saw the delete")
    c.ok("resumed from revision" in sky2.log(True), "restarted node resumed, no re-read")
    st, body = api(sky2, "POST", "after-restart", {"type": "A", "ips": ["10.60.0.1"]})
    c.eq((st, sky2.answer("after-restart." + D, "A")), (201, (NOERROR, ["10.60.0.1"])),
         "the restarted node writes again")
except Exception as e:  # a harness failure is a test failure, with the logs
    c.ok(False, "exception: %r" % e)
finally:
    sky1.stop()
    sky2.stop()
    cl.stop()
    if not c.failed:
        import shutil
        shutil.rmtree(root, ignore_errors=True)
    else:
        for node in (sky1, sky2):
            print("---- log of node %d ----\n%s" % (node.port, node.log()[-6000:]))
c.finish()
