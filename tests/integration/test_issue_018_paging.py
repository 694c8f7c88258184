"""
Issue 18: list paging for large stores, streamed.

GET /skydns/api/?limit=N&after=<name> returns at most N names after <name> and
"next" (the last name sent) while more remain; the list is written batch by
batch (1000 names per read txn), never built as one document.

Before: the list was one jansson document of every name, built in memory and
sent with a Content-Length: a store of 200,000 names took the API process's
anonymous RSS up by well over 10 MiB per request, and limit/after were ignored.

Method: import a generated zone of 200,000 names (plus one API name in a second
domain, so pages cross domains), walk every page of 5,000 with after=next and an
unpaged list, check that together they hold every name exactly once in store
order, and sample the daemon's RssAnon (the store's map pages are file-backed
and not counted) before and after each request: the growth must stay < 10 MiB.
ASan's quarantine would count freed memory as grown, so the daemon here runs
with a 1 MiB quarantine, and with api-threads = 4 and a warm-up page per thread,
because the allocator keeps a cache per thread that served a big page (~2 MiB
each under ASan), which is not memory that grows with the store. Bounded: some 45 requests, under a minute.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from skytest import BUILD, Checks, Skydns, free_port, http_request  # noqa: E402

C = Checks()
N = 200000
PAGE = 5000
HDRS = {"Content-Type": "application/json"}


def rss_anon_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def get(aport, path):
    st, body = http_request(aport, "GET", path, headers=HDRS, timeout=120)
    try:
        return st, json.loads(body or b"null")
    except ValueError:
        return st, {"raw": body[:200]}


def zone_text():
    lines = ["$ORIGIN skydns.local.", "$TTL 60", "@ SOA ns hostmaster 1 3600 600 86400 60"]
    lines += ["n%06d A 10.%d.%d.%d" % (i, i >> 16, (i >> 8) & 255, i & 255) for i in range(N)]
    return "\n".join(lines) + "\n"


def main():
    opts = os.environ.get("ASAN_OPTIONS", "")
    os.environ["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "quarantine_size_mb=1"
    aport = free_port()
    sky = Skydns(zone_text(),
                 extra_conf="dns-domains = skydns.local.%%example.test.\n[Api]\n"
                            "api-enable = true\napi-address = 127.0.0.1:%d\napi-threads = 4\n" % aport)
    try:
        sky.start(deadline=30)
        pid = sky.proc.pid
        st, _ = http_request(aport, "POST", "/skydns/api/zz.example.test.",
                             b'{"type":"A","ips":["192.0.2.1"]}', HDRS, timeout=10)
        C.eq(st, 201, "an API name in the second domain")

        st, r = get(aport, "/skydns/api/?limit=0")
        C.eq(st, 400, "limit=0 is refused")
        st, r = get(aport, "/skydns/api/?after=www.example.com")
        C.eq(st, 400, "after= outside the local domains is refused")
        st, r = get(aport, "/skydns/api/?limit=3")
        C.eq([n["name"] for n in r.get("names", [])],
             ["n000000.skydns.local.", "n000001.skydns.local.", "n000002.skydns.local."],
             "the first page: store order from the apex")
        C.eq(r.get("next"), "n000002.skydns.local.", "next names the last name sent")
        out = subprocess.run([os.path.join(BUILD, "cli", "skydns-cli"), "-addr",
                              "127.0.0.1:%d" % aport, "-list", "-limit", "2", "-after",
                              "n000010.skydns.local."], capture_output=True, text=True,
                             timeout=30).stdout.splitlines()
        C.ok(len(out) == 3 and "n000011.skydns.local." in out[0]
             and "n000012.skydns.local." in out[1] and out[2] == "next: -after n000012.skydns.local.",
             "skydns-cli -list -limit 2 -after: one page and where to go on (%s)" % out)

        # Warm-up: each API thread serves a page first, so the allocator's per-thread caches
        # and shadow (ASan keeps ~2 MiB per thread that served 5,000 names) are in the base.
        fresh = rss_anon_kib(pid)
        for _ in range(2 * 4):
            get(aport, "/skydns/api/?limit=%d" % PAGE)
        base = rss_anon_kib(pid)
        peak = base
        seen, after, pages, t0 = [], None, 0, time.monotonic()
        while pages < N // PAGE + 5:  # bounded: a page too many is a failure below
            st, r = get(aport, "/skydns/api/?limit=%d%s" % (PAGE, "&after=" + after if after else ""))
            peak = max(peak, rss_anon_kib(pid))
            pages += 1
            if os.environ.get("PAGING_DEBUG"):
                print("page", pages, rss_anon_kib(pid), flush=True)
            if not C.ok(st == 200 and "names" in r, "page %d: 200 and names (%s)" % (pages, st)):
                break
            seen += [n["name"] for n in r["names"]]
            after = r.get("next")
            if not after:
                break
        dt = time.monotonic() - t0
        want = ["n%06d.skydns.local." % i for i in range(N)] + \
               ["zz.example.test."]
        C.eq(len(seen), N + 1, "the pages hold every name")
        C.ok(seen == want, "each name once, in store order, across both domains")
        C.eq(pages, (N + 1 + PAGE - 1) // PAGE, "pages of %d" % PAGE)

        print("paged peak +%.1f MiB" % ((peak - base) / 1024.0), flush=True)
        st, r = get(aport, "/skydns/api/")
        peak = max(peak, rss_anon_kib(pid))
        C.eq(len(r.get("names", [])), N + 1, "the unpaged list, streamed, holds every name")
        C.ok("next" not in r, "no next without a limit")
        C.ok(r.get("names") and r["names"][0]["records"][0]["ips"] == ["10.0.0.0"],
             "a listed name carries its records")
        grown = (peak - base) / 1024.0
        print("200,000 names: %d pages in %.1f s; RssAnon fresh %.1f MiB, after warm-up %.1f MiB"
              " -> peak %.1f MiB (+%.1f)" % (pages, dt, fresh / 1024.0, base / 1024.0,
                                            peak / 1024.0, grown), flush=True)
        C.ok(grown < 10.0, "RssAnon grew by %.1f MiB listing 200,000 names, want < 10" % grown)
    finally:
        sky.stop()
    C.finish()


if __name__ == "__main__":
    main()
