#!/bin/bash
# Admin API (issue 5, DESIGN §6) against the real skydns with real curl and
# dig: the original's examples, every route and error status, auth in the
# header and the query, IPv6 records, updates, deletes, health status,
# concurrent writers, /metrics as Prometheus text moving with traffic.
. "$(dirname "$0")/lib.sh"

TOKEN=s3cr3t-token
APORT=$(free_port)
A=http://127.0.0.1:$APORT
CONF_EXTRA="[Api]
api-enable = true
api-address = 127.0.0.1:$APORT
api-token = $TOKEN"
write_conf "dns-domains = skydns.local.%example.test." "workers = 2"
skydns_start
wait_for "api listening" 5000 curl -sf -o /dev/null "$A/health" || fail "api up"

# api METHOD PATH [BODY]: sets $CODE and $BODY (token in the header).
api() {
	local args=(-s -m 10 -o "$T/body" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $TOKEN")
	[ $# -ge 3 ] && args+=(--data-binary "$3")
	CODE=$(curl "${args[@]}" "$A$2")
	BODY=$(cat "$T/body")
}

# The original's examples, as written.
api POST /skydns/api/cctv2 '{"type":"A","ips":["192.168.10.1","192.168.10.2","192.168.10.3"]}'
assert_eq "POST cctv2 -> 201" 201 "$CODE"
assert_eq "POST returns the record and what it added" \
	'{"name":"cctv2.skydns.local.","records":[{"type":"A","ttl":30,"mode":"default","ips":["192.168.10.1","192.168.10.2","192.168.10.3"]}],"added":[{"name":"cctv2.skydns.local.","type":"A","ttl":30,"value":"192.168.10.1"},{"name":"cctv2.skydns.local.","type":"A","ttl":30,"value":"192.168.10.2"},{"name":"cctv2.skydns.local.","type":"A","ttl":30,"value":"192.168.10.3"}],"removed":[]}' \
	"$BODY"
assert_eq "dig cctv2 answers all 3 right after the reply" \
	"192.168.10.1 192.168.10.2 192.168.10.3" "$(dig_short cctv2.skydns.local | sort | xargs)"
CODE=$(curl -s -o "$T/body" -w '%{http_code}' -X POST -d '{"type":"cname","alias":"tv1"}' \
	"$A/skydns/api/cctv2?token=$TOKEN")
assert_eq "cname alias with ?token= -> 201" 201 "$CODE"
assert_eq "tv1 is a CNAME of cctv2" "cctv2.skydns.local." "$(dig_short tv1.skydns.local CNAME)"
assert_contains "dig tv1 chases to the addresses" "$(dig_short tv1.skydns.local A | xargs)" \
	"cctv2.skydns.local. 192.168.10."

# Reads.
api GET /skydns/api/cctv2.skydns.local
assert_eq "GET full name" 200 "$CODE"
assert_contains "GET body" "$BODY" '"ips":["192.168.10.1","192.168.10.2","192.168.10.3"]'
api GET /skydns/api/
assert_eq "GET list" 200 "$CODE"
assert_eq "list holds cctv2 and tv1" "cctv2.skydns.local. tv1.skydns.local." \
	"$(echo "$BODY" | $PY -c 'import json,sys; print(" ".join(sorted(n["name"] for n in json.load(sys.stdin)["names"])))')"
api GET /skydns/api/nosuch
assert_eq "GET unknown name -> 404" 404 "$CODE"
assert_contains "404 is JSON error" "$BODY" '"error":'

# Auth.
CODE=$(curl -s -o "$T/body" -w '%{http_code}' "$A/skydns/api/")
assert_eq "no token -> 401" 401 "$CODE"
assert_contains "401 body" "$(cat "$T/body")" '"error":'
CODE=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer wrong" "$A/skydns/api/")
assert_eq "bad bearer -> 401" 401 "$CODE"
CODE=$(curl -s -o /dev/null -w '%{http_code}' "$A/skydns/api/?token=${TOKEN}x")
assert_eq "bad ?token= -> 401" 401 "$CODE"
CODE=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${TOKEN:0:5}" "$A/skydns/stats")
assert_eq "token prefix -> 401" 401 "$CODE"
CODE=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{"type":"A","ips":["10.9.9.9"]}' \
	-H "Authorization: Bearer wrong" "$A/skydns/api/sneaky")
assert_eq "write with bad token -> 401" 401 "$CODE"
assert_eq "... and changed nothing" "" "$(dig_short sneaky.skydns.local)"

# Errors: each leaves the store as it was.
api POST /skydns/api/bad '{"type":"A","ips":["1.2.3.4"]'
assert_eq "invalid JSON -> 400" 400 "$CODE"
assert_contains "invalid JSON message" "$BODY" '"error":"invalid JSON'
api POST /skydns/api/bad '{"type":"A","ips":["1.2.3.400"]}'
assert_eq "bad IP -> 400" 400 "$CODE"
api POST /skydns/api/bad '{"type":"A","ips":["10.0.0.1","2001:db8::1"]}'
assert_eq "v6 address in type A -> 400" 400 "$CODE"
api POST /skydns/api/bad '{"type":"HINFO","ips":["10.0.0.1"]}'
assert_eq "unknown type -> 400" 400 "$CODE"
api POST /skydns/api/bad '[1,2]'
assert_eq "non-object body -> 400" 400 "$CODE"
api POST /skydns/api/bad ''
assert_eq "empty POST body -> 400" 400 "$CODE"
api POST /skydns/api/www.example.com. '{"type":"A","ips":["10.0.0.1"]}'
assert_eq "absolute name outside the domains -> 400" 400 "$CODE"
assert_eq "bad name never written" "NXDOMAIN" "$(dig_rcode bad.skydns.local A)"
api POST /skydns/api/cctv2 '{"type":"A","ips":["192.168.10.4","192.168.10.1"]}'
assert_eq "POST an existing address -> 409" 409 "$CODE"
assert_eq "409 added nothing (not even the new one)" 3 "$(dig_short cctv2.skydns.local | wc -l)"
api POST /skydns/api/tv1 '{"type":"A","ips":["10.1.1.1"]}'
assert_eq "A at a CNAME name -> 409" 409 "$CODE"
api PATCH /skydns/api/cctv2 '{}'
assert_eq "PATCH -> 405" 405 "$CODE"
api POST /skydns/api/ '{"type":"A","ips":["10.0.0.1"]}'
assert_eq "POST on the list -> 405" 405 "$CODE"
api GET /skydns/nothing
assert_eq "unknown /skydns route -> 404" 404 "$CODE"
CODE=$(curl -s -o /dev/null -w '%{http_code}' "$A/nothing")
assert_eq "unknown route -> 404" 404 "$CODE"
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$T/big"
CODE=$(curl -s -m 20 -o "$T/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
	--data-binary @"$T/big" "$A/skydns/api/big")
assert_eq "2 MiB body -> 413" 413 "$CODE"
$PY -c 'import json; print(json.dumps({"type":"A","ips":["10.%d.%d.%d" % (i>>16, (i>>8)&255, i&255) for i in range(1001)]}))' >"$T/many"
api POST /skydns/api/many "$(cat "$T/many")"
assert_eq "1001 addresses -> 413" 413 "$CODE"
assert_eq "server alive after errors" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$A/health")"

# IPv6, modes, ttl.
api POST /skydns/api/v6 '{"type":"AAAA","ips":["2001:db8::1","2001:db8::2"],"ttl":120,"mode":"random-one"}'
assert_eq "POST AAAA -> 201" 201 "$CODE"
assert_contains "mode and ttl stored" "$BODY" '"ttl":120,"mode":"random-one"'
assert_eq "random-one: one AAAA per answer" 1 "$(dig_short v6.skydns.local AAAA | wc -l)"
assert_contains "AAAA ttl is 120" "$(dig +noall +answer -p "$PORT" @127.0.0.1 v6.skydns.local AAAA)" "120"
# Per-name mode over the API: hone-one while the domain default is all addresses.
api POST /skydns/api/sticky '{"type":"A","ips":["10.5.0.1","10.5.0.2","10.5.0.3","10.5.0.4"],"mode":"hone-one"}'
assert_eq "POST hone-one -> 201" 201 "$CODE"
assert_contains "mode hone-one stored" "$BODY" '"mode":"hone-one"'
STICKY=$(for i in 1 2 3 4 5 6; do dig_short sticky.skydns.local; done | sort | uniq -c | xargs)
assert_contains "hone-one: 6 answers, one address, the same each time ($STICKY)" "$STICKY" "6 10.5.0."
assert_eq "default mode still answers all" 3 "$(dig_short cctv2.skydns.local | wc -l)"
api PUT /skydns/api/sticky '{"type":"A","ips":["10.5.0.1","10.5.0.2","10.5.0.3","10.5.0.4"],"mode":"default"}'
assert_eq "PUT back to default -> 200" 200 "$CODE"
assert_eq "default mode: all 4 again" 4 "$(dig_short sticky.skydns.local | wc -l)"
api POST /skydns/api/badmode '{"type":"A","ips":["10.5.0.1"],"mode":"sometimes"}'
assert_eq "unknown mode -> 400" 400 "$CODE"

# PUT update / replace.
api PUT /skydns/api/cctv2 '{"type":"A","update":{"192.168.10.1":"192.168.10.9"}}'
assert_eq "PUT update -> 200" 200 "$CODE"
assert_eq "dig sees the new address" "192.168.10.2 192.168.10.3 192.168.10.9" \
	"$(dig_short cctv2.skydns.local | sort | xargs)"
api PUT /skydns/api/cctv2 '{"type":"A","update":{"192.168.10.1":"192.168.10.8"}}'
assert_eq "PUT update of a missing address -> 404" 404 "$CODE"
api PUT /skydns/api/cctv2 '{"type":"A","update":{"192.168.10.2":"192.168.10.7","192.168.10.77":"192.168.10.6"}}'
assert_eq "PUT update with one missing -> 404" 404 "$CODE"
assert_eq "... and the other was not applied" "192.168.10.2 192.168.10.3 192.168.10.9" \
	"$(dig_short cctv2.skydns.local | sort | xargs)"
api PUT /skydns/api/repl '{"type":"A","ips":["10.2.0.1","10.2.0.2"]}'
api PUT /skydns/api/repl '{"type":"A","ips":["10.2.0.3"]}'
assert_eq "PUT ips replaces the set" "10.2.0.3" "$(dig_short repl.skydns.local | xargs)"

# Other types.
api POST /skydns/api/_http._tcp.web '{"type":"SRV","target":"cctv2","ports":[8080],"priority":5,"weight":7}'
assert_eq "POST SRV -> 201" 201 "$CODE"
assert_eq "dig SRV" "5 7 8080 cctv2.skydns.local." "$(dig_short _http._tcp.web.skydns.local SRV)"
api POST /skydns/api/info '{"type":"TXT","text":"hello world"}'
assert_eq "POST TXT -> 201" 201 "$CODE"
assert_eq "dig TXT" '"hello world"' "$(dig_short info.skydns.local TXT)"
api POST /skydns/api/mail.example.test '{"type":"MX","host":"mx1","priority":10}'
assert_eq "POST MX in the second domain -> 201" 201 "$CODE"
assert_eq "dig MX" "10 mx1.skydns.local." "$(dig_short mail.example.test MX)"
api POST /skydns/api/9.10.168.192.in-addr.arpa.skydns.local. '{"type":"PTR","host":"cctv2"}'
assert_eq "POST PTR -> 201" 201 "$CODE"

# DELETE.
api DELETE /skydns/api/cctv2 '{"ips":["192.168.10.2"]}'
assert_eq "DELETE one ip -> 200" 200 "$CODE"
assert_eq "dig after DELETE ip" "192.168.10.3 192.168.10.9" "$(dig_short cctv2.skydns.local | sort | xargs)"
api DELETE /skydns/api/cctv2 '{"ips":["192.168.10.3","192.168.10.55"]}'
assert_eq "DELETE with a missing ip -> 404" 404 "$CODE"
assert_eq "... deleted nothing" 2 "$(dig_short cctv2.skydns.local | wc -l)"
api DELETE /skydns/api/info
assert_eq "DELETE whole name -> 200" 200 "$CODE"
assert_eq "deleted name is NXDOMAIN" NXDOMAIN "$(dig_rcode info.skydns.local TXT)"
api DELETE /skydns/api/info
assert_eq "DELETE again -> 404" 404 "$CODE"

# Health status.
api PUT /skydns/status/192.168.10.9 '{"status":"DOWN"}'
assert_eq "PUT status DOWN -> 200" 200 "$CODE"
assert_eq "DOWN address left out of the answer" "192.168.10.3" "$(dig_short cctv2.skydns.local | xargs)"
api GET /skydns/status/
assert_contains "GET status lists it" "$BODY" '"ip":"192.168.10.9","status":"DOWN"'
api PUT /skydns/status/192.168.10.9 '{"status":"UP"}'
assert_eq "dig after UP" "192.168.10.3 192.168.10.9" "$(dig_short cctv2.skydns.local | sort | xargs)"
api PUT /skydns/status/192.168.10.9 '{"status":"SIDEWAYS"}'
assert_eq "bad status -> 400" 400 "$CODE"
api PUT /skydns/status/not-an-ip '{"status":"UP"}'
assert_eq "bad status ip -> 400" 400 "$CODE"

# Concurrent writers: 8 clients x 50 distinct names; none may be lost.
for w in 0 1 2 3 4 5 6 7; do
	(
		for i in $(seq 0 49); do
			curl -s -m 10 -o /dev/null -w '%{http_code}\n' -X POST -H "Authorization: Bearer $TOKEN" \
				-d "{\"type\":\"A\",\"ips\":[\"10.7.$w.$i\"]}" "$A/skydns/api/c$w-$i"
		done >"$T/conc.$w"
	) &
	LIB_PIDS+=($!)
done
wait "${LIB_PIDS[@]}"
assert_eq "400 concurrent POSTs all 201" 400 "$(cat "$T"/conc.* | grep -c '^201$')"
api GET /skydns/api/
assert_eq "all 400 names listed" 400 \
	"$(echo "$BODY" | $PY -c 'import json,sys; print(sum(1 for n in json.load(sys.stdin)["names"] if n["name"].startswith("c") and "-" in n["name"]))')"
assert_eq "a random one answers in DNS" "10.7.5.37" "$(dig_short c5-37.skydns.local)"

# Stats and metrics.
api GET /skydns/stats
assert_eq "stats -> 200" 200 "$CODE"
SIZE=$(echo "$BODY" | $PY -c 'import json,sys; print(json.load(sys.stdin)["domainSize"])')
assert_true "stats domainSize counts the names ($SIZE)" [ "$SIZE" -ge 405 ]

# parse_metrics: Prometheus text exposition; prints "name{labels} value" lines, exits 1 on a bad line.
parse_metrics() {
	$PY -c '
import re, sys
line_re = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*=\"[^\"]*\"(,[a-zA-Z_][a-zA-Z0-9_]*=\"[^\"]*\")*)?\})? (-?[0-9.eE+]+|NaN|[+-]Inf)$")
types = {}
for l in sys.stdin.read().splitlines():
    if l.startswith("# TYPE "):
        _, _, n, t = l.split(" ", 3)
        assert t in ("counter", "gauge", "histogram", "summary", "untyped"), l
        types[n] = t
        continue
    if l.startswith("#") or not l:
        continue
    m = line_re.match(l)
    base = re.sub(r"_(bucket|sum|count)$", "", m.group(1)) if m else ""
    if not m or (m.group(1) not in types and types.get(base) not in ("histogram", "summary")):
        print("BAD LINE: " + l); sys.exit(1)
    print(l)
'
}
CODE=$(curl -s -o "$T/m1" -w '%{http_code}' "$A/metrics")
assert_eq "/metrics without a token -> 200" 200 "$CODE"
metrics_ok() { parse_metrics <"$1" >/dev/null; }
assert_true "/metrics parses" metrics_ok "$T/m1"
Q1=$(parse_metrics <"$T/m1" | sed -n 's/^skydns_queries_total{proto="udp"} //p')
for i in $(seq 1 10); do dig_short cctv2.skydns.local >/dev/null; done
curl -s -o "$T/m2" "$A/metrics"
Q2=$(parse_metrics <"$T/m2" | sed -n 's/^skydns_queries_total{proto="udp"} //p')
assert_true "udp query counter moved by >= 10 ($Q1 -> $Q2)" [ "$Q2" -ge $((Q1 + 10)) ]
assert_contains "metrics has type counters" "$(cat "$T/m2")" 'skydns_queries_by_type_total{type="A"}'
assert_contains "metrics has store names" "$(cat "$T/m2")" 'skydns_store_names '
assert_contains "metrics has generation" "$(cat "$T/m2")" 'skydns_store_generation '
assert_contains "metrics has build info" "$(cat "$T/m2")" 'skydns_build_info{version="'
SZ=$(parse_metrics <"$T/m2" | sed -n 's/^skydns_store_size_bytes //p')
assert_true "store size is data.mdb's size ($SZ)" [ "$SZ" = "$(stat -c %s "$T/data/data.mdb" 2>/dev/null || echo none)" ]

# The latency histogram: cumulative buckets in le order, +Inf = _count, moved by the 10
# UDP and 5 TCP answers in between, and a sum that is a plausible time.
hist_check() { # before after
	$PY - "$1" "$2" <<'PYEOF'
import re, sys
def hist(path):
    b, s, c = [], None, None
    for l in open(path):
        m = re.match(r'^skydns_request_duration_seconds_bucket\{le="([^"]+)"\} (\d+)$', l)
        if m:
            b.append((float(m.group(1)), int(m.group(2))))
        elif l.startswith("skydns_request_duration_seconds_sum "):
            s = float(l.split()[1])
        elif l.startswith("skydns_request_duration_seconds_count "):
            c = int(l.split()[1])
    return b, s, c
b1, s1, c1 = hist(sys.argv[1])
b2, s2, c2 = hist(sys.argv[2])
les = [le for le, _ in b2]
counts = [n for _, n in b2]
ok = (len(b2) == 16 and les == sorted(les) and les[-1] == float("inf") and
      counts == sorted(counts) and counts[-1] == c2 and c2 >= c1 + 15 and
      0 < s2 - s1 < 15 * 1.0)
print("buckets", b2, "sum", s1, s2, "count", c1, c2)
sys.exit(0 if ok else 1)
PYEOF
}
curl -s -o "$T/h1" "$A/metrics"
for i in $(seq 1 10); do dig_short cctv2.skydns.local >/dev/null; done
for i in $(seq 1 5); do dig_short cctv2.skydns.local +tcp >/dev/null; done
curl -s -o "$T/h2" "$A/metrics"
assert_true "latency histogram: cumulative, +Inf = count, moved by 15" hist_check "$T/h1" "$T/h2"
R1=$(parse_metrics <"$T/m2" | sed -n 's/^skydns_api_requests_total{code="404"} //p')
api GET /skydns/api/nosuch-either
curl -s -o "$T/m3" "$A/metrics"
R2=$(parse_metrics <"$T/m3" | sed -n 's/^skydns_api_requests_total{code="404"} //p')
assert_eq "api 404 counter moved by 1 ($R1 -> $R2)" $((R1 + 1)) "$R2"

# Most-asked names: exact while the per-worker tables are not full; case-insensitive.
for i in $(seq 1 25); do echo "hot1.skydns.local"; done >"$T/hot"
for i in $(seq 1 10); do echo "HoT2.skydns.local"; echo "hot2.skydns.local"; done >>"$T/hot"
dig +short +time=2 +tries=2 -p "$PORT" @127.0.0.1 -f "$T/hot" >/dev/null
# top_counts: "hot1=<count>/<error> hot2=<count>/<error>" from GET /skydns/stats/top/1000.
top_counts() {
	curl -s -H "Authorization: Bearer $TOKEN" "$A/skydns/stats/top/1000" | $PY -c '
import json, sys
t = {e["name"]: e for e in json.load(sys.stdin)["top"]}
print(" ".join("%s=%s/%s" % (n, t[n + ".skydns.local."]["count"], t[n + ".skydns.local."]["error"]) if n + ".skydns.local." in t else n + "=none" for n in ("hot1", "hot2")))'
}
# Each worker publishes on its own tick: poll until both have (bounded by wait_for).
top_settled() { [ "$(top_counts)" = "hot1=25/0 hot2=20/0" ]; }
wait_for "top names published by every worker" 3000 top_settled
assert_eq "top counts hot1 25, hot2 20 (both cases), error 0" "hot1=25/0 hot2=20/0" "$(top_counts)"
api GET /skydns/stats/top/1
assert_eq "top/1 -> 200" 200 "$CODE"
assert_eq "top/1 has one entry" 1 "$(echo "$BODY" | $PY -c 'import json,sys; print(len(json.load(sys.stdin)["top"]))')"
TOPS=$(curl -s -H "Authorization: Bearer $TOKEN" "$A/skydns/stats/top/50" | $PY -c '
import json, sys
c = [e["count"] for e in json.load(sys.stdin)["top"]]
print("sorted" if c == sorted(c, reverse=True) and len(c) >= 3 else "unsorted %s" % c)')
assert_eq "top/50 sorted by count" sorted "$TOPS"
for bad in 0 1001 abc -1 5x; do
	api GET "/skydns/stats/top/$bad"
	assert_eq "top/$bad -> 400" 400 "$CODE"
done
api POST /skydns/stats/top/5 '{}'
assert_eq "POST top -> 405" 405 "$CODE"
CODE=$(curl -s -o /dev/null -w '%{http_code}' "$A/skydns/stats/top/5")
assert_eq "top without token -> 401" 401 "$CODE"

# Health and readiness; draining flips /ready to 503 while DNS still answers.
assert_eq "/health" '{"status":"ok"}' "$(curl -s "$A/health")"
assert_eq "/ready 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$A/ready")"
kill -TERM "$SKY_PID"
wait_for "/ready 503 while draining" 3000 \
	sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' $A/ready)\" = 503 ]" &&
	pass "/ready 503 while draining" || fail "/ready 503 while draining"
skydns_stop

# A non-loopback address without a token refuses to start.
CONF_EXTRA="[Api]
api-enable = true
api-address = 0.0.0.0:$APORT"
write_conf
: >"$LOG"
"$SKYDNS_BIN" -config-file "$CONF" >>"$LOG" 2>&1 &
P=$!
wait_for "skydns exits" 5000 sh -c "! kill -0 $P 2>/dev/null" && pass "refused to start" || {
	fail "non-loopback without token must refuse to start"
	kill -9 $P
}
wait $P 2>/dev/null
assert_contains "it says why" "$(cat "$LOG")" "api-token"

finish
