"""
Issue 17, import validation: the real `skydns -import` next to a running server.
Each bad file is refused with "FILE:LINE: problem" and exit 1, and dig (UDP and TCP)
still gets the old answers; an empty file no longer wipes the zone unless
-import-allow-empty; a file without an SOA imports with a warning.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from skytest import SKYDNS, Checks, Skydns

C = Checks()
GOOD = "$ORIGIN skydns.local.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\nwww A 10.0.0.1\n"

BAD = [
    ("cname-beside", "www A 10.0.0.9\nwww CNAME other\n", 2,
     "CNAME at www.skydns.local. beside other data"),
    ("cname-apex", "@ CNAME elsewhere.test.\n", 1, "CNAME at the zone apex skydns.local."),
    ("two-soa", "@ SOA ns1 hm 1 2 3 4 5\n@ SOA ns1 hm 2 2 3 4 5\n", 2,
     "a second SOA record (the first is on line 3"),
    ("out-of-zone", "www A 10.0.0.9\nx.example.com. A 10.0.0.8\n", 2,
     "name x.example.com. is outside zone skydns.local."),
    ("unknown-type", "www FOO 10.0.0.9\n", 1, 'unknown type "FOO"'),
    ("bad-ttl", "www 99x A 10.0.0.9\n", 1, 'bad TTL "99x"'),
]


def run_import(d, name, text, *flags):
    path = os.path.join(d.dir, name + ".zone")
    with open(path, "w") as f:
        f.write(text)
    r = subprocess.run([SKYDNS, "-config-file", d.conf, "-import", path] + list(flags),
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stderr.strip(), path


def dig(d, name, tcp):
    r = subprocess.run(["dig", "@127.0.0.1", "-p", str(d.port), "+time=3", "+tries=1", "+norec"]
                       + (["+tcp"] if tcp else []) + [name, "A"],
                       capture_output=True, text=True, timeout=20)
    status = [l for l in r.stdout.splitlines() if "status:" in l]
    answers = [l.split()[-1] for l in r.stdout.splitlines()
               if l and not l.startswith(";") and "\tA\t" in l]
    return (status[0].split("status: ")[1].split(",")[0] if status else None), answers


def still_old(d, what):
    for tcp in (False, True):
        C.eq(dig(d, "www.skydns.local.", tcp), ("NOERROR", ["10.0.0.1"]),
             "%s: old answer kept [%s]" % (what, "tcp" if tcp else "udp"))


def main():
    with Skydns(GOOD) as d:
        d.start()
        still_old(d, "start")
        for name, text, line, msg in BAD:
            rc, err, path = run_import(d, name, "$ORIGIN skydns.local.\n$TTL 300\n" + text)
            C.eq(rc, 1, "%s: refused" % name)
            want = "%s:%d: %s" % (path, line + 2, msg)
            C.ok(err.startswith(want), "%s: message %r starts with %r" % (name, err, want))
            still_old(d, name)
        # Empty: refused without the flag, the zone stays.
        rc, err, path = run_import(d, "empty", "; truncated by a failed copy\n")
        C.eq(rc, 1, "empty file refused")
        C.ok("no records: importing it would empty zone skydns.local. "
             "(pass -import-allow-empty to do that)" in err, "empty: message %r" % err)
        still_old(d, "empty")
        # No SOA: imported, with a warning.
        rc, err, _ = run_import(d, "nosoa", "www A 10.0.0.2\n")
        C.eq(rc, 0, "no SOA: imported")
        C.ok("warning: no SOA record" in err, "no SOA: warning %r" % err)
        C.eq(dig(d, "www.skydns.local.", False), ("NOERROR", ["10.0.0.2"]), "no SOA: new data")
        # With the flag the zone is emptied.
        rc, err, _ = run_import(d, "empty", "", "-import-allow-empty")
        C.eq(rc, 0, "-import-allow-empty: imported")
        for tcp in (False, True):
            C.eq(dig(d, "www.skydns.local.", tcp)[0], "NXDOMAIN", "-import-allow-empty: emptied")
        C.ok(d.alive(), "server alive")
    C.finish()


if __name__ == "__main__":
    main()
