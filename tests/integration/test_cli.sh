#!/bin/bash
# skydns-cli (issue 5) against the real skydns: -list/-show in the
# original's format, create/update/delete, -status, -json, and a clear
# non-zero exit for a bad token, a refused request and an unreachable server.
. "$(dirname "$0")/lib.sh"

CLI=$SKYDNS_BUILD/cli/skydns-cli
TOKEN=cli-token
APORT=$(free_port)
CONF_EXTRA="[Api]
api-enable = true
api-address = 127.0.0.1:$APORT
api-token = $TOKEN
api-search = svc"
write_conf
# A TXT record of two strings, which only a zone file can write.
printf '$ORIGIN skydns.local.\ntwo TXT "first part" "second, part"\n' >"$T/zone"
"$SKYDNS_BIN" -config-file "$CONF" -import "$T/zone" >/dev/null 2>&1 || fail "import"
skydns_start
wait_for "api listening" 5000 curl -sf -o /dev/null "http://127.0.0.1:$APORT/health" || fail "api up"
export SKYDNS_API_ADDR=127.0.0.1:$APORT SKYDNS_API_TOKEN=$TOKEN

# cli ARGS...: sets $OUT (stdout), $ERR (stderr), $RC.
cli() {
	"$CLI" "$@" >"$T/out" 2>"$T/err"
	RC=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
}

cli -domain cctv2 -method create -ips "192.168.10.1;192.168.10.2"
assert_eq "create exit 0" 0 "$RC"
assert_eq "dig sees the created name" "192.168.10.1 192.168.10.2" \
	"$(dig_short cctv2.skydns.local | sort | xargs)"
cli -domain cctv2 -method create -alias tv1
assert_eq "create alias exit 0" 0 "$RC"
assert_eq "tv1 CNAME" "cctv2.skydns.local." "$(dig_short tv1.skydns.local CNAME)"

cli -show cctv2
assert_eq "-show exit 0" 0 "$RC"
assert_eq "-show line, the original's format" \
	"$(printf 'domain: %56s       val: { type:%s  ips:[%s] }' cctv2.skydns.local. A '192.168.10.1,192.168.10.2')" \
	"$OUT"
cli -list
assert_eq "-list exit 0" 0 "$RC"
assert_eq "-list prints 3 lines (2 written, 1 imported)" 3 "$(echo "$OUT" | wc -l)"
assert_contains "-list has the CNAME" "$OUT" \
	"$(printf 'domain: %56s       val: { type:CNAME  ips:[cctv2.skydns.local.] }' tv1.skydns.local.)"
cli -json -show cctv2
assert_eq "-json is the server's JSON" "cctv2.skydns.local." \
	"$(echo "$OUT" | $PY -c 'import json,sys; print(json.load(sys.stdin)["name"])')"

cli -domain cctv2 -method update -updates "ips:192.168.10.1->192.168.10.5"
assert_eq "update exit 0" 0 "$RC"
assert_eq "dig after update" "192.168.10.2 192.168.10.5" "$(dig_short cctv2.skydns.local | sort | xargs)"
cli -domain cctv2 -method update -updates "ips:192.168.10.1->192.168.10.6"
assert_true "update of a missing ip fails" [ "$RC" -ne 0 ]
assert_contains "... with the server's text" "$ERR" "404"
assert_eq "... in one line" 1 "$(echo "$ERR" | wc -l)"

cli -domain cctv2 -method create -ips "192.168.10.2"
assert_true "duplicate create fails" [ "$RC" -ne 0 ]
assert_contains "409 message" "$ERR" "already has"

cli -status 192.168.10.5 DOWN
assert_eq "-status set exit 0" 0 "$RC"
assert_eq "-status output" "ip: 192.168.10.5  status: DOWN" "$OUT"
assert_eq "DOWN leaves the answer" "192.168.10.2" "$(dig_short cctv2.skydns.local | xargs)"
cli -status 192.168.10.5
assert_eq "-status read" "ip: 192.168.10.5  status: DOWN" "$OUT"

cli -domain cctv2 -method delete -ips "192.168.10.2"
assert_eq "delete ip exit 0" 0 "$RC"
assert_eq "dig after delete ip" "192.168.10.5" "$(dig_short cctv2.skydns.local | xargs)"
cli -domain tv1 -method delete
assert_eq "delete name exit 0" 0 "$RC"
assert_eq "tv1 gone" NXDOMAIN "$(dig_rcode tv1.skydns.local A)"

# Issue 18 item 4: every type the API takes, each write checked with dig.
cli -domain info -method create -type TXT -text "hello world"
assert_eq "create TXT exit 0 ($ERR)" 0 "$RC"
assert_eq "dig TXT" '"hello world"' "$(dig_short info.skydns.local TXT)"
assert_eq "create TXT prints the table, text quoted" \
	"$(printf 'domain: %56s       val: { type:TXT  ips:["hello world"] }' info.skydns.local.)" "$OUT"
cli -show two
assert_eq "a TXT of two strings shows both, quoted and separated" \
	"$(printf 'domain: %56s       val: { type:TXT  ips:["first part" "second, part"] }' two.skydns.local.)" "$OUT"
cli -domain info -method update -type TXT -text "bye"
assert_eq "update TXT exit 0 ($ERR)" 0 "$RC"
assert_eq "dig TXT after update" '"bye"' "$(dig_short info.skydns.local TXT)"
cli -domain info -method delete -type TXT -text "bye"
assert_eq "delete TXT exit 0 ($ERR)" 0 "$RC"
assert_eq "delete prints what went, in the table" \
	"$(printf 'deleted domain: %56s       val: { type:TXT  ips:["bye"] }' info.skydns.local.)" "$OUT"
