#!/usr/bin/env python3
"""bench/table.py — one table over the TSVs of bench/run.sh (issue 16).

Usage: bench/table.py RESULTS.tsv...   (bench/run.sh all passes the TSVs of its modes;
any mode's TSV alone works too). The mode is the file name's suffix (-auth.tsv, ...).

Every row compares two medians over rounds taken in the SAME run (same mode, same
file): a ratio of server CPU µs per answered query unless the row says otherwise, its
target, PASS/FAIL (or "info" where the issue sets no number), and the per-round ratios,
whose spread is the noise of the shared machine.
"""
import collections
import os
import statistics
import sys

MIB = 1024.0


def read_tsv(path):
    rows = []
    with open(path) as f:
        head = f.readline().rstrip("\n").split("\t")
        for line in f:
            v = line.rstrip("\n").split("\t")
            rows.append(dict(zip(head, v)))
    return rows


class Mode:
    def __init__(self, rows):
        self.rows = rows
        self.by = collections.defaultdict(list)  # (server, load) -> rows, in round order
        for r in rows:
            self.by[(r["server"], r["load"])].append(r)

    def med(self, srv, load, col="srv_us_per_q"):
        v = [float(r[col]) for r in self.by.get((srv, load), []) if r.get(col) not in (None, "", "-")]
        return statistics.median(v) if v else None

    def rounds(self, a, b, col="srv_us_per_q"):
        """per-round ratio a/b, a and b = (server, load)"""
        ra = {r["round"]: float(r[col]) for r in self.by.get(a, [])}
        rb = {r["round"]: float(r[col]) for r in self.by.get(b, [])}
        out = [ra[k] / rb[k] for k in sorted(ra, key=int) if k in rb and rb[k] > 0]
        return " ".join("%.2f" % x for x in out)

    def lost(self, srv):
        return sum(int(r["lost"]) for (s, _), rs in self.by.items() if s == srv for r in rs)


OUT = []


def row(name, a, b, target=None, sense="le", note="", fmt="%.2f", rounds=""):
    """a, b: the two medians (b None: a alone is compared with target)"""
    if a is None or (b is not None and b == 0):
        OUT.append((name, "-", "-", "-", target_s(target, sense), "missing", note))
        return
    val = a / b if b is not None else a
    ok = "info"
    if target is not None:
        ok = "PASS" if (val <= target if sense == "le" else val >= target) else "FAIL"
    OUT.append((name, fmt % a, fmt % b if b is not None else "", "%.2f" % val if b is not None else "",
                target_s(target, sense), ok, rounds or note))


def target_s(t, sense):
    if t is None:
        return "-"
    return ("<= " if sense == "le" else ">= ") + ("%g" % t)


