"""
Issue 11: skydns fed by a real etcd through skydns-watch-etcd, which skydns
starts and supervises. One etcd member on loopback in a temp dir.

  - /ready is 503 until the first full read is committed (etcd down at start)
  - the original README's cctv2 / tv1 scenario, subtree answers at several
    depths, the SRV weight rule, a bad value next to good siblings
  - AAAA, TXT, MX (mail: true only), PTR, groups, targetstrip, a CNAME chain,
    NS from ns.dns.<zone> with glue, SRV targets' addresses in additional, dedup,
    "*" and "any" as the first label
    and a CNAME loop
  - failover: the first of etcd-servers is dead, the second one serves
  - etcdctl put -> answer within 1 s; delete -> NXDOMAIN; monitor DOWN / UP
  - the watcher SIGKILLed -> restarted, resumes from the stored revision (no re-read)
  - etcd stopped -> answers stay, also across a skydns restart; etcd back ->
    updates flow again without a restart
  - compaction past the watcher's revision -> full re-read; every name equals etcd
  - etcd rebuilt empty (revision behind the store's) -> full re-read
  - another cluster (other cluster id) ahead of the stored revision -> full re-read
"""
import json
import os
import re
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import etcdlib  # noqa: E402
import skytest  # noqa: E402
from dns.rcode import NOERROR, NXDOMAIN  # noqa: E402

D = "skydns.local."
c = skytest.Checks()
root = etcdlib.tempdir()
etcd = etcdlib.Etcd(root)
# The first member listed is dead: the watcher must fail over to the second.
dead = "http://127.0.0.1:%d" % etcdlib.low_port({etcd.cport, etcd.pport})
sky = etcdlib.Skydns(root, dead + "," + etcd.url, domain=D + "%in-addr.arpa.")


def put(key, val):
    etcd.put(key, json.dumps(val) if isinstance(val, dict) else val)


def a(name):
    return sky.answer(name + "." + D, "A")


def answers_within(name, want, deadline, qtype="A"):
    return etcdlib.wait_for(lambda: sky.answer(name + "." + D, qtype) == want, deadline)


def scenario_not_ready_until_synced():
    # etcd is not running yet: the watcher cannot read, /ready must say so.
    sky.start()
    c.ok(etcdlib.wait_for(lambda: sky.ready() == 503, 5) is not None,
         "/ready is 503 before the first etcd sync (got %r)" % sky.ready())
    c.eq(a("cctv2")[0], NXDOMAIN, "no etcd names before the first sync")
    etcd.start()
    put("/skydns/local/skydns/cctv2/4af19cb2/", {"host": "192.168.10.1", "ttl": 30})
    put("/skydns/local/skydns/cctv2/5bc91ad3/", {"host": "192.168.10.2", "ttl": 30})
    put("/skydns/local/skydns/tv1/", {"host": "cctv2.skydns.local", "type": "CNAME"})
    put("/skydns/local/skydns/deep/x/y/z", {"host": "10.1.0.1"})
    put("/skydns/local/skydns/deep/x/w", {"host": "10.1.0.2"})
    put("/skydns/local/skydns/mixed/good", {"host": "10.2.0.1"})
    put("/skydns/local/skydns/mixed/bad", '{"host": "10.2.0.')
    put("/skydns/local/skydns/mixed/badip", {"host": "300.2.0.1"})
    put("/skydns/local/skydns/svc/a", {"host": "10.3.0.1", "port": 80})
    put("/skydns/local/skydns/svc/b", {"host": "10.3.0.2", "port": 80, "weight": 300})
    put("/skydns/local/skydns/svc/c", {"host": "web.example.", "port": 81, "priority": 20})
    put("/skydns/local/skydns/v6/a", {"host": "2001:db8::1"})
    put("/skydns/local/skydns/txt/", {"text": "hello etcd"})
    put("/skydns/local/skydns/mx/m1", {"host": "mail1.example.", "mail": True, "priority": 5})
    put("/skydns/local/skydns/mx/m2", {"host": "10.8.0.2"})
    put("/skydns/arpa/in-addr/10/0/8/10", {"host": "ptr-target.skydns.local"})
    put("/skydns/local/skydns/grp/a", {"host": "10.9.0.1", "group": "g1"})
    put("/skydns/local/skydns/grp/x/b", {"host": "10.9.0.2", "group": "g2"})
    put("/skydns/local/skydns/grp/x/c", {"host": "10.9.0.3"})
    put("/skydns/local/skydns/strip/x/y", {"host": "10.10.0.1", "targetstrip": 1})
    put("/skydns/local/skydns/chain1/", {"host": "chain2.skydns.local"})
    put("/skydns/local/skydns/chain2/", {"host": "cctv2.skydns.local"})
    put("/skydns/local/skydns/loop1/", {"host": "loop2.skydns.local"})
    put("/skydns/local/skydns/loop2/", {"host": "loop1.skydns.local"})
    put("/skydns/local/skydns/dns/ns/ns1", {"host": "10.11.0.1", "ttl": 600})
    put("/skydns/local/skydns/dns/ns/ns2", {"host": "10.11.0.2", "ttl": 120})
    put("/skydns/local/skydns/dup/x", {"host": "10.12.0.1", "ttl": 100})
    put("/skydns/local/skydns/dup/y", {"host": "10.12.0.1", "ttl": 50})
    put("/skydns/local/skydns/dup/z", {"host": "10.12.0.2", "ttl": 70})
    # The watcher backs off while etcd was down (at most 5 s between tries).
    c.ok(etcdlib.wait_for(lambda: sky.ready() == 200, 15) is not None,
         "/ready is 200 once etcd was read (got %r)" % sky.ready())


