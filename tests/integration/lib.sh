# lib.sh: sourced by every shell integration test. Drives the real skydns on
# loopback with real dig. Provides a temp dir per test (removed on exit, with
# every started process killed), free ports, config writing, start/stop with
# deadlines (no bare sleeps), and assertions that count passes and failures.
# Usage: . "$(dirname "$0")/lib.sh"; ...; finish   (or skip REASON: exit 77)
#
# Every process started here inherits ASAN_OPTIONS/UBSAN_OPTIONS with a
# log_path in $SAN_DIR: finish fails the test on any sanitizer report (from
# skydns, an import run, or a child skydns spawns) and prints it. Stopping
# skydns with TERM or INT asserts exit status 0, and finish stops a daemon
# still running the same way. Ports come from skytest.py's picker: below the
# ephemeral range, recorded per test so parallel tests never share one.

set -u

: "${SKYDNS_BUILD:?set SKYDNS_BUILD to the build directory}"
SKYDNS_BIN=${SKYDNS_BIN:-$SKYDNS_BUILD/server/skydns}
LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3 # Debian's, which has python3-dnspython
DNSRAW="$PY $LIB_DIR/dnsraw.py"

T=$(mktemp -d /tmp/skydns-it.XXXXXX)
# Outside $T is not needed: finish reads the reports before the EXIT trap removes $T.
SAN_DIR=$T/san
mkdir -p "$SAN_DIR"
export SKYDNS_SAN_DIR=$SAN_DIR
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$SAN_DIR/asan"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$SAN_DIR/ubsan:print_stacktrace=1"
case ${TSAN_OPTIONS:-} in
*log_path=*) ;; # ./dev.sh tsan collects TSan reports itself
*) export TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}log_path=$SAN_DIR/tsan" ;;
esac
CONF=$T/skydns.conf
LOG=$T/skydns.log
PORT=
SKY_PID=
LIB_PIDS=()
PASSED=0
FAILED=0

lib_cleanup() {
	local p
	for p in $SKY_PID "${LIB_PIDS[@]}"; do
		kill -9 "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$T"
}
trap lib_cleanup EXIT

[ -x "$SKYDNS_BIN" ] || {
	echo "lib.sh: $SKYDNS_BIN not built" >&2
	exit 1
}

now_ms() {
	date +%s%3N
}

# An unused loopback port, free for both UDP and TCP, below the ephemeral
# range, held for this test ($$ is the test's shell even inside $(...)).
free_port() {
	$PY "$LIB_DIR/skytest.py" free-port $$
}

# write_conf [DNS_LINE...]: a config on 127.0.0.1:$PORT with its store in $T.
# Extra arguments are lines of the [Dns] section; $CONF_EXTRA is appended
# at the end (other sections).
write_conf() {
	[ -n "$PORT" ] || PORT=$(free_port)
	{
		echo "[Dns]"
		echo "dns-addr = 127.0.0.1:$PORT"
		local l d
		# Defaults unless an argument sets the same key.
		for d in "nameservers = 127.0.0.1:9" "shutdown-grace = 1"; do
			for l in "$@"; do
				[ "${l%% *}" = "${d%% *}" ] && continue 2
			done
			echo "$d"
		done
		for l in "$@"; do echo "$l"; done
		echo "[Store]"
		echo "data-dir = $T/data"
		echo "map-size = 256M"
		echo "[Log]"
		echo "log-to-stdio = true"
		echo "log-level = info"
		echo "${CONF_EXTRA:-}"
	} >"$CONF"
}