assert_eq "dig TXT after delete" NXDOMAIN "$(dig_rcode info.skydns.local TXT)"

cli -domain mail -method create -type MX -host mx1 -priority 5
assert_eq "create MX exit 0 ($ERR)" 0 "$RC"
assert_eq "dig MX" "5 mx1.skydns.local." "$(dig_short mail.skydns.local MX)"
assert_eq "MX table" "$(printf 'domain: %56s       val: { type:MX  ips:[5 mx1.skydns.local.] }' mail.skydns.local.)" "$OUT"
cli -domain mail -method update -type MX -host mx2 -priority 7
assert_eq "dig MX after update" "7 mx2.skydns.local." "$(dig_short mail.skydns.local MX)"

cli -domain _http._tcp.web -method create -type SRV -target "10.0.0.1:80:10:5;backend:8080;[2001:db8::1]:443:1"
assert_eq "create SRV exit 0 ($ERR)" 0 "$RC"
assert_eq "dig SRV" "1 10 443 2001-db8--1._http._tcp.web.skydns.local. 10 10 8080 backend.skydns.local. 10 5 80 10-0-0-1._http._tcp.web.skydns.local." \
	"$(dig_short _http._tcp.web.skydns.local SRV | sort | xargs)"
assert_eq "the address target resolves" "10.0.0.1" "$(dig_short 10-0-0-1._http._tcp.web.skydns.local)"
assert_contains "SRV table" "$OUT" "type:SRV  ips:["
cli -domain _http._tcp.web -method delete -type SRV -target "backend:8080"
assert_eq "delete one SRV exit 0 ($ERR)" 0 "$RC"
assert_eq "dig SRV after delete" 2 "$(dig_short _http._tcp.web.skydns.local SRV | wc -l)"
cli -domain _x._tcp.web -method create -type SRV -target "10.0.0.1"
assert_true "a -target without a port fails" [ "$RC" -ne 0 ]
assert_contains "... saying the form" "$ERR" "host:port"

cli -domain 1.0.0.10.in-addr.arpa.skydns.local. -method create -type PTR -host cctv2
assert_eq "create PTR exit 0 ($ERR)" 0 "$RC"
assert_eq "dig PTR" "cctv2.skydns.local." "$(dig_short 1.0.0.10.in-addr.arpa.skydns.local PTR)"
cli -json -domain 1.0.0.10.in-addr.arpa.skydns.local. -method delete -type PTR -host cctv2
assert_eq "-json delete exit 0" 0 "$RC"
assert_eq "-json delete is the server's JSON" "True PTR" \
	"$(echo "$OUT" | $PY -c 'import json,sys; d=json.load(sys.stdin); print(d["deleted"], d["removed"][0]["type"])')"
assert_eq "dig PTR after delete" NXDOMAIN "$(dig_rcode 1.0.0.10.in-addr.arpa.skydns.local PTR)"

cli -domain mail -method delete
assert_eq "bare delete exit 0" 0 "$RC"
assert_eq "bare delete prints the table of what went" \
	"$(printf 'deleted domain: %56s       val: { type:MX  ips:[7 mx2.skydns.local.] }' mail.skydns.local.)" "$OUT"

cli -status 10.99.0.1
assert_eq "-status of an unknown address exit 0 ($ERR)" 0 "$RC"
assert_eq "-status of an unknown address shows UP" "ip: 10.99.0.1  status: UP (no record)" "$OUT"
cli -json -status 10.99.0.1
assert_eq "-json -status of an unknown address" '{"ip":"10.99.0.1","status":"UP","recorded":false}' "$OUT"
cli -status not-an-ip
assert_true "-status of a bad address fails" [ "$RC" -ne 0 ]

# [Api] api-search = svc: the original's "-show name.namespace" finds name.namespace.svc.<domain>.
cli -domain qiyf-nginx-5.default -ips "10.8.0.5"
assert_eq "create name.namespace exit 0 ($ERR)" 0 "$RC"
assert_eq "dig: it lives below svc" "10.8.0.5" "$(dig_short qiyf-nginx-5.default.svc.skydns.local)"
cli -show qiyf-nginx-5.default
assert_eq "-show name.namespace" \
	"$(printf 'domain: %56s       val: { type:A  ips:[10.8.0.5] }' qiyf-nginx-5.default.svc.skydns.local.)" "$OUT"
cli -domain cctv9.skydns.locl -ips "10.8.0.6"
assert_true "a typo of three labels is still refused" [ "$RC" -ne 0 ]
assert_contains "... naming the local domains" "$ERR" "skydns.local."

cli -token wrong -list
assert_true "bad token: non-zero exit" [ "$RC" -ne 0 ]
assert_contains "bad token: says unauthorized" "$ERR" "unauthorized (401)"
SKYDNS_API_TOKEN= cli -list
assert_true "no token: non-zero exit" [ "$RC" -ne 0 ]
cli -addr 127.0.0.1:$(free_port) -list
assert_true "unreachable: non-zero exit" [ "$RC" -ne 0 ]
assert_contains "unreachable: says so" "$ERR" "cannot reach"
assert_eq "unreachable: one line" 1 "$(echo "$ERR" | wc -l)"
cli -domain x -method frobnicate
assert_true "bad -method: non-zero exit" [ "$RC" -ne 0 ]
cli -h
assert_eq "-h exit 0" 0 "$RC"
for flag in -addr -token -list -show -domain -method -ips -alias -updates -type -text -host \
	-priority -weight -target -ttl -status -json; do
	assert_contains "-h explains $flag" "$OUT" "  $flag"
done

finish