def scenario_answers():
    both = (NOERROR, ["192.168.10.1", "192.168.10.2"])
    c.ok(answers_within("cctv2", both, 5) is not None, "cctv2 answers with both leaves: %r"
         % (a("cctv2"),))
    c.eq(a("4af19cb2.cctv2"), (NOERROR, ["192.168.10.1"]), "a leaf answers alone")
    r = sky.query("tv1." + D, "A")
    c.eq([rr.rdtype for rr in r.answer][:1], [5], "tv1 answers with its CNAME first")
    c.eq(sorted(rd.to_text() for rr in r.answer if rr.rdtype == 1 for rd in rr),
         ["192.168.10.1", "192.168.10.2"], "tv1 -> cctv2's addresses")
    ttls = {rr.ttl for rr in sky.query("cctv2." + D, "A").answer}
    c.eq(ttls, {30}, "one TTL for the RRset")
    c.eq(a("deep"), (NOERROR, ["10.1.0.1", "10.1.0.2"]), "subtree at depth 1")
    c.eq(a("x.deep"), (NOERROR, ["10.1.0.1", "10.1.0.2"]), "subtree at depth 2")
    c.eq(a("y.x.deep"), (NOERROR, ["10.1.0.1"]), "subtree at depth 3")
    # "*" and "any" as the first label match every name below their parent (CoreDNS).
    r = sky.query("*.deep." + D, "A")
    c.eq((r.rcode(), sorted(rd.to_text() for rr in r.answer for rd in rr),
          [rr.name.to_text() for rr in r.answer]),
         (NOERROR, ["10.1.0.1", "10.1.0.2"], ["*.deep." + D]),
         "*.deep answers every name below deep, under the question's name")
    c.eq(a("any.x.deep"), (NOERROR, ["10.1.0.1", "10.1.0.2"]), "any.x.deep as well")
    c.eq(a("ANY.cctv2"), (NOERROR, ["192.168.10.1", "192.168.10.2"]), "ANY (any case)")
    c.eq(a("*.4af19cb2.cctv2")[0], NXDOMAIN, "a leaf has nothing below it: NXDOMAIN")
    c.eq(sky.answer("*.deep." + D, "TXT")[0], NOERROR, "names match, none has TXT: NODATA")
    c.eq(a("mixed"), (NOERROR, ["10.2.0.1"]), "bad siblings skipped, the good one answers")
    c.eq(a("bad.mixed")[0], NXDOMAIN, "a bad value makes no name")
    log = sky.log()
    c.ok("skipping key /skydns/local/skydns/mixed/bad" in log, "bad JSON logged with its key")
    c.ok("skipping key /skydns/local/skydns/mixed/badip" in log, "bad IP logged with its key")
    # SRV: priority 10 holds a (w 0 = 100) and b (300) -> 25 / 75; c alone at 20 -> 100.
    rc, srv = sky.answer("svc." + D, "SRV")
    c.eq(srv, ["10 25 80 a.svc.skydns.local.", "10 75 80 b.svc.skydns.local.",
               "20 100 81 web.example."], "SRV targets and the weight rule")
    r = sky.query("svc." + D, "SRV")
    c.eq(sorted((rr.name.to_text(), rd.to_text()) for rr in r.additional if rr.rdtype == 1
                for rd in rr),
         [("a.svc." + D, "10.3.0.1"), ("b.svc." + D, "10.3.0.2")],
         "SRV with IP hosts: each target's address in the additional section")
    # NS from ns.dns.<zone> (CoreDNS): the leaves' own names, their addresses as glue.
    r = sky.query(D, "NS")
    c.eq(sorted(rd.to_text() for rr in r.answer for rd in rr),
         ["ns1.ns.dns." + D, "ns2.ns.dns." + D], "apex NS from ns.dns.<zone> keys")
    c.eq({rr.ttl for rr in r.answer}, {120}, "one TTL for the NS RRset (the smallest)")
    c.eq(sorted((rr.name.to_text(), rd.to_text()) for rr in r.additional if rr.rdtype == 1
                for rd in rr),
         [("ns1.ns.dns." + D, "10.11.0.1"), ("ns2.ns.dns." + D, "10.11.0.2")],
         "NS glue in the additional section")
    r = sky.query("dup." + D, "A")
    c.eq((sorted(rd.to_text() for rr in r.answer for rd in rr), {rr.ttl for rr in r.answer}),
         (["10.12.0.1", "10.12.0.2"], {50}),
         "two keys with one address answer it once, one TTL (the smallest)")
    c.eq(sky.answer("v6." + D, "AAAA"), (NOERROR, ["2001:db8::1"]), "AAAA")
    c.eq(sky.answer("txt." + D, "TXT"), (NOERROR, ['"hello etcd"']), "TXT")
    c.eq(sky.answer("mx." + D, "MX"), (NOERROR, ["5 mail1.example."]), "MX only from mail: true")
    c.eq(sky.answer("10.8.0.10.in-addr.arpa.", "PTR"), (NOERROR, ["ptr-target.skydns.local."]),
         "PTR under in-addr.arpa")
    c.eq(a("grp"), (NOERROR, ["10.9.0.1", "10.9.0.3"]),
         "groups: the shortest key's group wins, ungrouped always answer")
    c.eq(sky.answer("strip." + D, "SRV"), (NOERROR, ["10 100 0 x.strip.skydns.local."]),
         "targetstrip 1 drops the leaf's first label from the SRV target")
    r = sky.query("chain1." + D, "A")
    c.eq([rr.rdtype for rr in r.answer], [5, 5, 1], "a CNAME chain is chased: %s" % r.answer)
    r = sky.query("loop1." + D, "A")
    c.ok(len(r.answer) >= 1 and r.answer[0].rdtype == 5,
         "a CNAME loop answers (no hang, no crash): %s %s" % (r.rcode(), r.answer))
    c.ok("trying the next endpoint" in sky.log(), "the dead first endpoint was failed over")


