"""
conf/kubernetes/*.yaml hold together: the objects to run skydns as cluster DNS exist, refer
to each other by the right names (ServiceAccount <- ClusterRoleBinding -> ClusterRole,
Deployment -> ServiceAccount, ConfigMap, Service selector -> pod labels, Service targetPorts
-> container ports), the ClusterRole grants list+watch on everything the watcher reads and
nothing else, the probes hit /health and /ready on the port the config's api-address
names, the DNS port is the config's dns-addr port, the data-dir lies on an emptyDir, and
the config the container's start script composes (ConfigMap + api-token) passes
`skydns -check-config` when that very script runs.

Needs python3-yaml (TEST_PKGS in dev.sh); exits 77 without it.
"""
import configparser
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import skytest  # noqa: E402

try:
    import yaml
except ImportError:
    yaml = None

SRC = os.environ.get("SKYDNS_SRC") or os.path.join(os.path.dirname(__file__), "..", "..")
DIR = os.path.join(SRC, "conf", "kubernetes")
c = skytest.Checks()


def load_all():
    objs = []
    for path in sorted(glob.glob(os.path.join(DIR, "*.yaml"))):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc:
                    doc["_file"] = os.path.basename(path)
                    objs.append(doc)
    return objs


def one(objs, kind):
    found = [o for o in objs if o.get("kind") == kind]
    c.eq(len(found), 1, "exactly one %s" % kind)
    return found[0] if found else {}


def ini(text):
    """skydns.conf as {section: {key: value}} (';' comments, as inih reads it)."""
    cp = configparser.ConfigParser(comment_prefixes=(";", "#"), inline_comment_prefixes=None,
                                   strict=False, interpolation=None)
    cp.optionxform = str
    cp.read_string(text)
    return {s: dict(cp[s]) for s in cp.sections()}


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


def check_rbac(objs):
    sa, role, bind = one(objs, "ServiceAccount"), one(objs, "ClusterRole"), \
        one(objs, "ClusterRoleBinding")
    granted = set()
    for r in role.get("rules", []):
        for g in r.get("apiGroups", []):
            for res in r.get("resources", []):
                for v in r.get("verbs", []):
                    granted.add((g, res, v))
    want = {(g, r, v) for g, r in (("", "services"), ("", "namespaces"), ("", "pods"),
                                   ("discovery.k8s.io", "endpointslices"))
            for v in ("list", "watch")}
    c.eq(sorted(want - granted), [], "ClusterRole grants list+watch on what the watcher reads")
    c.eq(sorted(granted - want), [], "ClusterRole grants nothing more")
    c.eq(bind.get("roleRef", {}).get("name"), role["metadata"]["name"],
         "binding refers to the ClusterRole")
    c.ok({"kind": "ServiceAccount", "name": sa["metadata"]["name"],
          "namespace": sa["metadata"]["namespace"]} in bind.get("subjects", []),
         "binding's subject is the ServiceAccount")
    return sa


def check_deployment(objs, sa, conf):
    dep, svc, cm = one(objs, "Deployment"), one(objs, "Service"), one(objs, "ConfigMap")
    pod = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    c.eq(dep["spec"]["selector"]["matchLabels"],
         {k: labels[k] for k in dep["spec"]["selector"]["matchLabels"]},
         "Deployment selector matches its pod labels")
    c.eq(pod.get("serviceAccountName"), sa["metadata"]["name"], "pod runs as the ServiceAccount")
    c.eq(pod.get("dnsPolicy"), "Default", "the cluster DNS resolves upstream via the node")
    for o in (dep, svc, cm, sa):
        c.eq(o["metadata"].get("namespace"), "kube-system", "%s in kube-system" % o["kind"])
    ctr = pod["containers"][0]
    ports = {p["name"]: p for p in ctr["ports"]}

    # probes: /health and /ready on the API port of the config
    api_port = port_of(conf["Api"]["api-address"])
    for probe, path in (("livenessProbe", "/health"), ("readinessProbe", "/ready")):
        g = ctr.get(probe, {}).get("httpGet", {})
        p = ports.get(g.get("port"), {}).get("containerPort", g.get("port"))
        c.eq((g.get("path"), p), (path, api_port), "%s: GET %s on the api-address port"
             % (probe, path))

    # DNS: the Service's 53/UDP and 53/TCP land on the container's dns-addr port
    dns_port = port_of(conf["Dns"]["dns-addr"])
    got = set()
    for sp in svc["spec"]["ports"]:
        tp = sp["targetPort"]
        cp = ports.get(tp) if isinstance(tp, str) else None
        target = cp["containerPort"] if cp else tp
        c.ok(cp is None or cp["protocol"] == sp["protocol"],
             "service port %s targets a container port of its protocol" % sp["name"])
        got.add((sp["port"], sp["protocol"], target))
    c.eq(got, {(53, "UDP", dns_port), (53, "TCP", dns_port)},
         "Service: 53/UDP and 53/TCP to dns-addr's port")
    c.eq(svc["spec"]["selector"], {k: labels.get(k) for k in svc["spec"]["selector"]},
         "Service selects the pods")

    # volumes: ConfigMap mounted; data-dir on an emptyDir
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in ctr["volumeMounts"]}
    cmv = [v for v in vols.values() if v.get("configMap", {}).get("name") ==
           cm["metadata"]["name"]]
    c.eq(len(cmv), 1, "the ConfigMap is a volume")
    data_dir = conf["Store"]["data-dir"]
    under = [mp for mp in mounts if data_dir == mp or data_dir.startswith(mp.rstrip("/") + "/")]
    c.ok(under and "emptyDir" in vols[mounts[max(under, key=len)]],
         "data-dir %s is on an emptyDir volume" % data_dir)
    script = ctr["args"][0] if ctr.get("args") else ""
    cm_mount = [mp for mp, n in mounts.items() if cmv and n == cmv[0]["name"]]
    c.ok(cm_mount and (cm_mount[0] + "/skydns.conf") in script,
         "the start script reads the mounted ConfigMap")
    return ctr, mounts


