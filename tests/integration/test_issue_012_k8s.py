"""
Issue 12: skydns as cluster DNS, fed by skydns-watch-k8s (started and supervised
by skydns) from kubeapi.py, a test API server that speaks list/watch as
kube-apiserver does. Every answer is asked with dig over UDP and over TCP.

  - a fresh store, API server down: names in cluster.local. are SERVFAIL (not
    NXDOMAIN), /ready 503; other zones answer as before
  - the records of the DNS spec 1.1.0: ClusterIP A/AAAA (dual-stack), SRV for
    named ports only, headless A/AAAA per ready endpoint, <hostname>.<svc> and
    the dashed address, SRV per endpoint x port, publishNotReadyAddresses,
    "endpoints": null, ports with a null name or port, no ready endpoint ->
    NXDOMAIN, ExternalName -> CNAME, dns-version TXT, svc./<ns>.svc. NODATA,
    PTR records in the store; AA set; TTL from [Kubernetes] ttl
  - watch: a new endpoint appears, a deleted slice's records go, a deleted
    Service goes; the API refuses a k8s-owned name with 409
  - 410: objects deleted while the watcher was cut off and the history
    compacted are gone after the re-list (and the re-list is counted)
  - a second skydns with pods = insecure and svc-ip-source = externalIP: pod A
    records a-b-c-d.<ns>.pod.<zone>, a Service answering with its externalIPs
  - API server gone: answers stay; skydns restarted while it is gone answers at
    once and, when it is back, resumes the watches (no list, log + metric)
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import k8slib  # noqa: E402
import kubeapi  # noqa: E402
import skytest  # noqa: E402

Z = k8slib.ZONE
c = skytest.Checks()
api = kubeapi.KubeAPI(port=skytest.free_port(), bookmark_interval=1.0)
# The reverse zones listed, so the PTR records the watcher writes are answered.
sky = k8slib.Skydns("http://127.0.0.1:%d" % api.port, ttl=7,
                    domains="skydns.local.%in-addr.arpa.%ip6.arpa.")


def both(name, qtype, want_rc, want=None, what=""):
    """Assert the same answer over UDP and TCP."""
    for tcp in (False, True):
        rc, ans, aa = sky.dig(name, qtype, tcp)
        how = "%s %s over %s%s" % (name, qtype, "TCP" if tcp else "UDP",
                                   " (" + what + ")" if what else "")
        c.eq(rc, want_rc, how + ": rcode")
        if want is not None:
            c.eq(ans, sorted(want), how + ": answer")
        if want_rc in ("NOERROR", "NXDOMAIN"):
            c.ok(aa, how + ": AA set")


def fixture():
    api.add(kubeapi.service("default", "web", cluster_ip=["10.96.0.10", "fd00::10"],
                            ports=(("http", "TCP", 80), ("dns", "UDP", 53),
                                   (None, "TCP", 8080))))
    api.add(kubeapi.endpointslice("default", "web", "web-abc", endpoints=[
        kubeapi.endpoint("10.244.0.1")]))
    api.add(kubeapi.service("default", "db", cluster_ip="None",
                            ports=(("pg", "TCP", 5432),)))
    api.add(kubeapi.endpointslice("default", "db", "db-1", endpoints=[
        kubeapi.endpoint("10.244.1.1", hostname="db-0"),
        kubeapi.endpoint("10.244.1.2", ready=True, serving=True, terminating=False),
        kubeapi.endpoint("10.244.1.3", ready=False),
        kubeapi.endpoint("10.244.1.4", ready=False, serving=True, terminating=True)],
        ports=(("pg", "TCP", 5432), (None, "TCP", 9000), ("metrics", "TCP", None))))
    api.add(kubeapi.endpointslice("default", "db", "db-2", endpoints=[
        kubeapi.endpoint("10.244.2.1")], ports=(("pg", "TCP", 5432),)))
    api.add(kubeapi.endpointslice("default", "db", "db-v6", address_type="IPv6",
                                  endpoints=[kubeapi.endpoint("fd00::1:5")],
                                  ports=(("pg", "TCP", 5432),)))
    api.add(kubeapi.endpointslice("default", "db", "db-null", endpoints=None, ports=None))
    api.add(kubeapi.service("default", "idle", cluster_ip="None"))
    api.add(kubeapi.endpointslice("default", "idle", "idle-1", endpoints=[
        kubeapi.endpoint("10.244.3.1", ready=False)]))
    api.add(kubeapi.service("default", "pna", cluster_ip="None", publish_not_ready=True))
    api.add(kubeapi.endpointslice("default", "pna", "pna-1", endpoints=[
        kubeapi.endpoint("10.244.4.1", ready=False)]))
    api.add(kubeapi.service("other", "ext", type_="ExternalName",
                            external_name="www.example.com", ports=()))


def scenario_unsynced():
    sky.start()
    both("web.default.svc." + Z, "A", "SERVFAIL", what="never synced")
    both("nothing.default.svc." + Z, "A", "SERVFAIL", what="never synced")
    c.eq(sky.http("/ready")[0], 503, "/ready 503 before the first list")
    c.eq(sky.answer("skydns.local.", "SOA")[0], "NOERROR", "the default zone still answers")


def scenario_records():
    fixture()
    api.start()
    t = k8slib.wait_for(lambda: sky.answer("web.default.svc." + Z)[0] == "NOERROR", 15)
    c.ok(t is not None, "first list committed (web answers) within 15 s")
    c.eq(sky.http("/ready")[0], 200, "/ready 200 after the first list")
    svc = "svc." + Z
    both("web.default." + svc, "A", "NOERROR", ["10.96.0.10"])
    both("web.default." + svc, "AAAA", "NOERROR", ["fd00::10"], "dual-stack")
    both("_http._tcp.web.default." + svc, "SRV", "NOERROR",
         ["0 100 80 web.default.svc.cluster.local."])
    both("_dns._udp.web.default." + svc, "SRV", "NOERROR",
         ["0 100 53 web.default.svc.cluster.local."])
    both("_http._udp.web.default." + svc, "SRV", "NXDOMAIN", [], "wrong protocol")
    both("db.default." + svc, "A", "NOERROR",
         ["10.244.1.1", "10.244.1.2", "10.244.2.1"], "ready endpoints of two slices")
    both("db.default." + svc, "AAAA", "NOERROR", ["fd00::1:5"])
    both("db-0.db.default." + svc, "A", "NOERROR", ["10.244.1.1"], "hostname")
    both("10-244-1-2.db.default." + svc, "A", "NOERROR", ["10.244.1.2"], "dashed")
    both("10-244-1-3.db.default." + svc, "A", "NXDOMAIN", [], "not ready")
    both("10-244-1-4.db.default." + svc, "A", "NXDOMAIN", [], "terminating")
    both("_pg._tcp.db.default." + svc, "SRV", "NOERROR",
         ["0 25 5432 10-244-1-2.db.default.svc.cluster.local.",
          "0 25 5432 10-244-2-1.db.default.svc.cluster.local.",
          "0 25 5432 db-0.db.default.svc.cluster.local.",
          "0 25 5432 fd00--1-5.db.default.svc.cluster.local."])
    both("_metrics._tcp.db.default." + svc, "SRV", "NXDOMAIN", [], "port null")
    both("idle.default." + svc, "A", "NXDOMAIN", [], "no ready endpoint")
    both("pna.default." + svc, "A", "NOERROR", ["10.244.4.1"], "publishNotReadyAddresses")
    both("ext.other." + svc, "CNAME", "NOERROR", ["www.example.com."])
    both("dns-version." + Z, "TXT", "NOERROR", ['"1.1.0"'])
    both(svc, "A", "NOERROR", [], "svc. exists")
    both("default." + svc, "A", "NOERROR", [], "<ns>.svc. exists")
    both("nothing.default." + svc, "A", "NXDOMAIN", [])
    r = sky.dig("web.default." + svc, "A")
    out = os.popen("dig @127.0.0.1 -p %d web.default.%s A +noall +answer" %
                   (sky.port, svc)).read().split()
    c.eq(out[1] if len(out) > 1 else None, "7", "TTL is [Kubernetes] ttl")
    del r
    both("10.0.96.10.in-addr.arpa.", "PTR", "NOERROR", ["web.default.svc.cluster.local."])
    both("0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", "PTR",
         "NOERROR", ["web.default.svc.cluster.local."], "IPv6 ClusterIP")
    both("1.1.244.10.in-addr.arpa.", "PTR", "NOERROR", ["db-0.db.default.svc.cluster.local."])
    both("2.1.244.10.in-addr.arpa.", "PTR", "NOERROR",
         ["10-244-1-2.db.default.svc.cluster.local."], "dashed endpoint")
    both("3.1.244.10.in-addr.arpa.", "PTR", "NXDOMAIN", [], "not-ready endpoint")


def scenario_modes():
    global sky
    api.add(kubeapi.service("default", "lb", cluster_ip="10.96.0.50",
                            external_ips=["192.0.2.7"], ports=(("http", "TCP", 80),)))
    first, sky = sky, k8slib.Skydns("http://127.0.0.1:%d" % api.port,
                                    extra_k8s="pods = insecure\nsvc-ip-source = externalIP\n")
    try:
        sky.start()
        t = k8slib.wait_for(lambda: sky.answer("lb.default.svc." + Z)[0] == "NOERROR", 15)
        c.ok(t is not None, "second skydns synced")
        both("lb.default.svc." + Z, "A", "NOERROR", ["192.0.2.7"], "externalIP")
        both("web.default.svc." + Z, "A", "NXDOMAIN", [], "externalIP: no external address")
        both("10-244-0-5.default.pod." + Z, "A", "NOERROR", ["10.244.0.5"], "pods insecure")
        both("10-244-0-5.default.pod." + Z, "AAAA", "NOERROR", [], "pod name exists: NODATA")
        both("10-244-0-256.default.pod." + Z, "A", "NXDOMAIN", [], "not an address")
        # IPv6 pods: the address's colons spelled as dashes (spec 1.1.0).
        both("fd00-10-244--5.default.pod." + Z, "AAAA", "NOERROR", ["fd00:10:244::5"],
             "pods insecure, IPv6")
        both("2001-db8-0-0-0-0-0-1.default.pod." + Z, "AAAA", "NOERROR", ["2001:db8::1"],
             "IPv6 without ::")
        both("fd00-10-244--5.default.pod." + Z, "A", "NOERROR", [], "IPv6 pod: A is NODATA")
        both("fd00-10-244---5.default.pod." + Z, "AAAA", "NXDOMAIN", [], "':::' is no address")
        both("fd00-g--5.default.pod." + Z, "AAAA", "NXDOMAIN", [], "not hex")
        both("1-2-3.default.pod." + Z, "A", "NXDOMAIN", [], "three parts: no address")
        rc, _, _ = first.dig("10-244-0-5.default.pod." + Z, "A")
        c.eq(rc, "NXDOMAIN", "pods disabled (the default): no pod record")
        c.ok(sky.stop(), "second skydns exits 0")
    finally:
        if sky.proc:
            sky.stop()
        sky.cleanup()
        sky = first
    api.delete("services", "default", "lb")


def scenario_watch():
    svc = "svc." + Z
    s = api.get("endpointslices", "default", "web-abc")
    s["endpoints"] = None
    api.update(s, "endpointslices")
    api.add(kubeapi.endpointslice("default", "db", "db-3", endpoints=[
        kubeapi.endpoint("10.244.5.1", hostname="db-5")], ports=(("pg", "TCP", 5432),)))
    t = k8slib.wait_for(lambda: sky.answer("db-5.db.default." + svc)[1] == ["10.244.5.1"], 5)
    c.ok(t is not None, "a new slice's endpoint answers within 5 s (%s)" % t)
    both("db.default." + svc, "A", "NOERROR",
         ["10.244.1.1", "10.244.1.2", "10.244.2.1", "10.244.5.1"])
    api.delete("endpointslices", "default", "db-1")
    t = k8slib.wait_for(lambda: sky.answer("db-0.db.default." + svc)[0] == "NXDOMAIN", 5)
    c.ok(t is not None, "a deleted slice's hostname goes")
    both("db.default." + svc, "A", "NOERROR", ["10.244.2.1", "10.244.5.1"],
         "after the slice delete")
    both("_pg._tcp.db.default." + svc, "SRV", "NOERROR",
         ["0 33 5432 10-244-2-1.db.default.svc.cluster.local.",
          "0 33 5432 db-5.db.default.svc.cluster.local.",
          "0 33 5432 fd00--1-5.db.default.svc.cluster.local."])
    api.delete("services", "default", "pna")
    t = k8slib.wait_for(lambda: sky.answer("pna.default." + svc)[0] == "NXDOMAIN", 5)
    c.ok(t is not None, "a deleted Service goes")
    code, body = skytest.http_request(sky.api_port, "PUT", "/skydns/api/web.default." + svc,
                                      b'{"type":"A","ips":["10.1.1.1"]}',
                                      {"Content-Type": "application/json"})
    c.eq(code, 409, "the API refuses a name of the k8s source (%r)" % body[:120])
    m = sky.metrics()
    c.ok(m.get("skydns_k8s_events_total", 0) >= 4, "events counted (%s)" %
         m.get("skydns_k8s_events_total"))
    c.ok(m.get("skydns_k8s_dns_programming_duration_seconds_count", 0) >= 3,
         "programming latency observed")


def scenario_gone():
    svc = "svc." + Z
    relists = sky.metrics().get("skydns_k8s_relists_total", 0)
    api.stop()
    api.delete("services", "default", "idle")
    api.delete("endpointslices", "default", "db-3")
    api.add(kubeapi.service("default", "late", cluster_ip="10.96.0.77"))
    api.compact()
    api.start()
    t = k8slib.wait_for(lambda: sky.answer("late.default." + svc)[1] == ["10.96.0.77"], 15)
    c.ok(t is not None, "after 410 the re-list brings a Service created meanwhile")
    t = k8slib.wait_for(lambda: sky.answer("db-5.db.default." + svc)[0] == "NXDOMAIN", 15)
    c.ok(t is not None, "after 410 the slices' re-list drops a slice deleted meanwhile")
    both("db-5.db.default." + svc, "A", "NXDOMAIN", [], "slice deleted meanwhile")
    both("idle.default." + svc, "A", "NXDOMAIN", [], "Service deleted meanwhile")
    both("db.default." + svc, "A", "NOERROR", ["10.244.2.1"], "after the re-lists")
    c.ok(k8slib.wait_for(lambda: sky.metrics().get("skydns_k8s_relists_total", 0) > relists,
                         5) is not None, "the re-list is counted")


def scenario_api_gone_restart():
    svc = "svc." + Z
    api.stop()
    time.sleep(1.5)
    both("web.default." + svc, "AAAA", "NOERROR", ["fd00::10"], "API server gone")
    c.ok(sky.stop(), "skydns exits 0 on SIGTERM")
    sky.start()
    both("web.default." + svc, "A", "NOERROR", ["10.96.0.10"], "restarted, API still gone")
    both("_pg._tcp.db.default." + svc, "SRV", "NOERROR", None, "restarted, API gone")
    c.eq(sky.http("/ready")[0], 200, "/ready 200 at once from the stored sync")
    api.reset_counters()
    resumes = sky.metrics().get("skydns_k8s_resumes_total", 0)
    api.start()
    c.ok(api.wait_watches(2, 15), "both watches open again")
    api.add(kubeapi.service("default", "after", cluster_ip="10.96.0.88"))
    t = k8slib.wait_for(lambda: sky.answer("after.default." + svc)[1] == ["10.96.0.88"], 10)
    c.ok(t is not None, "events flow after the API server is back")
    cnt = api.counters()
    c.eq(sum(cnt["lists"].values()), 0, "resumed without a list (%s)" % cnt["lists"])
    c.ok("no re-list" in sky.log(since_start=True), "the log says it resumed")
    c.ok(k8slib.wait_for(lambda: sky.metrics().get("skydns_k8s_resumes_total", 0) > resumes,
                         5) is not None, "resumes counted")


try:
    scenario_unsynced()
    scenario_records()
    scenario_modes()
    scenario_watch()
    scenario_gone()
    scenario_api_gone_restart()
    c.ok(sky.stop(), "skydns exits 0 at the end")
finally:
    if sky.proc:
        sky.stop()
    api.stop()
    if c.failed:
        print("--- skydns log (tail) ---\n" + sky.log()[-4000:])
    sky.cleanup()
c.finish()
