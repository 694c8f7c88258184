#!/usr/bin/env python3
"""
Issue 15: logs that read clearly, rotate, and a SIGHUP that says what it did.

- Every line of <log-dir>/skydns.log is logfmt: ts=... level=... prog=skydns
  pid=... comp=... msg="...".
- SIGUSR1 reopens the file after logrotate renamed it; a file renamed without
  a signal (a watcher's, say) is noticed within a second of logging.
- SIGHUP with a rotated api-token restarts the API: the old token stops
  working and the new one works (before: the API silently kept the old token
  while the log said "applied"); a changed workers= is logged as needing a
  restart, and the daemon keeps its workers; log-level = debug applies; a
  SIGHUP that changes nothing does not restart the API.
"""
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

from skytest import SKYDNS, STOP_TIMEOUT, Checks, Skydns, free_port, http_request, \
    wait_api  # noqa: E402

ZONE = "$ORIGIN skydns.local.\n$TTL 60\nwww IN A 10.0.0.10\n"
LINE = re.compile(r'^ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=(error|warn|info|debug) '
                  r'prog=skydns pid=\d+( comp=[a-z0-9_-]+)? msg="([^"\\]|\\.)*"$')
WAIT_S = 20.0
c = Checks()


def wait_for(path, needle, within=WAIT_S):
    end = time.monotonic() + within
    while time.monotonic() < end:
        if os.path.exists(path) and needle in open(path, errors="replace").read():
            return True
        time.sleep(0.05)
    return False


def status_with(api, token):
    return http_request(api, "GET", "/skydns/status/",
                        headers={"Authorization": "Bearer " + token})[0]


def main():
    api = free_port()
    extra = ("[Api]\napi-enable = true\napi-address = 127.0.0.1:%d\napi-token = first-token\n"
             % api)
    with Skydns(ZONE, workers=2, extra_conf=extra) as sky:
        logs = os.path.join(sky.dir, "logs")
        os.mkdir(logs)
        conf = open(sky.conf).read().replace(
            "log-to-stdio = true", "log-to-stdio = false\nlog-dir = %s" % logs)
        open(sky.conf, "w").write(conf)
        log = os.path.join(logs, "skydns.log")
        sky.start()
        c.ok(wait_api(api), "API up")
        c.ok(wait_for(log, "serving on"), "the start is logged to log-dir")

        # A SIGHUP that changes nothing the API reads leaves the API alone (before: a
        # whole-array compare of dns-domains saw a change every time and restarted it).
        sky.proc.send_signal(signal.SIGHUP)
        c.ok(wait_for(log, "reload: config"), "an unchanged reload is logged")
        c.ok("API restarted" not in open(log).read(),
             "an unchanged [Api] is not restarted: %s"
             % [x for x in open(log).read().splitlines() if "reload" in x])

        # Token rotation by SIGHUP.
        c.eq(status_with(api, "first-token"), 200, "the first token works")
        open(sky.conf, "w").write(
            conf.replace("first-token", "second-token").replace("workers = 2", "workers = 3")
            .replace("log-level = info", "log-level = debug"))
        sky.proc.send_signal(signal.SIGHUP)
        c.ok(wait_for(log, "API restarted with the new settings"), "the reload is logged")
        c.ok(wait_api(api), "API up after the reload")
        c.eq(status_with(api, "second-token"), 200, "the rotated token works after SIGHUP")
        c.ok(status_with(api, "first-token") in (401, 403),
             "the old token is refused after SIGHUP")
        text = open(log).read()
        c.ok("API restarted with the new settings" in text, "the API restart is logged")
        c.ok(re.search(r'level=warn .*applied, except \[Dns\] workers: these need a restart',
                       text), "the workers change is logged as needing a restart")
        c.ok(len([t for t in os.listdir("/proc/%d/task" % sky.proc.pid)]) >= 2,
             "skydns still runs")

        # SIGUSR1 after a rename: a new file at the same path.
        os.rename(log, log + ".1")
        sky.proc.send_signal(signal.SIGUSR1)
        c.ok(wait_for(log, "reopened"), "SIGUSR1 reopens skydns.log")
        n1 = open(log + ".1").read().count("\n")
        sky.proc.send_signal(signal.SIGHUP)
        c.ok(wait_for(log, "reload: config"), "after SIGUSR1 lines go to the new file")
        c.eq(open(log + ".1").read().count("\n"), n1, "nothing more lands in the rotated file")

        # Renamed without a signal: noticed at the next line after a second.
        os.rename(log, log + ".2")
        time.sleep(1.2)
        sky.proc.send_signal(signal.SIGHUP)  # this line may still go to .2; it reopens
        time.sleep(0.3)
        sky.proc.send_signal(signal.SIGHUP)
        c.ok(wait_for(log, "reload: config"), "a rename without SIGUSR1 is noticed too")

        sky.stop()
        all_lines = []
        for name in sorted(os.listdir(logs)):
            all_lines += open(os.path.join(logs, name), errors="replace").read().splitlines()
        bad = [line for line in all_lines if not LINE.match(line)]
        c.ok(len(all_lines) > 10 and not bad,
             "every one of %d lines is logfmt; not: %s" % (len(all_lines), bad[:3]))
        c.ok(any("comp=reload" in line for line in all_lines), "lines carry their component")
        c.ok(any("comp=shutdown" in line for line in all_lines), "the shutdown is logged")
        print("\n".join(all_lines[:6] + ["..."] + all_lines[-4:]))
    c.finish()


main()
