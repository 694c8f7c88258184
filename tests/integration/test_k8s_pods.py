"""
Issue 12: [Kubernetes] pods = verified, as CoreDNS's "pods verified": the watcher
lists and watches Pods and a-b-c-d.<ns>.pod.<zone> answers only while a pod of
<ns> has that IPv4 address (kubeapi.py serves /api/v1/pods). Asked with dig over
UDP and TCP.

  - first list: a pod's name answers; the same address in another namespace, or an
    address no pod has, is NXDOMAIN (pods = insecure would answer both)
  - watch: a new pod appears, a pod whose address changed answers its new one
    only, two pods with one address (hostNetwork) keep it until both are gone, a
    terminating pod's name goes, a deleted pod's name goes
  - 410: a pod deleted while the watch was cut off and the history compacted is
    gone after the re-list of Pods
  - two API requests refused with 500: the Pods watch comes back, and both are
    counted in skydns_k8s_api_errors_total
  - SIGKILL of skydns-watch-k8s: skydns starts it again and it resumes its three
    watches from the store (no list), answers staying meanwhile
  - restarted with pods = disabled: the stored pod records go, Services stay
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import k8slib  # noqa: E402
import kubeapi  # noqa: E402
import skytest  # noqa: E402

Z = k8slib.ZONE
POD = ".pod." + Z
c = skytest.Checks()
api = kubeapi.KubeAPI(port=skytest.free_port(), bookmark_interval=1.0)
sky = k8slib.Skydns("http://127.0.0.1:%d" % api.port, extra_k8s="pods = verified\n")


def both(name, qtype, want_rc, want=None, what=""):
    for tcp in (False, True):
        rc, ans, _ = sky.dig(name, qtype, tcp)
        how = "%s %s over %s%s" % (name, qtype, "TCP" if tcp else "UDP",
                                   " (" + what + ")" if what else "")
        c.eq(rc, want_rc, how + ": rcode")
        if want is not None:
            c.eq(ans, sorted(want), how + ": answer")


def until(name, want_rc, deadline=10):
    return k8slib.wait_for(lambda: sky.answer(name)[0] == want_rc, deadline) is not None


def watcher_pid():
    """The skydns-watch-k8s that skydns started (a child of our skydns)."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        if ppid == sky.proc.pid and comm.startswith("skydns-watch-k"):
            return int(d)
    return None


def scenario_list():
    api.add(kubeapi.service("default", "web", cluster_ip="10.96.0.10"))
    api.add(kubeapi.pod("default", "a", ips=("10.244.0.5", "fd00::5")))
    api.add(kubeapi.pod("kube-system", "b", ips=("10.244.1.9",)))
    api.add(kubeapi.pod("default", "pending", ips=()))
    api.start()
    sky.start()
    c.ok(until("10-244-0-5.default" + POD, "NOERROR", 15), "pods listed")
    both("10-244-0-5.default" + POD, "A", "NOERROR", ["10.244.0.5"], "pod of default")
    both("10-244-1-9.kube-system" + POD, "A", "NOERROR", ["10.244.1.9"], "pod of kube-system")
    both("10-244-1-9.default" + POD, "A", "NXDOMAIN", [], "address of another namespace")
    both("10-244-0-6.default" + POD, "A", "NXDOMAIN", [], "address no pod has")
    both("fd00--5.default" + POD, "AAAA", "NOERROR", ["fd00::5"], "an IPv6 pod: AAAA")
    both("fd00--5.default" + POD, "A", "NOERROR", [], "an IPv6 pod: A is NODATA")
    both("fd00--6.default" + POD, "AAAA", "NXDOMAIN", [], "IPv6 address no pod has")
    both("web.default.svc." + Z, "A", "NOERROR", ["10.96.0.10"], "Services as before")


def scenario_watch():
    api.add(kubeapi.pod("default", "c", ips=("10.244.0.7",)))
    c.ok(until("10-244-0-7.default" + POD, "NOERROR"), "a new pod appears")
    api.update(kubeapi.pod("default", "c", ips=("10.244.0.8",)))
    c.ok(until("10-244-0-8.default" + POD, "NOERROR"), "the pod's new address appears")
    both("10-244-0-7.default" + POD, "A", "NXDOMAIN", [], "its old address went")
    # hostNetwork pods share their node's address: it stays until the last goes
    api.add(kubeapi.pod("default", "h1", ips=("192.168.0.1",)))
    api.add(kubeapi.pod("default", "h2", ips=("192.168.0.1",)))
    c.ok(until("192-168-0-1.default" + POD, "NOERROR"), "shared address")
    api.delete("pods", "default", "h1")
    api.add(kubeapi.pod("default", "marker", ips=("10.244.0.99",)))
    c.ok(until("10-244-0-99.default" + POD, "NOERROR"), "events after the delete applied")
    both("192-168-0-1.default" + POD, "A", "NOERROR", ["192.168.0.1"], "one owner left")
    api.delete("pods", "default", "h2")
    c.ok(until("192-168-0-1.default" + POD, "NXDOMAIN"), "no owner left")
    p = kubeapi.pod("default", "c", ips=("10.244.0.8",))
    p["metadata"]["deletionTimestamp"] = kubeapi.now_rfc3339()
    api.update(p)
    c.ok(until("10-244-0-8.default" + POD, "NXDOMAIN"), "a terminating pod's name goes")
    api.delete("pods", "default", "a")
    c.ok(until("10-244-0-5.default" + POD, "NXDOMAIN"), "a deleted pod's name goes")