def scenario_changes():
    etcd.put("/skydns/local/skydns/new/n1", json.dumps({"host": "10.4.0.1"}))
    t = answers_within("new", (NOERROR, ["10.4.0.1"]), 5, "A")
    c.ok(t is not None and t < 1.0, "a put answers within 1 s (took %r s)" % t)
    etcd.delete("/skydns/local/skydns/new/n1")
    t = etcdlib.wait_for(lambda: a("new")[0] == NXDOMAIN, 5)
    c.ok(t is not None and t < 1.0, "a delete gives NXDOMAIN within 1 s (took %r s)" % t)
    etcd.delete("/skydns/local/skydns/dns/ns/ns2")
    c.ok(etcdlib.wait_for(lambda: sky.answer(D, "NS") == (NOERROR, ["ns1.ns.dns." + D]), 5)
         is not None, "an ns.dns key deleted leaves the apex NS RRset")
    etcd.delete("/skydns/local/skydns/dns/ns/ns1")
    c.ok(etcdlib.wait_for(lambda: sky.answer(D, "NS") == (NOERROR, ["ns1." + D]), 5)
         is not None, "no ns.dns keys: the synthesized apex NS again")
    # Health from the monitor keys: one of two addresses DOWN leaves the other.
    put("/skydns/monitor/status/192.168.10.2", {"status": "DOWN"})
    c.ok(answers_within("cctv2", (NOERROR, ["192.168.10.1"]), 5) is not None,
         "monitor DOWN takes the address out: %r" % (a("cctv2"),))
    put("/skydns/monitor/status/192.168.10.2", {"status": "UP"})
    c.ok(answers_within("cctv2", (NOERROR, ["192.168.10.1", "192.168.10.2"]), 5) is not None,
         "monitor UP brings it back")


