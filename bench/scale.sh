#!/usr/bin/env bash
# bench/scale.sh — skydns per-query cost with 1,000,000 names vs the 10,000-name zone
# (issue 6: "within 1.2x", "heap < 64 MiB"). Run bench/run.sh once first (it builds
# the tools and bench/data); this generates bench/data/1m (NSVC=1000000), imports it
# (prints import time and data.mdb size), then alternates the two stores under the
# batching load for ROUNDS rounds and prints µs/query, QPS, VmHWM, RssAnon (heap and
# other private memory) and RssFile (the mapped store), with the lookup cache on (the
# default) and off.
# Env: ROUNDS [3]  BENCH_SECONDS [5]  SKYDNS_BUILD_DIR [build]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
SKYDNS=${SKYDNS_BUILD_DIR:-$ROOT/build}/server/skydns
LATPROBE=$HERE/run/bin/latprobe
BIG=$HERE/data/1m # bench/data/ is ignored by git
RUN=$HERE/run/scale
SECS=${BENCH_SECONDS:-5}
ROUNDS=${ROUNDS:-3}
PORT=${SCALE_PORT:-5494}
HZ=$(getconf CLK_TCK)
PID=

[ -x "$SKYDNS" ] && [ -x "$LATPROBE" ] && [ -f "$HERE/data/queries.txt" ] || {
	echo "scale.sh: run bench/run.sh first (needs $SKYDNS, $LATPROBE, bench/data)" >&2
	exit 1
}
cleanup() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; fi; }
trap cleanup EXIT

conf() { # name [lookup-cache] -> $RUN/name.conf with its own store dir
	mkdir -p "$RUN/$1/store"
	printf '[Dns]\ndns-addr = 127.0.0.1:%s\nworkers = 1\nshutdown-grace = 0\n' "$PORT" \
		>"$RUN/$1.conf"
	printf 'dns-domains = skydns.local.\n[Store]\ndata-dir = %s\nmap-size = 1G\n' \
		"$RUN/$1/store" >>"$RUN/$1.conf"
	if [ -n "${2:-}" ]; then printf 'lookup-cache = %s\n' "$2" >>"$RUN/$1.conf"; fi
	printf '[Log]\nlog-level = warn\n' >>"$RUN/$1.conf"
}

import() { # name zone
	local t0 t1
	rm -rf "$RUN/$1" && conf "$1"
	t0=$(date +%s%N)
	"$SKYDNS" -config-file "$RUN/$1.conf" -import "$2" >"$RUN/$1.import.log" 2>&1
	t1=$(date +%s%N)
	echo "$1: imported $(wc -l <"$2") zone lines in $(((t1 - t0) / 1000000)) ms," \
		"data.mdb $(($(stat -c %s "$RUN/$1/store/data.mdb") / 1048576)) MiB"
}

measure() { # name queries [conf name]
	local t0 t1 mem
	taskset -c 1 "$SKYDNS" -config-file "$RUN/${3:-$1}.conf" >"$RUN/$1.out" 2>&1 &
	PID=$!
	for _ in $(seq 1 100); do
		kdig +time=1 +retry=0 @127.0.0.1 -p "$PORT" skydns.local SOA >/dev/null 2>&1 && break
		sleep 0.1
	done
	# warm-up: faults the store's pages in
	taskset -c 0 "$LATPROBE" -M -s 127.0.0.1 -p "$PORT" -d "$2" -l 2 -c 8 -q 256 >/dev/null 2>&1
	t0=$(awk '{print $14 + $15}' "/proc/$PID/stat")
	taskset -c 0 "$LATPROBE" -M -s 127.0.0.1 -p "$PORT" -d "$2" -l "$SECS" -c 8 -q 256 \
		>"$RUN/$1.load" 2>&1 || true
	t1=$(awk '{print $14 + $15}' "/proc/$PID/stat")
	mem=$(awk '/^(VmHWM|RssAnon|RssFile):/ {printf "%s %.1f MiB  ", $1, $2 / 1024}' \
		"/proc/$PID/status")
	kill "$PID" && wait "$PID" 2>/dev/null || true
	PID=
	awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="${3:-$1}" -v s="$SECS" -v mem="$mem" '/^sent/ {
		printf "  %-9s %8.0f qps  lost %s  %.3f us/q  %s\n", n, $4 / s, $6, 1e6 * t / hz / $4, mem }' \
		"$RUN/$1.load"
}

mkdir -p "$RUN"
if [ ! -f "$BIG/skydns.local.zone" ]; then
	NSVC=1000000 NAAAA=100000 "$HERE/make-zone.sh" "$BIG" >&2
fi
import 10k "$HERE/data/skydns.local.zone"
import 1m "$BIG/skydns.local.zone"
# The same stores without the per-worker lookup cache ([Store] lookup-cache = 0):
# the B-tree descent on every query, the cost the cache is there to hide.
conf 10k-nocache 0 && sed -i "s|$RUN/10k-nocache/store|$RUN/10k/store|" "$RUN/10k-nocache.conf"
conf 1m-nocache 0 && sed -i "s|$RUN/1m-nocache/store|$RUN/1m/store|" "$RUN/1m-nocache.conf"
for r in $(seq 1 "$ROUNDS"); do
	echo "round $r"
	measure 10k "$HERE/data/queries.txt"
	measure 1m "$BIG/queries.txt"
	measure 10k "$HERE/data/queries.txt" 10k-nocache
	measure 1m "$BIG/queries.txt" 1m-nocache
done