def main(paths):
    modes = {}
    for p in paths:
        if not p:
            continue
        m = p.rsplit("-", 1)[-1].rsplit(".", 1)[0]
        modes[m] = Mode(read_tsv(p))

    if "auth" in modes:
        m = modes["auth"]
        for peer, t in (("echo", 1.10), ("knot", 0.75), ("nsd", None)):
            row("UDP batched, 1 worker: skydns / %s us/q" % peer, m.med("skydns", "fast"),
                m.med(peer, "fast"), t, rounds=m.rounds(("skydns", "fast"), (peer, "fast")))
        row("UDP batched: skydns QPS / knot QPS", m.med("skydns", "fast", "qps"),
            m.med("knot", "fast", "qps"), None, fmt="%.0f",
            rounds=m.rounds(("skydns", "fast"), ("knot", "fast"), "qps"))
        if m.med("skydns", "dnsperf") is not None:
            row("UDP dnsperf: skydns / knot us/q", m.med("skydns", "dnsperf"), m.med("knot", "dnsperf"), None)
        OUT.append(("UDP skydns queries lost (all loads)", str(m.lost("skydns")), "", "", "= 0",
                    "PASS" if m.lost("skydns") == 0 else "FAIL", ""))
    if "mix" in modes:
        m = modes["mix"]
        row("negative 80%% NX/NODATA / positive us/q%s" % names(m), m.med("skydns", "fast-neg"),
            m.med("skydns", "fast-pos"), 1.10,
            rounds=m.rounds(("skydns", "fast-neg"), ("skydns", "fast-pos")))
    if "churn" in modes:
        m = modes["churn"]
        row("churn 50 commits/s / alone us/q%s" % names(m), m.med("skydns", "fast-churn"),
            m.med("skydns", "fast"), 1.15, rounds=m.rounds(("skydns", "fast-churn"), ("skydns", "fast")))
        OUT.append(("churn: skydns queries lost", str(m.lost("skydns")), "", "", "= 0",
                    "PASS" if m.lost("skydns") == 0 else "FAIL", ""))
    if "tcp" in modes:
        m = modes["tcp"]
        for load, label, t in (("tcp10", "TCP 10 conns x8", 0.6), ("tcp1000", "TCP 1000 conns x4", 0.6),
                               ("tcpsetup", "TCP 1 query/conn", None)):
            for peer in ("knot", "nsd"):
                row("%s: skydns / %s us/q" % (label, peer), m.med("skydns", load), m.med(peer, load), t,
                    rounds=m.rounds(("skydns", load), (peer, load)))
            row("%s: skydns QPS / knot QPS" % label, m.med("skydns", load, "qps"), m.med("knot", load, "qps"),
                None, fmt="%.0f")
    if "workers2" in modes:
        m = modes["workers2"]
        row("2 workers, shared cores: skydns / knot us/q", m.med("skydns2", "fast"), m.med("knot2", "fast"),
            None, rounds=m.rounds(("skydns2", "fast"), ("knot2", "fast")))
        row("2 workers, shared cores: skydns QPS / knot QPS", m.med("skydns2", "fast", "qps"),
            m.med("knot2", "fast", "qps"), None, fmt="%.0f",
            rounds=m.rounds(("skydns2", "fast"), ("knot2", "fast"), "qps"))
        row("1 worker (own core): skydns / knot us/q", m.med("skydns", "fast"), m.med("knot", "fast"), None,
            rounds=m.rounds(("skydns", "fast"), ("knot", "fast")))
        for s in ("skydns", "knot"):
            row("scaling %s: QPS 2 workers / 1 worker" % s, m.med(s + "2", "fast", "qps"),
                m.med(s, "fast", "qps"), None, fmt="%.0f")
            row("scaling %s: us/q 2 workers / 1 worker" % s, m.med(s + "2", "fast"), m.med(s, "fast"), None)
    if "mem" in modes:
        m = modes["mem"]
        anon = m.med("skydns", "mem", "rss_anon_kb")
        fil = m.med("skydns", "mem", "rss_file_kb")
        hwm = m.med("skydns", "mem", "hwm_kb")
        if anon is not None:
            anon, fil, hwm = anon / MIB, fil / MIB, hwm / MIB
        row("memory%s: skydns RssAnon (heap etc.) MiB" % names(m), anon, None, 64, fmt="%.1f",
            note="default caches, both filled")
        row("memory: skydns RssFile (mapped store) / VmHWM", fil, hwm, 0.5, sense="ge", fmt="%.1f",
            note="MiB / MiB: peak dominated by the store")
        for peer in ("nsd", "knot"):
            p = m.med(peer, "mem", "hwm_kb")
            row("memory: skydns VmHWM / %s VmHWM" % peer, hwm, p / MIB if p is not None else None, None,
                fmt="%.1f", note="MiB / MiB")
    if "forward" in modes:
        m = modes["forward"]
        row("forward warm cache: skydns / unbound us/q", m.med("skydns", "fast"), m.med("unbound", "fast"), 0.5,
            rounds=m.rounds(("skydns", "fast"), ("unbound", "fast")))

    w = [max(len(str(r[i])) for r in OUT + [HEAD]) for i in range(len(HEAD))]
    for r in [HEAD] + OUT:
        print(" | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)).rstrip())
    print("\nvalues: server CPU us per answered query unless the row says QPS or MiB; ratio = "
          "skydns column / peer column; per-round ratios show the noise.")


def names(m):
    """the zone size, when a mode recorded one (bench/run.sh mix/churn/mem at NSVC)"""
    n = os.environ.get("TABLE_NSVC")
    return " (%s names)" % n if n else ""


HEAD = ("row", "skydns", "peer", "ratio", "target", "pass", "per round / note")

if __name__ == "__main__":
    main(sys.argv[1:])