def scenario_metrics():
    m = sky.metrics()
    c.eq(m.get("skydns_etcd_invalid_records_total"), 2.0, "bad values counted once each")
    # 29 keys at the start, a put and three deletes, two monitor changes.
    c.eq(m.get("skydns_etcd_events_applied_total"), 35.0, "every applied key counted once")
    c.eq(m.get("skydns_etcd_revision_applied"), float(etcd.revision()),
         "applied revision = etcd's")
    c.ok(m.get("skydns_etcd_revision_seen", 0) >= m.get("skydns_etcd_revision_applied", 1),
         "seen revision >= applied")
    c.ok(m.get("skydns_etcd_rereads_total") == 1.0, "one full read so far")
    c.ok(m.get("skydns_etcd_errors_total", 0) >= 1, "the dead endpoint counted as an error")
    c.ok(m.get('skydns_etcd_event_commit_seconds_count', 0) >= 4,
         "event -> commit latency observed per batch")


def scenario_watcher_killed():
    pid = sky.watcher_pid()
    c.ok(pid > 0, "skydns started the watcher")
    mark = len(sky.log())
    os.kill(pid, signal.SIGKILL)
    put("/skydns/local/skydns/during/kill", {"host": "10.5.0.1"})
    c.ok(answers_within("during", (NOERROR, ["10.5.0.1"]), 10) is not None,
         "a put made while the watcher was dead arrives after its restart")
    after = sky.log()[mark:]
    c.ok(sky.watcher_pid() not in (0, pid), "the watcher was restarted")
    c.ok("killed by signal 9" in after, "the watcher's death is logged")
    c.ok(re.search(r"resumed from revision \d+", after) is not None,
         "the new watcher resumed from the stored revision")
    c.ok("full read" not in after, "no re-read after a watcher restart")


def scenario_etcd_down():
    etcd.stop()
    c.eq(a("cctv2"), (NOERROR, ["192.168.10.1", "192.168.10.2"]), "etcd down: answers stay")
    sky.stop()
    sky.start()
    c.eq(a("cctv2"), (NOERROR, ["192.168.10.1", "192.168.10.2"]),
         "etcd down, skydns restarted: answers stay")
    c.eq(sky.ready(), 200, "etcd down, skydns restarted: ready (resumes the stored revision)")
    etcd.start()
    put("/skydns/local/skydns/back/b1", {"host": "10.6.0.1"})
    c.ok(answers_within("back", (NOERROR, ["10.6.0.1"]), 15) is not None,
         "etcd back: updates flow again without a restart")


