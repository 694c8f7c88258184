"""
bench/k8s_gen.py: a synthetic Kubernetes cluster for bench/k8s.sh (and anyone who wants a big
fixture): NSVC Services over NNS namespaces with NEP endpoints in all, one EndpointSlice per
PER_SLICE endpoints of a service, real-shaped through tests/integration/kubeapi.py's builders.

Shape (deterministic for a given size, so two runs compare):
- every HEADLESS_EVERY-th service is headless (clusterIP "None"), its endpoints with
  hostnames (a StatefulSet's); the others have a ClusterIP from 10.96.0.0/12, every
  10th dual-stack with an fd00:10:96:: address too;
- ports: "http" 80/TCP on all, "metrics" 9090/TCP and an unnamed 8443 on every 3rd;
- endpoints: pod IPs from 10.244.0.0/14, ready (condition missing) except every 50th
  (ready false, serving false) and every 97th (terminating);
- slices carry kubernetes.io/service-name and last-change-trigger-time like the controller's.

  python3 bench/k8s_gen.py --services 10000 --endpoints 50000 > cluster.json
  tests/integration/kubeapi.py --fixture cluster.json
"""
import argparse
import ipaddress
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import kubeapi  # noqa: E402

SVC_NET = ipaddress.ip_network("10.96.0.0/12")
POD_NET = ipaddress.ip_network("10.244.0.0/14")


def svc_ip(i):
    return str(SVC_NET[i + 10])  # .0-.9: kubernetes, kube-dns and friends


def pod_ip(k):
    return str(POD_NET[k + 2])


def cluster(nsvc=10000, nendpoints=50000, nns=100, headless_every=5, per_slice=100):
    """Yield (resource, object) for namespaces, services and slices, in that order."""
    for n in range(nns):
        yield "namespaces", kubeapi.namespace("ns-%03d" % n)
    k = 0  # endpoint counter: every endpoint gets its own pod IP
    for i in range(nsvc):
        ns, name = "ns-%03d" % (i % nns), "svc-%05d" % i
        headless = i % headless_every == 0
        ports = [("http", "TCP", 80)]
        if i % 3 == 0:
            ports += [("metrics", "TCP", 9090), (None, "TCP", 8443)]
        if headless:
            ip = "None"
        elif i % 10 == 1:
            ip = [svc_ip(i), "fd00:10:96::%x" % (i + 10)]
        else:
            ip = svc_ip(i)
        yield "services", kubeapi.service(ns, name, ip, ports=ports)
        # Spread the endpoints evenly; the remainder goes to the first services.
        n_ep = nendpoints // nsvc + (1 if i < nendpoints % nsvc else 0)
        eps = []
        for e in range(n_ep):
            ready = False if k % 50 == 0 else None
            term = True if k % 97 == 0 else None
            eps.append(kubeapi.endpoint(
                pod_ip(k), ready=ready, serving=False if ready is False else None,
                terminating=term, hostname="%s-%d" % (name, e) if headless else None,
                pod=(ns, "%s-%d" % (name, e))))
            k += 1
        for s in range(0, max(n_ep, 1), per_slice):
            yield "endpointslices", kubeapi.endpointslice(
                ns, name, "%s-%d" % (name, s // per_slice), eps[s:s + per_slice], ports=ports)


def load(api, **kw):
    """Add the cluster to a KubeAPI; returns {resource: count}."""
    counts = {}
    for resource, obj in cluster(**kw):
        api.add(obj, resource)
        counts[resource] = counts.get(resource, 0) + 1
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints", type=int, default=50000)
    ap.add_argument("--namespaces", type=int, default=100)
    ap.add_argument("--per-slice", type=int, default=100)
    a = ap.parse_args()
    out = {}
    for resource, obj in cluster(a.services, a.endpoints, a.namespaces, per_slice=a.per_slice):
        out.setdefault(resource, []).append(obj)
    json.dump(out, sys.stdout, separators=(",", ":"))


if __name__ == "__main__":
    main()
