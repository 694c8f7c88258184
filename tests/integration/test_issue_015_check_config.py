#!/usr/bin/env python3
"""
Issue 15: -check-config catches what would stop a start, not only the syntax,
and names the file and line of the key.

Each case is a config that parses but cannot start (a missing log-dir, a
data-dir that is a file or whose parent is missing, a non-loopback API
without a token, TLS files that cannot be read, a query-log in a missing
directory, a data-dir the [General] user cannot write): -check-config must
exit 2 with FILE:LINE: [Section] key: ..., and for the API case a real start
must fail too (the check and the start agree). The good config passes.
Before: every one of these printed "ok".
"""
import os
import pwd
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from skytest import SKYDNS, Checks, free_port  # noqa: E402

c = Checks()


def conf_text(d, port, extra):
    return ("[Dns]\ndns-addr = 127.0.0.1:%d\nworkers = 1\n"
            "[Store]\ndata-dir = %s/store\nmap-size = 64M\n"
            "[Log]\nlog-to-stdio = true\n%s" % (port, d, extra))


def check(d, name, text):
    path = os.path.join(d, name + ".conf")
    with open(path, "w") as f:
        f.write(text)
    r = subprocess.run([SKYDNS, "-config-file", path, "-check-config"], capture_output=True,
                       text=True, timeout=60)
    return path, r.returncode, r.stdout + r.stderr


def line_of(text, key):
    for i, line in enumerate(text.splitlines(), 1):
        if line.startswith(key):
            return i
    return 0


def main():
    d = tempfile.mkdtemp(prefix="skydns-cc-")
    port = free_port()
    try:
        path, rc, out = check(d, "good", conf_text(d, port, ""))
        c.ok(rc == 0 and "ok" in out, "a good config passes: %d %s" % (rc, out.strip()))

        open(os.path.join(d, "afile"), "w").close()
        cases = [
            ("logdir", "[Log] log-dir", "log-dir = %s/no-such-dir\n" % d, "log-dir",
             "No such file"),
            ("datafile", "[Store] data-dir", None, "data-dir", "not a directory"),
            ("dataparent", "[Store] data-dir", None, "data-dir", "does not exist"),
            ("apitoken", "[Api] api-address",
             "[Api]\napi-enable = true\napi-address = 0.0.0.0:%d\n" % free_port(),
             "api-address", "refuse to start"),
            ("apicert", "[Api] api-certfile",
             "[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\napi-token = t\n"
             "api-certfile = %s/no.pem\napi-keyfile = %s/no.key\n" % (free_port(), d, d),
             "api-certfile", "cannot be read"),
            ("etcdca", "[Etcd] etcd-cafile",
             "[Etcd]\netcd-servers = https://127.0.0.1:2379\netcd-cafile = %s/no-ca.pem\n" % d,
             "etcd-cafile", "cannot be read"),
            ("querylog", "[Log] query-log", "query-log = %s/no-dir/q.log\n" % d, "query-log",
             "cannot be written"),
        ]
        for name, key, extra, keyline, why in cases:
            text = conf_text(d, port, extra or "")
            if name == "datafile":
                text = text.replace("data-dir = %s/store" % d, "data-dir = %s/afile" % d)
            if name == "dataparent":
                text = text.replace("data-dir = %s/store" % d, "data-dir = %s/x/y/store" % d)
            path, rc, out = check(d, name, text)
            want = "%s:%d: %s: " % (path, line_of(text, keyline), key)
            c.ok(rc == 2 and want in out and why in out,
                 "%s: -check-config exits 2 with '%s...%s': got %d %s"
                 % (name, want, why, rc, out.strip()[-400:]))

        c.ok(not os.path.exists(os.path.join(d, "store")), "-check-config created nothing")

        # The check and the start agree: the tokenless public API does not start either.
        text = conf_text(d, port, cases[3][2])
        path = os.path.join(d, "apitoken.conf")
        r = subprocess.run([SKYDNS, "-config-file", path], capture_output=True, text=True,
                           timeout=60)
        c.eq(r.returncode, 1, "a start with the tokenless public API fails as well")

        if os.geteuid() == 0:
            try:
                pwd.getpwnam("nobody")
                os.chmod(d, 0o755)
                os.mkdir(os.path.join(d, "rootonly"), 0o700)
                text = conf_text(d, port, "").replace(
                    "data-dir = %s/store" % d, "data-dir = %s/rootonly" % d)
                text = "[General]\nuser = nobody\n" + text
                path, rc, out = check(d, "user", text)
                want = "%s:%d: [Store] data-dir: " % (path, line_of(text, "data-dir"))
                c.ok(rc == 2 and want in out and "not writable by user nobody" in out,
                     "a data-dir [General] user cannot write fails the check: %d %s"
                     % (rc, out.strip()))
            except KeyError:
                print("skip: no user nobody for the [General] user case")
        else:
            print("skip: not root, the [General] user case needs root")
    finally:
        subprocess.run(["rm", "-rf", d])
    c.finish()


main()