def scenario_compaction():
    sky.stop()
    put("/skydns/local/skydns/late/l1", {"host": "10.7.0.1"})
    etcd.delete("/skydns/local/skydns/deep/x/w")
    put("/skydns/local/skydns/cctv2/5bc91ad3/", {"host": "192.168.10.3", "ttl": 30})
    etcd.compact()
    sky.start()
    c.ok(answers_within("late", (NOERROR, ["10.7.0.1"]), 10) is not None,
         "after compaction the watcher re-read etcd")
    log = sky.log(since_start=True)
    c.ok("compacted" in log and "full read" in log, "the log says compacted -> full read")
    # The store equals etcd: every key's name answers its address, deleted ones are gone.
    for key, val in etcd.items().items():
        if key.startswith("/skydns/monitor/"):
            continue
        labels = [p for p in key.split("/")[2:] if p]
        name = ".".join(reversed(labels)) + "."
        try:
            host = json.loads(val).get("host", "")
        except ValueError:
            continue
        if re.match(r"^\d+\.\d+\.\d+\.\d+$", host) and not host.startswith("300"):
            c.eq(sky.answer(name, "A"), (NOERROR, [host]), "after re-read: " + name)
    c.eq(a("w.x.deep")[0], NXDOMAIN, "a key deleted before the compaction is gone")
    c.eq(a("cctv2"), (NOERROR, ["192.168.10.1", "192.168.10.3"]), "a changed key is current")
    c.eq(sky.metrics().get("skydns_etcd_rereads_total"), 2.0, "the re-read is counted")


def scenario_new_cluster():
    # etcd rebuilt from scratch (a new cluster at a low revision): the stored revision
    # means nothing there, so the watcher re-reads and the old names go.
    etcd.stop()
    shutil.rmtree(os.path.join(etcd.dir, "data"))
    etcd.start()
    put("/skydns/local/skydns/fresh/f1", {"host": "10.11.0.1"})
    c.ok(answers_within("fresh", (NOERROR, ["10.11.0.1"]), 15) is not None,
         "a rebuilt etcd's data arrives")
    c.eq(a("cctv2")[0], NXDOMAIN, "the old cluster's names are gone after the re-read")
    c.ok("behind the stored" in sky.log(), "the log says why it re-read")


def scenario_other_cluster():
    # Another cluster (its own --initial-cluster-token) already past the stored revision:
    # resuming there would skip its history; the cluster id says to re-read instead.
    sky.stop()
    etcd.stop()
    shutil.rmtree(os.path.join(etcd.dir, "data"))
    etcd.extra_args += ["--initial-cluster-token", "another-cluster"]
    etcd.start()
    put("/skydns/local/skydns/other/o1", {"host": "10.12.0.1"})
    for i in range(120):  # well past the stored revision (about 50)
        etcd.put_fast("/skydns/local/skydns/other/bump", json.dumps({"host": "10.12.0.2"}))
    c.ok(etcd.revision() > 100, "the other cluster is ahead of the store's revision")
    sky.start()
    c.ok(answers_within("o1.other", (NOERROR, ["10.12.0.1"]), 15) is not None,
         "the other cluster's early key is there (re-read, not resumed)")
    c.eq(a("fresh")[0], NXDOMAIN, "the previous cluster's names are gone")
    c.ok("belongs to cluster" in sky.log(since_start=True), "the log names the cluster change")


try:
    scenario_not_ready_until_synced()
    scenario_answers()
    scenario_changes()
    scenario_metrics()
    scenario_watcher_killed()
    scenario_etcd_down()
    scenario_compaction()
    scenario_new_cluster()
    scenario_other_cluster()
except Exception as e:  # a harness failure is a test failure, with the logs
    c.ok(False, "exception: %r" % e)
finally:
    sky.stop()
    etcd.stop()
    if c.failed:
        print("---- skydns log ----\n" + sky.log()[-6000:])
    shutil.rmtree(root, ignore_errors=True)
c.finish()
