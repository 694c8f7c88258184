#!/usr/bin/env python3
"""
Issue 15: a takeover hands over the children too. The old skydns stops its
skydns-watch-etcd before it says RELEASED, the new one starts its own, so
exactly one watcher writes the store at any time; names put into etcd after
the takeover are answered; the API (which cannot be handed over) answers on
the new process.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import etcdlib  # noqa: E402
import skytest  # noqa: E402
from dns.rcode import NOERROR  # noqa: E402

D = "skydns.local."
WAIT_S = 30.0
c = skytest.Checks()


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def watchers_of(log_text):
    return [int(p) for p in re.findall(r"child: started \S+skydns-watch-etcd \(pid (\d+)\)",
                                       log_text)]


def main():
    if not shutil.which("etcd"):
        c.skip("etcd not installed")
    root = etcdlib.tempdir()
    etcd = etcdlib.Etcd(root)
    sky = etcdlib.Skydns(root, etcd.url, domain=D)
    new = None
    try:
        etcd.start()
        etcd.put("/skydns/local/skydns/before/", json.dumps({"host": "10.5.0.1"}))
        sky.start()
        c.ok(etcdlib.wait_for(lambda: sky.answer("before." + D) == (NOERROR, ["10.5.0.1"]),
                              WAIT_S) is not None, "the first watcher syncs")
        old_watcher = sky.watcher_pid()
        c.ok(old_watcher and alive(old_watcher), "the old skydns runs a watcher")

        nlog = os.path.join(root, "new.out")
        out = open(nlog, "w")
        new = subprocess.Popen([skytest.SKYDNS, "-config-file", sky.conf, "-takeover"],
                               stdout=out, stderr=subprocess.STDOUT)
        try:
            rc = sky.proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            rc = None
        c.eq(rc, 0, "the old skydns exits 0 after the takeover")
        c.ok(not alive(old_watcher), "the old skydns stopped its watcher")
        c.ok(etcdlib.wait_for(lambda: watchers_of(open(nlog).read()), WAIT_S) is not None,
             "the new skydns starts its own watcher")
        new_watchers = watchers_of(open(nlog).read())
        c.ok(new_watchers and new_watchers[0] != old_watcher and alive(new_watchers[0]),
             "one new watcher runs (%s, old %d)" % (new_watchers, old_watcher))
        log_old = sky.log()
        text = open(nlog).read()
        c.ok(text.find("child: started") > text.find("takeover: took"),
             "the new watcher starts only after the old one was released")
        c.ok(log_old.rfind("child: skydns-watch-etcd") < log_old.find("takeover: drained"),
             "the old watcher stopped before the old skydns finished")

        etcd.put("/skydns/local/skydns/after/", json.dumps({"host": "10.5.0.2"}))
        c.ok(etcdlib.wait_for(lambda: sky.answer("after." + D) == (NOERROR, ["10.5.0.2"]),
                              WAIT_S) is not None, "a name put after the takeover is answered")
        c.eq(sky.answer("before." + D), (NOERROR, ["10.5.0.1"]), "and the earlier one still")
        c.ok(etcdlib.wait_for(lambda: sky.ready() == 200, WAIT_S) is not None,
             "the new process's API answers /ready 200")
    finally:
        if new is not None:
            rc = skytest.STOP_TIMEOUT
            new.terminate()
            try:
                rc = new.wait(timeout=skytest.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                new.kill()
                new.wait()
            c.eq(rc, 0, "the new skydns exits 0 on SIGTERM")
        sky.stop()
        etcd.stop()
        shutil.rmtree(root, ignore_errors=True)
    c.finish()


main()
