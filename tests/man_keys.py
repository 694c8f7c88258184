#!/usr/bin/env python3
"""
man_keys.py SRC: skydns.conf(5) documents every key the parser accepts.

Reads the key table (keys[]) and the section table (sections[]) of
conf/conf.c, and the ".TP / .B key" entries of docs/man/skydns.conf.5 with
their "Alias:" and "Default:" lines, then compares (section, name) pairs
both ways: a key the parser accepts but the page does not document fails,
and so does a documented key the parser rejects. Each entry must name the
key by its canonical spelling (the first of NAMES()) and state a default.
Ends with an "N passed, N failed" line; exit 1 on any failure.
"""
import re
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "."
conf_c = open(src + "/conf/conf.c").read()
page = open(src + "/docs/man/skydns.conf.5").read()
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL: " + what)


# sections[] = {{"Dns", SEC_DNS}, {"SkydnsApi", SEC_API}, ...}: the first
# spelling of an id is its canonical name, as the page's ".SS" headings use.
sec_name = {}
table = re.search(r"sections\[\]\s*=\s*\{(.*?)\n\};", conf_c, re.S)
check(table is not None, "conf.c: sections[] table not found")
for name, sid in re.findall(r'\{"(\w+)",\s*(SEC_\w+)\}', table.group(1) if table else ""):
    sec_name.setdefault(sid, name)

# keys[] = {{SEC_DNS, NAMES("dns-domains", "dns-domain"), set_domains, ...}, ...}
accepted = {}  # (section, name) -> canonical name
canonical = set()
table = re.search(r"keydef_t keys\[\]\s*=\s*\{(.*?)\n\};", conf_c, re.S)
check(table is not None, "conf.c: keys[] table not found")
for sid, names in re.findall(r"\{\s*(SEC_\w+),\s*NAMES\(([^)]*)\)", table.group(1) if table else ""):
    names = re.findall(r'"([^"]+)"', names)
    sec = sec_name.get(sid, sid)
    canonical.add((sec, names[0]))
    for n in names:
        accepted[(sec, n.lower())] = names[0]
check(len(canonical) >= 40, "conf.c: only %d keys parsed from keys[]" % len(canonical))


def unroff(s):
    return s.replace("\\-", "-").replace("\\fB", "").replace("\\fR", "").replace("\\fI", "")


# The page: ".SS "[Dns]"", then entries ".TP" / ".B key" / "Alias: \fBa\fR, \fBb\fR." /
# "Default: ...".
documented = {}  # (section, name) -> (canonical, is_alias)
lines = page.split("\n")
sec = None
for i, line in enumerate(lines):
    m = re.match(r'^\.SS\s+"?\[(\w+)\]"?', line)
    if m:
        sec = m.group(1)
        continue
    if line != ".TP" or i + 1 >= len(lines) or not lines[i + 1].startswith(".B "):
        continue
    if sec is None:
        continue  # .TP lists outside the key sections (FILES)
    key = unroff(lines[i + 1][3:].strip())
    body = []
    for l in lines[i + 2:]:
        if l.startswith(".TP") or l.startswith(".SS") or l.startswith(".SH"):
            break
        body.append(l)
    check(any(l.startswith("Default:") for l in body),
          "page: [%s] %s has no \"Default:\" line" % (sec, key))
    documented[(sec, key.lower())] = (key, False)
    for l in body:
        if l.startswith("Alias"):
            for a in re.findall(r"\\fB(.+?)\\fR", l):
                documented[(sec, unroff(a).lower())] = (key, True)

for (s, n), canon in sorted(accepted.items()):
    check((s, n) in documented,
          "[%s] %s: accepted by conf/conf.c but not documented in docs/man/skydns.conf.5"
          % (s, n))
for (s, n), (key, is_alias) in sorted(documented.items()):
    check((s, n) in accepted,
          "[%s] %s: documented in docs/man/skydns.conf.5 but conf/conf.c does not accept it"
          % (s, n))
    if (s, n) in accepted and not is_alias:
        check(accepted[(s, n)] == key,
              "[%s] %s: the page's entry should be named %s (the canonical spelling)"
              % (s, key, accepted[(s, n)]))

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