# dig_short NAME [TYPE] [dig options...]
dig_short() {
	local name=$1 type=${2:-A}
	shift
	[ $# -gt 0 ] && shift
	# One try: a lost reply is a failure to see, not to hide (loopback loses none).
	dig +short +time=3 +tries=1 -p "$PORT" @127.0.0.1 "$@" "$name" "$type" 2>&1
}

# The rcode text of a query: NOERROR, NXDOMAIN, ...
dig_rcode() {
	local name=$1 type=${2:-A}
	shift
	[ $# -gt 0 ] && shift
	dig +time=3 +tries=1 -p "$PORT" @127.0.0.1 "$@" "$name" "$type" 2>&1 |
		sed -n 's/.*status: \([A-Z]*\),.*/\1/p'
}

skydns_alive() {
	[ -n "$SKY_PID" ] && kill -0 "$SKY_PID" 2>/dev/null
}

# Start skydns in the background; wait (10 s at most) until it answers the SOA.
skydns_start() {
	"$SKYDNS_BIN" -config-file "$CONF" "$@" >>"$LOG" 2>&1 &
	SKY_PID=$!
	local deadline=$(($(now_ms) + 10000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		if ! skydns_alive; then
			break
		fi
		if dig +short +time=1 +tries=1 -p "$PORT" @127.0.0.1 skydns.local. SOA 2>/dev/null |
			grep -q hostmaster; then
			return 0
		fi
	done
	echo "skydns did not start answering within 10 s; log:" >&2
	cat "$LOG" >&2
	fail "skydns start"
	finish
}

# skydns_wait: wait (10 s at most) for skydns to exit; its status goes to $SKY_RC.
skydns_wait() {
	SKY_RC=
	[ -n "$SKY_PID" ] || return 0
	local deadline=$(($(now_ms) + 10000))
	while skydns_alive && [ "$(now_ms)" -lt "$deadline" ]; do
		sleep 0.05
	done
	if skydns_alive; then
		echo "skydns did not exit within 10 s" >&2
		kill -9 "$SKY_PID"
	fi
	wait "$SKY_PID" 2>/dev/null
	SKY_RC=$?
	SKY_PID=
}

# skydns_stop [SIGNAL]: signal (default TERM) and wait; the exit status is in $SKY_RC.
# TERM and INT are clean stops: any status but 0 (a crash, LSan's leak exit) fails.
skydns_stop() {
	local sig=${1:-TERM} had=$SKY_PID
	[ -n "$SKY_PID" ] && kill -"$sig" "$SKY_PID" 2>/dev/null
	skydns_wait
	if [ -n "$had" ] && { [ "$sig" = TERM ] || [ "$sig" = INT ]; } && [ "$SKY_RC" != 0 ]; then
		fail "skydns exit status after SIG$sig: $SKY_RC, want 0"
	fi
}

# wait_for DESC TIMEOUT_MS COMMAND...: poll until COMMAND succeeds.
wait_for() {
	local desc=$1 ms=$2
	shift 2
	local deadline=$(($(now_ms) + ms))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		"$@" && return 0
		sleep 0.05
	done
	echo "timed out after ${ms} ms waiting for: $desc" >&2
	return 1
}

pass() {
	PASSED=$((PASSED + 1))
	echo "ok: $1"
}

fail() {
	FAILED=$((FAILED + 1))
	echo "FAIL: $1" >&2
}

# assert_eq DESC EXPECTED ACTUAL
assert_eq() {
	if [ "$2" = "$3" ]; then
		pass "$1"
	else
		fail "$1: expected [$2], got [$3]"
	fi
}

# assert_contains DESC HAYSTACK NEEDLE
assert_contains() {
	case $2 in
	*"$3"*) pass "$1" ;;
	*) fail "$1: [$3] not found in [$2]" ;;
	esac
}

# assert_rcode DESC NAME TYPE RCODE [dig options...]
assert_rcode() {
	local desc=$1 name=$2 type=$3 want=$4
	shift 4
	assert_eq "$desc" "$want" "$(dig_rcode "$name" "$type" "$@")"
}

# assert_true DESC COMMAND...
assert_true() {
	local desc=$1
	shift
	if "$@"; then pass "$desc"; else fail "$desc"; fi
}

# skip REASON: end the test as skipped (CTest SKIP_RETURN_CODE 77), saying why.
# Checks made before still count: a failure among them fails the test.
skip() {
	echo "SKIP: $1"
	LIB_SKIP=1
	finish
}

# Sanitizer reports so far: each is printed and fails the test.
check_sanitizer_reports() {
	local f n=0
	for f in "$SAN_DIR"/*; do
		[ -f "$f" ] || continue
		n=$((n + 1))
		echo "--- sanitizer report ${f##*/} ---"
		tail -c 20000 "$f"
		echo "--- end of ${f##*/} ---"
		rm -f "$f"
	done
	[ "$n" -eq 0 ] || fail "$n sanitizer report(s)"
}

finish() {
	# A daemon left running stops the clean way, so its exit (and LSan) is checked too.
	skydns_alive && skydns_stop TERM
	check_sanitizer_reports
	if [ "$PASSED" -eq 0 ] && [ "$FAILED" -eq 0 ] && [ -z "${LIB_SKIP:-}" ]; then
		fail "no check ran"
	fi
	echo "$PASSED passed, $FAILED failed"
	if [ "$FAILED" -ne 0 ] && [ -f "$LOG" ]; then
		echo "--- skydns log (last 30 lines) ---" >&2
		tail -n 30 "$LOG" >&2
	fi
	[ "$FAILED" -eq 0 ] || exit 1
	[ -z "${LIB_SKIP:-}" ] || exit 77
	exit 0
}
