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
api-token = $TOKEN"
write_conf
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
assert_eq "-list prints 2 lines" 2 "$(echo "$OUT" | wc -l)"
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
for flag in -addr -token -list -show -domain -method -ips -alias -updates -type -status -json; do
	assert_contains "-h explains $flag" "$OUT" "  $flag"
done

finish
