#!/bin/bash
# Transport: UDP and TCP answers from the real daemon, pipelined TCP queries on
# one connection, the TCP idle timeout, two SO_REUSEPORT workers, malformed
# packets (each followed by a liveness check), and memory that stays flat over
# 20k queries.
. "$(dirname "$0")/lib.sh"

cat >"$T/zone" <<'ZONE'
$ORIGIN skydns.local.
$TTL 60
www   IN A     10.0.0.10
www   IN AAAA  fd00::10
db    IN A     10.0.1.1
db    IN A     10.0.1.2
db    IN A     10.0.1.3
api   IN CNAME www
txt   IN TXT   "hello transport"
ZONE

write_conf "workers = 2" "tcp-idle-timeout = 1"
out=$("$SKYDNS_BIN" -config-file "$CONF" -import "$T/zone" 2>&1)
assert_eq "import exit status" 0 $?
assert_contains "import reports the record count" "$out" "imported 7 records"
skydns_start

# --- UDP and TCP ---
assert_eq "UDP A" "10.0.0.10" "$(dig_short www.skydns.local. A)"
assert_eq "UDP AAAA" "fd00::10" "$(dig_short www.skydns.local. AAAA)"
assert_eq "TCP A" "10.0.0.10" "$(dig_short www.skydns.local. A +tcp)"
assert_eq "TCP TXT" '"hello transport"' "$(dig_short txt.skydns.local. TXT +tcp)"
assert_eq "TCP three addresses" "10.0.1.1 10.0.1.2 10.0.1.3" \
	"$(dig_short db.skydns.local. A +tcp | sort | tr '\n' ' ' | sed 's/ $//')"
assert_rcode "UDP NXDOMAIN" nope.skydns.local. A NXDOMAIN
assert_rcode "TCP NXDOMAIN" nope.skydns.local. A NXDOMAIN +tcp

# --- several queries pipelined on one TCP connection, split across writes ---
pipe=$($DNSRAW pipeline 127.0.0.1 "$PORT" www.skydns.local. db.skydns.local. nope.skydns.local. \
	www.skydns.local. txt.skydns.local. 2>&1)
assert_eq "pipelined: five answers" 5 "$(printf '%s\n' "$pipe" | grep -c '^[0-9]')"
assert_contains "pipelined: 1st" "$pipe" "1 NOERROR www.skydns.local. 10.0.0.10"
assert_contains "pipelined: 2nd has 3 addresses" "$pipe" "2 NOERROR db.skydns.local. 10.0.1.1 10.0.1.2 10.0.1.3"
assert_contains "pipelined: 3rd NXDOMAIN" "$pipe" "3 NXDOMAIN nope.skydns.local."
assert_contains "pipelined: 4th" "$pipe" "4 NOERROR www.skydns.local. 10.0.0.10"
assert_contains "pipelined: 5th NODATA" "$pipe" "5 NOERROR txt.skydns.local."

# --- idle TCP connection closed after tcp-idle-timeout (1 s) ---
idle=$($DNSRAW idle 127.0.0.1 "$PORT" 6)
secs=${idle#closed }
assert_contains "idle connection closed" "$idle" "closed"
# The sweep runs every tcp-idle-timeout / 4 (250 ms), so the close comes at
# 1.0..1.25 s; 0.35 s more is for a loaded 2-core machine. A doubled timeout
# (2.0 s) must fail this.
assert_true "idle close after 0.9..1.6 s (got $secs)" \
	$PY -c "import sys; sys.exit(0 if 0.9 <= float('$secs') <= 1.6 else 1)"

# --- two workers: two SO_REUSEPORT sockets each for UDP and TCP, all answering ---
udp_socks=$(ss -Hulnp "sport = :$PORT" | grep -c "pid=$SKY_PID,")
tcp_socks=$(ss -Htlnp "sport = :$PORT" | grep -c "pid=$SKY_PID,")
assert_eq "two UDP sockets" 2 "$udp_socks"
assert_eq "two TCP listeners" 2 "$tcp_socks"
# Each dig uses a fresh source port, so the kernel spreads them over both
# sockets: with one worker dead about half would time out. A second try forgives
# a stall of the machine (CI runs this under TSan beside other tests); with a dead
# worker about a quarter of the digs would still fail.
ok=0
for i in $(seq 1 40); do
	[ "$(dig +short +time=2 +tries=2 -p "$PORT" @127.0.0.1 www.skydns.local. A)" = 10.0.0.10 ] &&
		ok=$((ok + 1))
done
assert_eq "40 queries from 40 source ports all answered" 40 "$ok"

# --- malformed packets, each followed by a liveness check ---
mal=$($DNSRAW malformed 127.0.0.1 "$PORT" 42 60 2>&1)
assert_eq "60 malformed packets, alive after each" "ok 60" "$mal"
assert_eq "still answers after the malformed batch" "10.0.0.10" "$(dig_short www.skydns.local. A +tcp)"

# --- memory: anonymous RSS flat over 20k queries (after a warm-up) ---
rss_anon() {
	awk '/^RssAnon:/ {print $2}' "/proc/$SKY_PID/status"
}
$DNSRAW flood 127.0.0.1 "$PORT" 6000 >/dev/null
before=$(rss_anon)
n=$($DNSRAW flood 127.0.0.1 "$PORT" 20000)
after=$(rss_anon)
assert_true "20000 queries answered (got $n)" [ "$n" -ge 19900 ]
# TSan's shadow memory grows with every page touched: ./dev.sh tsan widens the bound.
slack=${SKYDNS_RSS_SLACK_KB:-1024}
assert_true "RssAnon growth under $slack KiB (before $before, after $after)" \
	[ $((after - before)) -lt "$slack" ]

skydns_stop TERM
assert_eq "SIGTERM exit status" 0 "$SKY_RC"
finish