def scenario_gone():
    relists = sky.metrics().get("skydns_k8s_relists_total", 0)
    api.stop()
    api.delete("pods", "kube-system", "b")
    api.add(kubeapi.pod("default", "d", ips=("10.244.0.12",)))
    api.compact()
    api.start()
    c.ok(until("10-244-0-12.default" + POD, "NOERROR", 15), "re-list brings a new pod")
    c.ok(until("10-244-1-9.kube-system" + POD, "NXDOMAIN", 15),
         "re-list drops a pod deleted meanwhile")
    both("10-244-0-99.default" + POD, "A", "NOERROR", ["10.244.0.99"], "unchanged pod stays")
    c.ok(k8slib.wait_for(lambda: sky.metrics().get("skydns_k8s_relists_total", 0) > relists,
                         5) is not None, "the re-list is counted")


def scenario_api_errors():
    errors = sky.metrics().get("skydns_k8s_api_errors_total", 0)
    api.inject("/api/v1/pods", 500, count=2)
    api.drop_watches()  # the watches come again; the Pods watch is refused twice
    time.sleep(0.5)
    api.add(kubeapi.pod("default", "f", ips=("10.244.0.14",)))
    c.ok(until("10-244-0-14.default" + POD, "NOERROR", 15), "the Pods watch is back after 500s")
    t = k8slib.wait_for(
        lambda: sky.metrics().get("skydns_k8s_api_errors_total", 0) >= errors + 2, 10)
    c.ok(t is not None, "two refused requests counted in skydns_k8s_api_errors_total (%s -> %s)"
         % (errors, sky.metrics().get("skydns_k8s_api_errors_total")))


def scenario_sigkill():
    # The watches are open and the store holds their resourceVersions.
    c.ok(api.wait_watches(3, 10), "three watches open")
    pid = watcher_pid()
    c.ok(pid is not None, "the watcher is a child of skydns")
    if pid is None:
        return
    mark = len(sky.log())
    api.reset_counters()
    os.kill(pid, signal.SIGKILL)
    both("10-244-0-99.default" + POD, "A", "NOERROR", ["10.244.0.99"], "watcher killed")
    t = k8slib.wait_for(lambda: (watcher_pid() or pid) != pid, 15)
    c.ok(t is not None, "skydns started the watcher again")
    t = k8slib.wait_for(lambda: sum(api.counters()["watches"].values()) >= 3, 15)
    c.ok(t is not None, "three watches asked for again")
    api.add(kubeapi.pod("default", "e", ips=("10.244.0.13",)))
    c.ok(until("10-244-0-13.default" + POD, "NOERROR"), "events flow after the restart")
    cnt = api.counters()
    c.eq(sum(cnt["lists"].values()), 0, "resumed without a list (%s)" % cnt["lists"])
    log = sky.log()[mark:]
    c.ok("resumed the Pods watch" in log, "the log says the Pods watch resumed")


def scenario_disabled():
    c.ok(sky.stop(), "skydns exits 0")
    with open(sky.conf) as f:
        text = f.read()
    with open(sky.conf, "w") as f:
        f.write(text.replace("pods = verified", "pods = disabled"))
    sky.start()
    c.ok(until("10-244-0-99.default" + POD, "NXDOMAIN", 15),
         "pods no longer verified: the stored pod records go")
    both("10-244-0-13.default" + POD, "A", "NXDOMAIN", [], "pods disabled")
    both("web.default.svc." + Z, "A", "NOERROR", ["10.96.0.10"], "Services stay")
    c.ok("dropped the stored pod records" in sky.log(since_start=True), "logged")


try:
    scenario_list()
    scenario_watch()
    scenario_gone()
    scenario_api_errors()
    scenario_sigkill()
    scenario_disabled()
    c.ok(sky.stop(), "skydns exits 0 at the end")
finally:
    if sky.proc:
        sky.stop()
    api.stop()
    if c.failed:
        print("--- skydns log (tail) ---\n" + sky.log()[-4000:])
    sky.cleanup()
c.finish()