def run_start_script(ctr, mounts, cm_text, token):
    """Run the container's own start script against temp dirs, with -check-config."""
    script = ctr["args"][0]
    d = tempfile.mkdtemp(prefix="skydns-k8s-manifest-")
    try:
        sub = {}
        for mp in mounts:
            local = os.path.join(d, mp.strip("/").replace("/", "_"))
            os.makedirs(local)
            sub[mp] = local
        cfg_mp = [mp for mp in mounts if mp.endswith("/config")][0]
        # The config names the mounts too (data-dir on the emptyDir), and -check-config
        # checks that data-dir can be written: point it at the temp copies as well.
        for mp in sorted(sub, key=len, reverse=True):
            cm_text = cm_text.replace(mp, sub[mp])
        with open(os.path.join(sub[cfg_mp], "skydns.conf"), "w") as f:
            f.write(cm_text)
        tok_mp = [mp for mp in mounts if mp.endswith("/api-token")][0]
        if token:
            with open(os.path.join(sub[tok_mp], "api-token"), "w") as f:
                f.write(token)
        for mp in sorted(sub, key=len, reverse=True):
            script = script.replace(mp, sub[mp])
        script = script.replace("/usr/sbin/skydns", skytest.SKYDNS)
        script = re.sub(r"(exec \S+ -config-file \S+)", r"\1 -check-config", script)
        r = subprocess.run(ctr["command"] + [script], capture_output=True, text=True,
                           timeout=60)
        composed = ""
        run_mp = [mp for mp in mounts if mp.startswith("/run")][0]
        path = os.path.join(sub[run_mp], "skydns.conf")
        if os.path.exists(path):
            composed = open(path).read()
            c.eq(oct(os.stat(path).st_mode & 0o777), "0o600", "composed config is 0600")
        return r, composed
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    if yaml is None:
        c.skip("python3-yaml is not installed")
    if not os.path.exists(skytest.SKYDNS):
        c.skip("no skydns binary at %s" % skytest.SKYDNS)
    objs = load_all()
    c.ok(len(objs) >= 6, "manifests parse (%d objects)" % len(objs))
    cm = one(objs, "ConfigMap")
    text = cm.get("data", {}).get("skydns.conf", "")
    conf = ini(text)
    c.eq(conf.get("Kubernetes", {}).get("enable"), "true", "[Kubernetes] enable = true")
    c.eq(conf.get("Kubernetes", {}).get("kube-domain"), "cluster.local.", "kube-domain")
    c.ok("server" not in conf.get("Kubernetes", {}) and
         "kubeconfig" not in conf.get("Kubernetes", {}), "in-cluster: no server, no kubeconfig")
    sa = check_rbac(objs)
    ctr, mounts = check_deployment(objs, sa, conf)

    for token in ("secret-from-the-Secret", None):
        r, composed = run_start_script(ctr, mounts, text, token)
        c.eq(r.returncode, 0, "start script + skydns -check-config (%s): %s%s"
             % ("Secret token" if token else "random token", r.stdout, r.stderr))
        m = re.search(r"^api-token = (\S+)$", composed, re.M)
        if token:
            c.ok(m and m.group(1) == token, "the Secret's token is used")
        else:
            c.ok(m and re.fullmatch(r"[0-9a-f]{64}", m.group(1)),
                 "without the Secret a random 256-bit token is used")
    # The check-config step can fail: a config the script composes wrong is caught.
    r, _ = run_start_script(ctr, mounts, text + "\n[Dns]\nno-such-key = 1\n", "x")
    c.ok(r.returncode != 0, "a bad ConfigMap config fails -check-config")
    c.finish()


if __name__ == "__main__":
    main()
