"""
Issue 11: etcd username/password auth ([Etcd] etcd-username, etcd-password).
A real etcd with auth enabled and simple tokens that expire after 2 s:
  - the watcher authenticates, reads and watches (answers appear)
  - after the token expired, changes still arrive (a new token per connection)
  - a watcher SIGKILLed after expiry resumes with a fresh token
  - a wrong password: no data, /ready stays 503, the log says the credentials were refused
"""
import json
import os
import shutil
import signal
import sys

sys.path.insert(0, os.path.dirname(__file__))
import etcdlib  # noqa: E402
import skytest  # noqa: E402
from dns.rcode import NOERROR  # noqa: E402

D = "skydns.local."
c = skytest.Checks()
root = etcdlib.tempdir()
etcd = etcdlib.Etcd(root, ["--auth-token", "simple", "--auth-token-ttl", "2"])
good = etcdlib.Skydns(os.path.join(root, "good"), etcd.url,
                      etcd_extra="etcd-username = root\netcd-password = s3cret")
bad = etcdlib.Skydns(os.path.join(root, "bad"), etcd.url,
                     etcd_extra="etcd-username = root\netcd-password = wrong")


def answers(sky, name, want, deadline):
    return etcdlib.wait_for(lambda: sky.answer(name + "." + D, "A") == want, deadline)


try:
    etcd.start()
    etcd.ctl("user", "add", "root:s3cret")
    etcd.ctl("auth", "enable")
    etcd.user = "root:s3cret"
    etcd.put("/skydns/local/skydns/a/x", json.dumps({"host": "10.0.0.1"}))
    good.start()
    c.ok(answers(good, "a", (NOERROR, ["10.0.0.1"]), 10) is not None,
         "authenticated full read answers: %r" % (good.answer("a." + D),))
    etcd.put("/skydns/local/skydns/b/x", json.dumps({"host": "10.0.0.2"}))
    c.ok(answers(good, "b", (NOERROR, ["10.0.0.2"]), 5) is not None,
         "authenticated watch delivers a put")
    # Past the token's 2 s life: the open watch, or a reconnect with a new token, goes on.
    etcdlib.wait_for(lambda: False, 3)
    etcd.put("/skydns/local/skydns/c/x", json.dumps({"host": "10.0.0.3"}))
    c.ok(answers(good, "c", (NOERROR, ["10.0.0.3"]), 10) is not None,
         "a put after the token expired arrives")
    pid = good.watcher_pid()
    os.kill(pid, signal.SIGKILL)
    etcd.put("/skydns/local/skydns/d/x", json.dumps({"host": "10.0.0.4"}))
    c.ok(answers(good, "d", (NOERROR, ["10.0.0.4"]), 10) is not None,
         "a restarted watcher authenticates again and catches up")
    c.ok("resumed from revision" in good.log(), "it resumed (no re-read)")
    good.stop()

    bad.start()
    etcdlib.wait_for(lambda: "authenticate as root" in bad.log(), 10)
    c.ok("authenticate as root" in bad.log(), "refused credentials are logged")
    c.ok("s3cret" not in bad.log() and "wrong" not in bad.log(), "no password in the log")
    c.eq(bad.ready(), 503, "wrong password: not ready")
    c.eq(bad.answer("a." + D, "A")[1], [], "wrong password: no etcd data")
except Exception as e:  # a harness failure is a test failure, with the logs
    c.ok(False, "exception: %r" % e)
finally:
    good.stop()
    bad.stop()
    etcd.stop()
    if c.failed:
        for s in (good, bad):
            if os.path.exists(s.logpath):
                print("---- %s ----\n%s" % (s.logpath, s.log()[-4000:]))
    shutil.rmtree(root, ignore_errors=True)
c.finish()
