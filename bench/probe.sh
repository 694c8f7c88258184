#!/usr/bin/env bash
# bench/probe.sh — skydns-probe's cost: N addresses (127.0.x.y, default 5,000), each
# checked by a TCP connect every INTERVAL seconds (default 5), against one listener on
# 0.0.0.0 that accepts them all. Reports the probe's CPU (% of one core), checks per
# second, failures and RSS over SECONDS (default 30) after a warm-up interval.
#
# Env: SKYDNS_BUILD_DIR [build] (a Release build; made here if missing), N [5000],
#      INTERVAL [5], SECONDS_RUN [30], MAX_CHECKS [4096].
# Loopback only; every process it starts is stopped by PID on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BUILD=${SKYDNS_BUILD_DIR:-$ROOT/build}
N=${N:-5000}
INTERVAL=${INTERVAL:-5}
SECONDS_RUN=${SECONDS_RUN:-30}
MAX_CHECKS=${MAX_CHECKS:-4096}

if [ ! -x "$BUILD/server/skydns-probe" ] || [ ! -x "$BUILD/server/skydns" ]; then
	cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
	nice -n 5 cmake --build "$BUILD" -j2 --target skydns skydns-probe >/dev/null
fi

DIR=$(mktemp -d /tmp/skydns-probe-bench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$DIR"
}
trap cleanup EXIT

PORT=$(/usr/bin/python3 "$ROOT/tests/integration/skytest.py" free-port $$ 2>/dev/null ||
	echo $((20000 + RANDOM % 5000)))

# The zone: one name per address.
{
	echo '$ORIGIN skydns.local.'
	echo '$TTL 30'
	echo '@ IN SOA ns.skydns.local. admin.skydns.local. 1 3600 600 86400 30'
	i=0
	for x in $(seq 1 250); do
		for y in $(seq 1 250); do
			[ "$i" -ge "$N" ] && break 2
			echo "h$i IN A 127.0.$x.$y"
			i=$((i + 1))
		done
	done
} >"$DIR/zone"
cat >"$DIR/skydns.conf" <<EOF
[Dns]
dns-addr = 127.0.0.1:1
[Store]
data-dir = $DIR/store
map-size = 256M
[Log]
log-to-stdio = true
log-level = warn
[Probe]
enable = true
scan-ports = $PORT
check-interval = $INTERVAL
check-timeout = 1
max-checks = $MAX_CHECKS
id = bench
EOF
"$BUILD/server/skydns" -config-file "$DIR/skydns.conf" -import "$DIR/zone" >/dev/null

# One listener for every 127.0.x.y: accept and close, so its queue never fills.
python3 - "$PORT" >"$DIR/listener.log" 2>&1 <<'EOF' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(4096)
while True:
    c, _ = s.accept(); c.close()
EOF
PIDS+=($!)
sleep 0.3

"$BUILD/server/skydns-probe" -config-file "$DIR/skydns.conf" >"$DIR/probe.log" 2>&1 &
PROBE=$!
PIDS+=($PROBE)
sleep "$INTERVAL" # warm-up: the first round spreads over one interval

stat_cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
counters() { # checks failures
	python3 - "$DIR/store/probe-bench.stats" <<'EOF'
import struct, sys
b = open(sys.argv[1], "rb").read()
checks, failures = struct.unpack_from("<QQ", b, 8 + 8 + 64)
print(checks, failures)
EOF
}
HZ=$(getconf CLK_TCK)
c0=$(stat_cpu $PROBE)
read -r k0 f0 < <(counters)
t0=$(date +%s.%N)
sleep "$SECONDS_RUN"
c1=$(stat_cpu $PROBE)
read -r k1 f1 < <(counters)
t1=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$PROBE/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$PROBE/status")
python3 - <<EOF
el = $t1 - $t0
cpu = ($c1 - $c0) / $HZ
print("addresses        %d at a %s s interval, %d s measured" % ($N, "$INTERVAL", el))
print("probe CPU        %.2f %% of one core" % (100.0 * cpu / el))
print("checks/s         %.0f (expected %.0f)" % (($k1 - $k0) / el, $N / $INTERVAL))
print("failed checks    %d" % ($f1 - $f0))
print("RSS              %d KiB (peak %d KiB)" % ($rss, $hwm))
EOF
