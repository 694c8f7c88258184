"""
Issue 20: conf/monitoring/ holds a Grafana dashboard and Prometheus alerting
rules over the metrics skydns really exports.

Method: every metric name the dashboard's queries and the rules' expressions
use (comments aside) must appear as a sample in the /metrics of a real
skydns configured with everything that adds series (forwarding to a real
NSD after one forwarded query, etcd configured, the API); a planted unknown
name must be caught, so the check can fail. The dashboard must be valid JSON
with unique panel ids and a query on every panel. `promtool check rules`
must accept the rules and `promtool test rules` must pass their unit tests
(skipped, with a note, when Debian's prometheus package is absent).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import dns.message

from skytest import Checks, Skydns, free_port, http_request, start_nsd, udp_query, wait_api

c = Checks()
SRC = os.environ.get("SKYDNS_SRC") or os.path.join(os.path.dirname(__file__), "..", "..")
MON = os.path.join(SRC, "conf", "monitoring")
DASH = os.path.join(MON, "skydns-dashboard.json")
RULES = os.path.join(MON, "skydns-alerts.yml")
RULES_TEST = os.path.join(MON, "skydns-alerts-test.yml")
# Prometheus's own series, not skydns's.
BUILTIN = {"up"}
NAME = re.compile(r"\b(skydns_[a-z0-9_]+|up)\b(?!\s*\()")


def names_in(exprs):
    out = set()
    for e in exprs:
        out.update(NAME.findall(e))
    return out


def dashboard_exprs():
    with open(DASH) as f:
        dash = json.load(f)
    exprs, ids, empty = [], [], []
    for p in dash["panels"]:
        ids.append(p["id"])
        if p["type"] == "row":
            continue
        t = [x.get("expr", "") for x in p.get("targets", [])]
        if not any(t):
            empty.append(p["title"])
        exprs += t
    c.eq(len(ids), len(set(ids)), "dashboard panel ids are unique")
    c.eq(empty, [], "every dashboard panel has a query")
    c.ok(any(v["type"] == "datasource" for v in dash["templating"]["list"]),
         "the dashboard takes its Prometheus data source as a variable")
    return exprs


def rules_exprs():
    exprs, cur = [], None
    with open(RULES) as f:
        for line in f:
            if line.lstrip().startswith("#"):
                continue  # a commented rule names metrics skydns does not export yet
            m = re.match(r"\s*expr:\s*(\|)?\s*(.*)$", line)
            if m:
                cur = [] if m.group(1) else None
                if cur is None:
                    exprs.append(m.group(2))
                continue
            if cur is not None:
                if line.strip() and (len(line) - len(line.lstrip())) >= 10:
                    cur.append(line.strip())
                    continue
                exprs.append(" ".join(cur))
                cur = None
    if cur:
        exprs.append(" ".join(cur))
    return exprs


def exported(text):
    return {line.split("{", 1)[0].split(" ", 1)[0] for line in text.splitlines()
            if line and not line.startswith("#")}


def main():
    dexprs, rexprs = dashboard_exprs(), rules_exprs()
    c.ok(len(dexprs) >= 20, "dashboard queries found (%d)" % len(dexprs))
    c.ok(len(rexprs) >= 10, "rule expressions found (%d)" % len(rexprs))
    used = names_in(dexprs + rexprs)
    for want in ("skydns_responses_total", "skydns_upstream_healthy",
                 "skydns_etcd_revision_applied", "skydns_store_map_size_bytes"):
        c.ok(want in used, "%s is used (server down, SERVFAIL, upstream, watcher, store)" % want)

    work = tempfile.mkdtemp(prefix="skydns-mon-")
    nsd, upport = start_nsd(os.path.join(work, "nsd"), "example.test",
                            "$ORIGIN example.test.\n@ 3600 SOA ns h 1 3600 600 86400 60\n"
                            "@ 3600 NS ns\nns 3600 A 127.0.0.1\nwww 3600 A 192.0.2.1\n")
    try:
        api = free_port()
        dead_etcd = free_port()  # nothing listens: the watcher retries, series stay at 0
        extra = ("nameservers = 127.0.0.1:%d\n[Api]\napi-enable = true\n"
                 "api-address = 127.0.0.1:%d\n[Etcd]\netcd-servers = http://127.0.0.1:%d\n"
                 % (upport, api, dead_etcd))
        with Skydns("$ORIGIN skydns.local.\nweb A 10.0.0.1\n", extra_conf=extra) as d:
            d.start()
            c.ok(wait_api(api), "API up")
            q = dns.message.make_query("www.example.test.", "A")
            r = dns.message.from_wire(udp_query(d.port, q.to_wire(), timeout=3))
            c.eq(len(r.answer), 1, "a forwarded query answered (upstream series exist)")
            st, body = http_request(api, "GET", "/metrics")
            c.eq(st, 200, "GET /metrics")
            have = exported(body.decode())
            missing = sorted(n for n in used if n not in have and n not in BUILTIN)
            c.eq(missing, [], "every metric the dashboard and the rules use is in /metrics")
            c.ok("skydns_nonexistent_total" not in have
                 and names_in(["rate(skydns_nonexistent_total[5m])"]) ==
                 {"skydns_nonexistent_total"}, "an unknown name would be caught")
    finally:
        nsd.terminate()
        nsd.wait()
        shutil.rmtree(work, ignore_errors=True)

    promtool = shutil.which("promtool")
    if not promtool:
        print("NOTE: promtool (Debian package prometheus) is absent: rules not checked by it")
        return
    r = subprocess.run([promtool, "check", "rules", RULES], capture_output=True, text=True,
                       timeout=60)
    c.ok(r.returncode == 0, "promtool check rules: %s%s" % (r.stdout, r.stderr))
    r = subprocess.run([promtool, "test", "rules", RULES_TEST], capture_output=True, text=True,
                       timeout=60, cwd=MON)
    c.ok(r.returncode == 0, "promtool test rules: %s%s" % (r.stdout, r.stderr))


main()
c.finish()
