#!/usr/bin/env bash
# bench/run.sh — skydns against NSD and Knot DNS on the same zone, one command.
#
# Usage:
#   bench/run.sh [auth]     authoritative: skydns, NSD, Knot DNS and the io_uring UDP
#                           echo floor, all serving bench/data/skydns.local.zone
#   bench/run.sh forward    caching forwarders in front of one NSD: skydns vs Unbound,
#                           cache warmed with one pass over the query file first
#   bench/run.sh mix        issue 16: the batched load over queries-pos.txt (all existing
#                           A) and queries-neg.txt (80 % NXDOMAIN/NODATA from search paths),
#                           same server, same round; ratio neg/pos (use NSVC=1000000)
#   bench/run.sh tcp        issue 16: DNS over TCP (RFC 7766 pipelining), skydns vs Knot
#                           and NSD: latprobe -T with TCP10_ARGS, TCP1000_ARGS and
#                           TCPSETUP_ARGS (one query per connection)
#   bench/run.sh churn      issue 16: skydns under the batched load, alone and while
#                           bench/churn.c commits CHURN_RATE times a second (10 changed
#                           names each) from its own process; ratio churn/alone
#   bench/run.sh workers2   issue 16: skydns with workers = 2 vs Knot with udp-workers: 2,
#                           server and generator sharing both cores (skydns2, knot2),
#                           beside the 1-worker rows (server CPU 1, generator CPU 0)
#   bench/run.sh mem        issue 16: RSS of skydns (RssAnon = heap and other private
#                           memory, RssFile = the mapped store) after the batched load
#                           filled the lookup cache and MEM_FWD_N forwarded names the
#                           forward cache (both at their default sizes); NSD, Knot VmHWM
#                           (use NSVC=1000000)
#   bench/run.sh all        every mode above but forward-dead, then ONE table with the
#                           issue 16 targets and pass/fail (bench/table.py); QUICK=1 for
#                           a short development run
#   bench/run.sh forward-dead  issue 14: skydns forwarding cache misses (FWD_N distinct
#                           names, one at a time) to two NSDs, then with the first
#                           upstream dead (swallows packets): p50/p99 of each, and the
#                           cache's memory per entry (bench/fwd_dead.py)
#   (./dev.sh bench [auth|forward] installs what is missing and runs this.)
#
# Env (defaults in brackets):
#   ROUNDS [2]            rounds; servers alternate inside a round, order flips each round
#   BENCH_SECONDS [10]    length of every measured run
#   SERVERS               auth: ["skydns mmsg nsd knot echo"], forward: ["skydns unbound"]
#                         (mmsg: skydns's query path behind recvmmsg/sendmmsg instead of
#                         io_uring, bench/mmsg_server.c; echommsg: the echo floor with
#                         recvmmsg/sendmmsg, not in the default list)
#   LOADS ["dnsperf fast lat"]  which of the three loads below to run (A/B runs: "fast");
#                         mix: ["fast-pos fast-neg"], churn: ["fast fast-churn"]
#   CHURN_RATE [50]       commits per second of the churn writer
#   TCP10_ARGS ["-c 10 -q 8"]  TCP1000_ARGS ["-c 1000 -q 4"]  TCPSETUP_ARGS ["-c 50 -q 1 -N 1"]
#   DNSPERF_ARGS ["-T 2 -c 8"]   FAST_ARGS ["-M -c 8 -q 256"]   LATQPS [20000]
#   SKYDNS_BUILD_DIR [build]     where skydns is (built Release there if missing)
#   BENCH_RUN_DIR [bench/run]  configs, logs, raw outputs (separate ones let two people bench)
#   NSVC NMULTI NAAAA NCNAME NSRV  zone sizes (see make-zone.sh); bench/data is
#                         regenerated when they differ from the last run
#
# Method (see bench/README.md of the shared material): every server gets one worker
# and CPU 1 (taskset, re-applied to all its threads after start, since Knot pins its
# own); load generators run on CPU 0. Per server and round:
#   dnsperf  $DNSPERF_ARGS                      -> QPS, lost, server CPU µs/query
#   latprobe $FAST_ARGS (recvmmsg/sendmmsg batches, so the server is the limit) -> same
#   latprobe -Q $LATQPS (open loop, fixed rate) -> p50 / p99 latency
#   VmHWM of the server's processes              -> peak RSS
# Server CPU = utime+stime of all its processes and threads (/proc/PID/stat) over the
# run, divided by the queries answered. Everything on 127.0.0.1; every process this
# script starts is stopped by PID on exit.
# Output: one row per measurement in bench/results/<date>-<mode>.tsv, a table on stdout.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
DATA=${BENCH_DATA:-$HERE/data}
RUN=${BENCH_RUN_DIR:-$HERE/run}
BIN=$RUN/bin
RESULTS=$HERE/results
ZONE=$DATA/skydns.local.zone
QUERIES=$DATA/queries.txt

MODE=${1:-auth}
ROUNDS=${ROUNDS:-2}
SECS=${BENCH_SECONDS:-10}
DNSPERF_ARGS=${DNSPERF_ARGS:-"-T 2 -c 8"}
FAST_ARGS=${FAST_ARGS:-"-M -c 8 -q 256"}
LATQPS=${LATQPS:-20000}
CHURN_RATE=${CHURN_RATE:-50}
WORKERS=1 # per server: skydns2 and knot2 set 2 (dynamic scope, see bench_one)
MEM_FWD_N=${MEM_FWD_N:-100000}     # = the default cacheSize
MEM_LOOKUP_N=${MEM_LOOKUP_N:-300000} # > the default lookup-cache (262,144 entries)
BUILD_DIR=${SKYDNS_BUILD_DIR:-$ROOT/build}
SKYDNS=$BUILD_DIR/server/skydns
MMSG=$BUILD_DIR/bench/skydns-mmsg-bench
CHURN=$BUILD_DIR/bench/skydns-churn
HZ=$(getconf CLK_TCK)
SRV_CPU=1 GEN_CPU=0

case $MODE in
auth) SERVERS=${SERVERS:-"skydns mmsg nsd knot echo"} ;;
forward) SERVERS=${SERVERS:-"skydns unbound"} ;;
forward-dead) SERVERS=skydns ;;
mix) SERVERS=${SERVERS:-"skydns"} LOADS=${LOADS:-"fast-pos fast-neg"} ;;
churn) SERVERS=skydns LOADS=${LOADS:-"fast fast-churn"} ;;
workers2) SERVERS=${SERVERS:-"skydns knot skydns2 knot2"} LOADS=${LOADS:-"fast"} ;;
mem) SERVERS=${SERVERS:-"skydns nsd knot"} LOADS=${LOADS:-"mem"} ;;
all) ;;
tcp)
	SERVERS=${SERVERS:-"skydns knot nsd"} LOADS=${LOADS:-"tcp10 tcp1000 tcpsetup"}
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true # 1,000 connections on each side
	;;
*)
	sed -n '2,34p' "$0" >&2
	exit 2
	;;
esac
LOADS=${LOADS:-"dnsperf fast lat"}
TCP10_ARGS=${TCP10_ARGS:-"-c 10 -q 8"}
TCP1000_ARGS=${TCP1000_ARGS:-"-c 1000 -q 4"}
TCPSETUP_ARGS=${TCPSETUP_ARGS:-"-c 50 -q 1 -N 1"}

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# ------------------------------------------------------------ processes --
SRV_PIDS=() # top-level PIDs of everything started here

tree_pids() { # PID and all its descendants
	local p=$1 c
	[ -d "/proc/$p" ] || return 0
	echo "$p"
	for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do tree_pids "$c"; done
}

stop_pids() { # stop these PIDs and their descendants: TERM, wait up to 10 s, KILL
	local p all=() alive
	for p in "$@"; do mapfile -t -O "${#all[@]}" all < <(tree_pids "$p"); done
	[ "${#all[@]}" -gt 0 ] || return 0
	kill "${all[@]}" 2>/dev/null || true
	for _ in $(seq 1 40); do
		alive=0
		for p in "${all[@]}"; do [ -d "/proc/$p" ] && alive=1; done
		[ "$alive" = 0 ] && break
		sleep 0.25
	done
	for p in "${all[@]}"; do [ -d "/proc/$p" ] && kill -9 "$p" 2>/dev/null; done
	for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

stop_all() {
	if [ "${#SRV_PIDS[@]}" -gt 0 ]; then stop_pids "${SRV_PIDS[@]}"; fi
	SRV_PIDS=()
}

# stop one server and forget its PID, so a recycled PID is never signalled later
stop_server() {
	local p keep=()
	stop_pids "$1"
	for p in "${SRV_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	SRV_PIDS=("${keep[@]}")
}
trap stop_all EXIT
trap 'exit 130' INT TERM

spawn() { # logfile cpu cmd... : start in the background pinned to cpu
	local logf=$1 cpu=$2
	shift 2
	taskset -c "$cpu" "$@" >"$logf" 2>&1 &
	SRV_PIDS+=("$!")
	LAST_PID=$!
}

cpu_ticks() { # utime+stime of a PID tree, threads included
	local t=0 p v
	for p in $(tree_pids "$1"); do
		v=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}' || true)
		t=$((t + ${v:-0}))
	done
	echo "$t"
}

status_kb() { # FIELD: that /proc/PID/status field summed over a PID tree (kB)
	local t=0 p v
	for p in $(tree_pids "$2"); do
		v=$(awk -v f="$1:" '$1 == f {print $2}' "/proc/$p/status" 2>/dev/null || true)
		t=$((t + ${v:-0}))
	done
	echo "$t"
}

hwm_kb() { # peak RSS (VmHWM) summed over a PID tree
	local t=0 p v
	for p in $(tree_pids "$1"); do
		v=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
		t=$((t + ${v:-0}))
	done
	echo "$t"
}

pin_tree() { # Knot sets its own thread affinity: put every thread back on our CPU
	local p
	for p in $(tree_pids "$1"); do taskset -a -p -c "$SRV_CPU" "$p" >/dev/null 2>&1 || true; done
}

NEXT_PORT=5400
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh" # port_busy, alloc_port (from NEXT_PORT: 5400-5699), build_tools

dig_short() { # port name type
	kdig +time=1 +retry=0 +short @127.0.0.1 -p "$1" "$2" "$3" 2>/dev/null
}

wait_ready() { # name port: up to 30 s for a correct answer (any answer for echo)
	for _ in $(seq 1 120); do
		[ -d "/proc/$LAST_PID" ] || return 1
		if [ "$1" = echo ] || [ "$1" = echommsg ]; then
			kdig +time=1 +retry=0 @127.0.0.1 -p "$2" svc-0.default.svc.skydns.local A 2>/dev/null |
				grep -q 'status:' && return 0
		elif dig_short "$2" svc-0.default.svc.skydns.local A | grep -qx 10.0.0.0; then
			return 0
		fi
		sleep 0.25
	done
	return 1
}

# A benchmark of wrong answers is worthless: check a few before measuring.
sanity() { # port
	local p=$1 bad=0
	[ "$(dig_short "$p" svc-1.default.svc.skydns.local A)" = 10.0.0.1 ] || bad=1
	[ "$(dig_short "$p" multi-1.default.svc.skydns.local A | wc -l)" = 3 ] || bad=1
	dig_short "$p" alias-1.default.svc.skydns.local A | grep -qx 10.0.0.1 || bad=1
	[ "$(dig_short "$p" svc-1.default.svc.skydns.local AAAA)" = fd00::1 ] || bad=1
	dig_short "$p" _http._tcp.svc-1.default.svc.skydns.local SRV | grep -q '^0 10 80 ' || bad=1
	kdig +time=1 +retry=0 @127.0.0.1 -p "$p" nx-1.default.svc.skydns.local A 2>/dev/null |
		grep -q 'status: NXDOMAIN' || bad=1
	return "$bad"
}

# ---------------------------------------------------------------- setup --
# skydns is optional: while it does not build, the peers are still measured. An
# existing binary is used (with a warning) when the current tree does not build.
build_skydns() {
	local targets="skydns"
	case " $SERVERS " in *" skydns "* | *" mmsg "*) ;; *) return 0 ;; esac
	case " $SERVERS " in *" mmsg "*) targets="skydns skydns-mmsg-bench" ;; esac
	[ "$MODE" = churn ] && targets="$targets skydns-churn"
	log "building $targets (Release) in $BUILD_DIR"
	# shellcheck disable=SC2086 # one word per target
	if cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >"$RUN/skydns-build.log" 2>&1 &&
		cmake --build "$BUILD_DIR" -j"$(nproc)" --target $targets >>"$RUN/skydns-build.log" 2>&1; then
		return 0
	fi
	if [ ! -x "$MMSG" ]; then
		SERVERS=$(echo " $SERVERS " | sed 's/ mmsg / /')
	fi
	if [ -x "$SKYDNS" ]; then
		log "WARNING: the tree does not build (see $RUN/skydns-build.log); using the existing $SKYDNS"
	else
		log "WARNING: skydns does not build (see $RUN/skydns-build.log); measuring the others"
		SERVERS=$(echo " $SERVERS " | sed 's/ skydns / /; s/ mmsg / /')
	fi
}

make_data() {
	local sizes="${NSVC:-} ${NMULTI:-} ${NAAAA:-} ${NCNAME:-} ${NSRV:-} ${NQ:-}"
	if [ -f "$ZONE" ] && [ -f "$QUERIES" ] && [ "$(cat "$DATA/.sizes" 2>/dev/null)" = "$sizes" ]; then
		return 0
	fi
	"$HERE/make-zone.sh" "$DATA" >&2
	echo "$sizes" >"$DATA/.sizes"
}

# ------------------------------------------------------------ servers ---
# start_X PORT [UPSTREAM_PORT]: writes its config under $RUN/X, starts it pinned to
# SRV_CPU in the foreground (&), sets LAST_PID.

skydns_conf() { # dir port [upstream]
	cat >"$1/skydns.conf" <<EOF
[Dns]
dns-addr = 127.0.0.1:$2
workers = $WORKERS
shutdown-grace = 0
tcp-max-connections = 4096
tcp-max-per-client = 4096
EOF
	if [ -n "${3:-}" ]; then
		# forwarder: no local domain may cover the benchmark zone
		printf 'dns-domains = bench.invalid.\nnameservers = 127.0.0.1:%s\ncacheSize = 200000\n' \
			"$3" >>"$1/skydns.conf"
	else
		printf 'dns-domains = skydns.local.\n' >>"$1/skydns.conf"
		# mem: forward the names of a second zone, so the forward cache fills too
		# (cacheSize and lookup-cache stay at their defaults)
		if [ -n "${MEM_UP_PORT:-}" ]; then
			printf 'nameservers = 127.0.0.1:%s\n' "$MEM_UP_PORT" >>"$1/skydns.conf"
		fi
	fi
	printf '[Store]\ndata-dir = %s/store\n[Log]\nlog-level = warn\n' "$1" >>"$1/skydns.conf"
}

start_skydns() {
	local d=$RUN/skydns
	mkdir -p "$d/store"
	skydns_conf "$d" "$1" "${2:-}"
	spawn "$d/stdout" "$SRV_CPU" "$SKYDNS" -config-file "$d/skydns.conf"
}

# the same query path and store as skydns, recvmmsg/sendmmsg instead of io_uring
start_mmsg() {
	local d=$RUN/mmsg
	mkdir -p "$d"
	skydns_conf "$d" "$1"
	sed -i "s|^data-dir = .*|data-dir = $RUN/skydns/store|" "$d/skydns.conf"
	spawn "$d/stdout" "$SRV_CPU" "$MMSG" -config-file "$d/skydns.conf"
}

# import once per benchmark run (the store persists across restarts)
import_skydns() {
	local d=$RUN/skydns t0 t1
	rm -rf "$d"
	mkdir -p "$d/store"
	skydns_conf "$d" 53
	t0=$(date +%s%N)
	if ! "$SKYDNS" -config-file "$d/skydns.conf" -import "$ZONE" >"$d/import.log" 2>&1; then
		log "WARNING: skydns import failed (see $d/import.log); measuring the others"
		SERVERS=$(echo " $SERVERS " | sed 's/ skydns / /; s/ mmsg / /')
		return 0
	fi
	t1=$(date +%s%N)
	log "skydns: imported $(wc -l <"$ZONE") zone lines in $(((t1 - t0) / 1000000)) ms," \
		"store $(du -sh "$d/store" | cut -f1)"
}

nsd_conf() { # dir port
	cat >"$1/nsd.conf" <<EOF
server:
  ip-address: 127.0.0.1@$2
  server-count: 1
  reuseport: yes
  do-ip6: no
  username: ""
  chroot: ""
  zonesdir: "$1"
  database: ""
  zonelistfile: "$1/zone.list"
  xfrdfile: "$1/xfrd.state"
  xfrdir: "$1"
  pidfile: "$1/nsd.pid"
  verbosity: 0
  minimal-responses: yes
  tcp-count: 4096
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: skydns.local
  zonefile: $ZONE
EOF
}

start_nsd() {
	local d=$RUN/nsd
	rm -rf "$d" && mkdir -p "$d"
	nsd_conf "$d" "$1"
	spawn "$d/stdout" "$SRV_CPU" nsd -d -c "$d/nsd.conf"
}

# Knot: no RRL module configured (off), one UDP worker; it adds no additional
# records it does not need, so it needs no minimal-responses switch.
start_knot() {
	local d=$RUN/knot
	rm -rf "$d" && mkdir -p "$d"
	cat >"$d/knot.conf" <<EOF
server:
    rundir: "$d"
    listen: 127.0.0.1@$1
    udp-workers: $WORKERS
    tcp-workers: 1
    tcp-max-clients: 4096
    background-workers: 1
    udp-max-payload: 1232
log:
  - target: stderr
    any: warning
database:
    storage: "$d"
template:
  - id: default
    storage: "$d"
    semantic-checks: off
    journal-content: none
    zonefile-sync: -1
    zonefile-load: whole
zone:
  - domain: skydns.local
    file: "$ZONE"
EOF
	spawn "$d/stdout" "$SRV_CPU" knotd -c "$d/knot.conf"
}

# workers2: the same servers with two workers (bench_one sets WORKERS and the CPUs)
start_skydns2() { start_skydns "$@"; }
start_knot2() { start_knot "$@"; }

start_echo() {
	mkdir -p "$RUN/echo"
	spawn "$RUN/echo/stdout" "$SRV_CPU" "$BIN/echo" "$1" 1 uring
}

start_echommsg() {
	mkdir -p "$RUN/echommsg"
	spawn "$RUN/echommsg/stdout" "$SRV_CPU" "$BIN/echo" "$1" 1 mmsg
}

start_unbound() { # port upstream
	local d=$RUN/unbound
	rm -rf "$d" && mkdir -p "$d"
	cat >"$d/unbound.conf" <<EOF
server:
    interface: 127.0.0.1@$1
    port: $1
    num-threads: 1
    so-reuseport: yes
    do-ip6: no
    username: ""
    chroot: ""
    directory: "$d"
    pidfile: "$d/unbound.pid"
    use-syslog: no
    verbosity: 0
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    module-config: "iterator"
    msg-cache-size: 64m
    rrset-cache-size: 128m
    num-queries-per-thread: 4096
    minimal-responses: yes
    qname-minimisation: no
forward-zone:
    name: "skydns.local."
    forward-addr: 127.0.0.1@$2
remote-control:
    control-enable: no
EOF
	spawn "$d/stdout" "$SRV_CPU" unbound -d -c "$d/unbound.conf"
}

# The forwarders' upstream: one NSD, on the load generator's CPU so the
# forwarder's core does only the forwarder's work (it is busy only on misses).
start_upstream() {
	local d=$RUN/upstream-nsd
	rm -rf "$d" && mkdir -p "$d"
	nsd_conf "$d" "$1"
	spawn "$d/stdout" "$GEN_CPU" nsd -d -c "$d/nsd.conf"
	wait_ready nsd "$1" || die "upstream NSD does not answer (see $d/stdout)"
}

version_of() {
	case $1 in
	skydns | skydns2) "$SKYDNS" -version 2>&1 | head -n1 | tr ' ' '-' ;;
	nsd) nsd -v 2>&1 | awk 'NR==1 {print "NSD-" $3}' ;;
	knot | knot2) knotd -V 2>&1 | awk 'NR==1 {print "Knot-" $NF}' ;;
	unbound) unbound -V 2>&1 | awk 'NR==1 {print "Unbound-" $2}' ;;
	echo) echo "io_uring-echo" ;;
	echommsg) echo "mmsg-echo" ;;
	mmsg) "$SKYDNS" -version 2>&1 | head -n1 | tr ' ' '-' | sed 's/$/-mmsg/' ;;
	esac
}

# ---------------------------------------------------------- measuring ---
# measure SERVER PORT PID ROUND KIND: one load run, one TSV row
measure() {
	local srv=$1 port=$2 pid=$3 round=$4 kind=$5 out t0 t1 rc=0 qf=$QUERIES cpid=
	out=$RUN/$srv-$kind-r$round.txt
	case $kind in
	fast-pos) qf=$DATA/queries-pos.txt ;;
	fast-neg) qf=$DATA/queries-neg.txt ;;
	fast-churn)
		# the writer is a watcher: its CPU is not the server's, it runs beside the generator
		taskset -c "$GEN_CPU" "$CHURN" "$RUN/skydns/store" "${NSVC:-10000}" "$CHURN_RATE" \
			"$((SECS + 1))" >"$RUN/churn-r$round.txt" 2>&1 &
		cpid=$!
		sleep 0.5
		;;
	esac
	t0=$(cpu_ticks "$pid")
	case $kind in
	dnsperf)
		# shellcheck disable=SC2086 # word splitting of the args is intended
		taskset -c "$GEN_CPU" dnsperf -s 127.0.0.1 -p "$port" -d "$QUERIES" -l "$SECS" \
			$DNSPERF_ARGS >"$out" 2>&1 || rc=$?
		;;
	fast*)
		# shellcheck disable=SC2086
		taskset -c "$GEN_CPU" "$BIN/latprobe" -s 127.0.0.1 -p "$port" -d "$qf" -l "$SECS" \
			$FAST_ARGS >"$out" 2>&1 || rc=$?
		;;
	tcp10 | tcp1000 | tcpsetup)
		local targs=$TCP10_ARGS
		[ "$kind" = tcp1000 ] && targs=$TCP1000_ARGS
		[ "$kind" = tcpsetup ] && targs=$TCPSETUP_ARGS
		# shellcheck disable=SC2086
		taskset -c "$GEN_CPU" "$BIN/latprobe" -T -s 127.0.0.1 -p "$port" -d "$qf" -l "$SECS" \
			$targs >"$out" 2>&1 || rc=$?
		;;
	lat)
		taskset -c "$GEN_CPU" "$BIN/latprobe" -s 127.0.0.1 -p "$port" -d "$QUERIES" -l "$SECS" \
			-c 4 -Q "$LATQPS" >"$out" 2>&1 || rc=$?
		;;
	mem)
		# one pass over MEM_LOOKUP_N distinct questions fills the lookup cache, the batched
		# load follows; then one pass over MEM_FWD_N names of the upstream's zone fills
		# the forward cache
		taskset -c "$GEN_CPU" dnsperf -s 127.0.0.1 -p "$port" -d "$DATA/queries-mem.txt" -n 1 \
			-c 4 -q 200 -t 2 >"$RUN/$srv-memlookup-r$round.txt" 2>&1 || true
		log "lookup fill: $(grep -E 'Queries (completed|lost)' "$RUN/$srv-memlookup-r$round.txt" |
			tr -s ' \n' ' ')"
		# shellcheck disable=SC2086
		taskset -c "$GEN_CPU" "$BIN/latprobe" -s 127.0.0.1 -p "$port" -d "$qf" -l "$SECS" \
			$FAST_ARGS >"$out" 2>&1 || rc=$?
		if [ "$srv" = skydns ] && [ -n "${MEM_UP_PORT:-}" ]; then
			taskset -c "$GEN_CPU" dnsperf -s 127.0.0.1 -p "$port" -d "$DATA/queries-fwd.txt" -n 1 \
				-c 4 -q 200 -t 2 >"$RUN/$srv-memfwd-r$round.txt" 2>&1 || true
			log "forward fill: $(grep -E 'Queries (completed|lost)' "$RUN/$srv-memfwd-r$round.txt" |
				tr -s ' \n' ' ')"
		fi
		;;
	esac
	t1=$(cpu_ticks "$pid")
	if [ -n "$cpid" ]; then
		wait "$cpid" || log "WARNING: the churn writer failed (see $RUN/churn-r$round.txt)"
		log "$(cat "$RUN/churn-r$round.txt")"
	fi
	[ "$rc" = 0 ] || log "WARNING: $kind against $srv exited $rc (see $out)"
	awk -v srv="$srv" -v ver="$(version_of "$srv")" -v round="$round" -v kind="$kind" \
		-v secs="$SECS" -v ticks=$((t1 - t0)) -v hz="$HZ" -v hwm="$(hwm_kb "$pid")" \
		-v anon="$(status_kb RssAnon "$pid")" -v file="$(status_kb RssFile "$pid")" '
	BEGIN { p50 = p99 = "-" }
	/Queries completed:/  { ans = $3 }
	/Queries lost:/       { lost = $3 }
	/Queries per second:/ { qps = $4 }
	/Response codes:/     { for (i = 3; i <= NF; i++) if ($i == "NXDOMAIN") nx = $(i + 1) }
	/^sent .* received/   { ans = $4; lost = $6; qps = $4 / secs }
	/^rcodes/             { nx = $5 }
	/^latency_ms/         { p50 = $5; p99 = $9 }
	END {
		uspq = ans ? 1e6 * ticks / hz / ans : 0
		printf "%s\t%s\t%s\t%s\t%.0f\t%d\t%d\t%.2f\t%.2f\t%s\t%s\t%d\t%d\t%d\n", round, srv, ver, kind,
			qps, ans, lost, ans ? 100 * nx / ans : 0, uspq, p50, p99, hwm, anon, file
	}' "$out" | tee -a "$TSV" | awk -F'\t' '{
		printf "  %-8s %-7s %8s qps  lost %-6s nx %5s%%  %6s us/q  p50 %s p99 %s ms  hwm %d anon %d file %d KiB\n",
			$2, $4, $5, $7, $8, $9, $10, $11, $12, $13, $14 }' >&2
}

# bench_one SERVER ROUND: start, check, warm up, the three loads, stop
bench_one() {
	local srv=$1 round=$2 port pid kind
	# two workers: the server and the generator share both cores (local: the start_*,
	# pin_tree and measure calls below see these values)
	local WORKERS=$WORKERS SRV_CPU=$SRV_CPU GEN_CPU=$GEN_CPU
	case $srv in skydns2 | knot2) WORKERS=2 SRV_CPU=0,1 GEN_CPU=0,1 ;; esac
	port=${PORTS[$srv]}
	log "round $round: $srv on 127.0.0.1:$port (CPU $SRV_CPU, $WORKERS worker(s))"
	if [ "$MODE" = forward ]; then "start_$srv" "$port" "$UP_PORT"; else "start_$srv" "$port"; fi
	pid=$LAST_PID
	if ! wait_ready "$srv" "$port"; then
		log "WARNING: $srv did not answer on port $port (see $RUN/$srv/stdout); skipped"
		stop_server "$pid"
		return 0
	fi
	pin_tree "$pid"
	if [ "$srv" != echo ] && [ "$srv" != echommsg ] && ! sanity "$port"; then
		log "WARNING: $srv gives wrong answers to the sanity queries; its numbers are suspect"
	fi
	# warm-up: one pass over the query file (fills forwarders' caches, faults pages in)
	local qf
	for qf in "$QUERIES" $([ "$MODE" = mix ] && echo "$DATA/queries-pos.txt $DATA/queries-neg.txt"); do
		taskset -c "$GEN_CPU" dnsperf -s 127.0.0.1 -p "$port" -d "$qf" -n 1 -c 4 -t 2 \
			>>"$RUN/$srv-warm-r$round.txt" 2>&1 || true
	done
	for kind in $LOADS; do measure "$srv" "$port" "$pid" "$round" "$kind"; done
	stop_server "$pid"
}

# ------------------------------------------------------------- report ---
report() {
	awk -F'\t' -v mode="$MODE" '
	function med(key,    n, i, j, t, v) {
		n = cnt[key]; if (!n) return -1
		for (i = 1; i <= n; i++) v[i] = val[key, i]
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
		return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	}
	function add(key, x) { val[key, ++cnt[key]] = x + 0 }
	function show(x, f) { return x < 0 ? "-" : sprintf(f, x) }
	NR == 1 { next }
	{
		s = $2; if (!(s in seen)) { seen[s] = 1; order[++ns] = s; ver[s] = $3 }
		add(s SUBSEP $4 SUBSEP "qps", $5); add(s SUBSEP $4 SUBSEP "us", $9)
		lost[s] += $7; if ($12 + 0 > hwm[s]) hwm[s] = $12
		if ($4 == "lat") { add(s SUBSEP "p50", $10); add(s SUBSEP "p99", $11) }
	}
	END {
		printf "\nMedians over rounds (%s). QPS and server CPU µs per answered query.\n", mode
		printf "%-10s %-16s | %9s %7s | %9s %7s | %8s %8s | %6s | %8s\n", "server", "version",
			"dnsperf", "us/q", "batched", "us/q", "p50 ms", "p99 ms", "lost", "RSS MiB"
		for (i = 1; i <= ns; i++) {
			s = order[i]
			printf "%-10s %-16s | %9s %7s | %9s %7s | %8s %8s | %6d | %8.1f\n", s, ver[s],
				show(med(s SUBSEP "dnsperf" SUBSEP "qps"), "%.0f"), show(med(s SUBSEP "dnsperf" SUBSEP "us"), "%.2f"),
				show(med(s SUBSEP "fast" SUBSEP "qps"), "%.0f"), show(med(s SUBSEP "fast" SUBSEP "us"), "%.2f"),
				show(med(s SUBSEP "p50"), "%.3f"), show(med(s SUBSEP "p99"), "%.3f"), lost[s], hwm[s] / 1024
		}
		if (!("skydns" in seen)) { print "\n(no skydns rows: no ratios)"; exit }
		printf "\nRatios skydns / peer (QPS: higher is better; µs/q and p99: lower is better)\n"
		printf "%-10s | %9s %9s | %9s %9s | %7s\n", "peer", "dnsperf", "us/q", "batched", "us/q", "p99"
		for (i = 1; i <= ns; i++) {
			p = order[i]; if (p == "skydns") continue
			printf "%-10s |", p
			split("dnsperf" SUBSEP "qps,dnsperf" SUBSEP "us,fast" SUBSEP "qps,fast" SUBSEP "us,p99", ks, ",")
			for (k = 1; k <= 5; k++) {
				a = med("skydns" SUBSEP ks[k]); b = med(p SUBSEP ks[k])
				printf " %9s", (a > 0 && b > 0) ? sprintf("%.2f", a / b) : "-"
				if (k == 2 || k == 4) printf " |"
			}
			printf "\n"
		}
	}' "$TSV"
}

# mix and churn: the two loads of each server side by side, and their ratio
report_pair() {
	local a=${LOADS%% *} b=${LOADS##* }
	awk -F'\t' -v a="$a" -v b="$b" -v mode="$MODE" '
	function med(key,    n, i, j, t, v) {
		n = cnt[key]; if (!n) return -1
		for (i = 1; i <= n; i++) v[i] = val[key, i]
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
		return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	}
	NR == 1 { next }
	{
		s = $2; if (!(s in seen)) { seen[s] = 1; order[++ns] = s }
		val[s SUBSEP $4 SUBSEP "qps", ++cnt[s SUBSEP $4 SUBSEP "qps"]] = $5
		val[s SUBSEP $4 SUBSEP "us", ++cnt[s SUBSEP $4 SUBSEP "us"]] = $9
		lost[s] += $7
		if ($4 == b && ($1 in ua)) rat[s, ++nr[s]] = $9 / ua[$1]
		if ($4 == a) ua[$1] = $9
	}
	END {
		printf "\nMedians over rounds (%s). Batched load; server CPU µs per answered query.\n", mode
		printf "%-10s | %9s %7s | %9s %7s | %9s %s | %6s\n", "server", a, "us/q", b, "us/q",
			b "/" a, "(per round)", "lost"
		for (i = 1; i <= ns; i++) {
			s = order[i]; ra = med(s SUBSEP a SUBSEP "us"); rb = med(s SUBSEP b SUBSEP "us")
			rounds = ""
			for (k = 1; k <= nr[s]; k++) rounds = rounds sprintf(" %.2f", rat[s, k])
			printf "%-10s | %9.0f %7.2f | %9.0f %7.2f | %9.2f %s | %6d\n", s,
				med(s SUBSEP a SUBSEP "qps"), ra, med(s SUBSEP b SUBSEP "qps"), rb,
				(ra > 0 ? rb / ra : 0), rounds, lost[s]
		}
	}' "$TSV"
}

# tcp: QPS and server CPU per load, and skydns / peer
report_tcp() {
	awk -F'\t' -v loads="$LOADS" '
	function med(key,    n, i, j, t, v) {
		n = cnt[key]; if (!n) return -1
		for (i = 1; i <= n; i++) v[i] = val[key, i]
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
		return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	}
	NR == 1 { next }
	{
		s = $2; if (!(s in seen)) { seen[s] = 1; order[++ns] = s; ver[s] = $3 }
		val[s SUBSEP $4 SUBSEP "qps", ++cnt[s SUBSEP $4 SUBSEP "qps"]] = $5
		val[s SUBSEP $4 SUBSEP "us", ++cnt[s SUBSEP $4 SUBSEP "us"]] = $9
		lost[s] += $7
	}
	END {
		nl = split(loads, L, " ")
		printf "\nMedians over rounds (tcp). QPS and server CPU µs per answered query.\n"
		printf "%-10s %-16s", "server", "version"
		for (k = 1; k <= nl; k++) printf " | %9s %7s", L[k], "us/q"
		printf " | %6s\n", "lost"
		for (i = 1; i <= ns; i++) {
			s = order[i]; printf "%-10s %-16s", s, ver[s]
			for (k = 1; k <= nl; k++)
				printf " | %9.0f %7.2f", med(s SUBSEP L[k] SUBSEP "qps"), med(s SUBSEP L[k] SUBSEP "us")
			printf " | %6d\n", lost[s]
		}
		if (!("skydns" in seen)) exit
		printf "\nRatios skydns / peer (QPS: higher is better; us/q: lower is better)\n"
		for (i = 1; i <= ns; i++) {
			p = order[i]; if (p == "skydns") continue
			printf "%-10s %-16s", p, ""
			for (k = 1; k <= nl; k++) {
				a = med("skydns" SUBSEP L[k] SUBSEP "qps"); b = med(p SUBSEP L[k] SUBSEP "qps")
				c = med("skydns" SUBSEP L[k] SUBSEP "us"); d = med(p SUBSEP L[k] SUBSEP "us")
				printf " | %9s %7s", (a > 0 && b > 0) ? sprintf("%.2f", a / b) : "-",
					(c > 0 && d > 0) ? sprintf("%.2f", c / d) : "-"
			}
			printf "\n"
		}
	}' "$TSV"
}

# mem: an upstream NSD (generator's CPU, not counted) serving MEM_FWD_N names of
# fwd.bench.invalid, and the query file that asks each once
start_mem_upstream() {
	local d=$RUN/mem-upstream
	rm -rf "$d" && mkdir -p "$d"
	{
		# shellcheck disable=SC2016 # $ORIGIN and $TTL are zone file syntax
		printf '$ORIGIN fwd.bench.invalid.\n$TTL 3600\n'
		printf '@ SOA ns hostmaster 1 3600 600 86400 3600\n@ NS ns\nns A 127.0.0.1\n'
		seq 0 $((MEM_FWD_N - 1)) | awk '{printf "f-%d A 10.%d.%d.%d\n", $1, int($1 / 65536) % 256, int($1 / 256) % 256, $1 % 256}'
	} >"$d/fwd.zone"
	seq 0 $((MEM_FWD_N - 1)) | awk '{printf "f-%d.fwd.bench.invalid A\n", $1}' >"$DATA/queries-fwd.txt"
	# MEM_LOOKUP_N distinct questions for the lookup cache (A, and AAAA when the zone has
	# fewer names than that)
	local n=$((${NSVC:-10000} < MEM_LOOKUP_N ? ${NSVC:-10000} : MEM_LOOKUP_N))
	seq 0 $((n - 1)) | awk -v n="$n" -v want="$MEM_LOOKUP_N" '{
		printf "svc-%d.default.svc.skydns.local A\n", $1
		if (n < want) printf "svc-%d.default.svc.skydns.local AAAA\n", $1 }' >"$DATA/queries-mem.txt"
	nsd_conf "$d" "$1"
	sed -i "s|^  name: skydns.local|  name: fwd.bench.invalid|; s|^  zonefile: .*|  zonefile: $d/fwd.zone|" \
		"$d/nsd.conf"
	spawn "$d/stdout" "$GEN_CPU" nsd -d -c "$d/nsd.conf"
	for _ in $(seq 1 120); do
		dig_short "$1" f-1.fwd.bench.invalid A | grep -qx 10.0.0.1 && return 0
		sleep 0.25
	done
	die "the mem upstream NSD does not answer (see $d/stdout)"
}

# all: every mode in turn (each its own run of this script, so each builds, makes its
# data and cleans up as it does alone), then one table over all their TSVs
run_all() {
	local big=${ALL_NSVC:-1000000} m tsvs=() t out
	if [ -n "${QUICK:-}" ]; then
		export BENCH_SECONDS=${BENCH_SECONDS:-3} # ROUNDS stays at its default (2)
		big=${ALL_NSVC:-100000}
	fi
	for m in auth mix churn tcp workers2 mem forward; do
		out=$RUN/all-$m.out
		log "all: $m (output in $out)"
		case $m in
		auth) t=(env LOADS="${ALL_AUTH_LOADS:-fast}" "$0" auth) ;;
		mix | churn | mem) t=(env NSVC="$big" BENCH_DATA="$HERE/data/n$big" "$0" "$m") ;;
		forward) t=(env LOADS=fast "$0" forward) ;;
		*) t=("$0" "$m") ;;
		esac
		if "${t[@]}" >"$out" 2>&1; then
			tsvs+=("$(sed -n 's/.*rows: //p' "$out" | tail -n1)")
		else
			log "WARNING: mode $m failed (see $out); its rows are missing"
		fi
	done
	TABLE_NSVC=$big /usr/bin/python3 "$HERE/table.py" "${tsvs[@]}" | tee "$RESULTS/$(date +%Y%m%d-%H%M%S)-all.txt"
}

# --------------------------------------------------------------- main ---
main() {
	local r s list
	mkdir -p "$RUN" "$RESULTS"
	if [ "$MODE" = all ]; then
		run_all
		return 0
	fi
	build_tools
	make_data
	build_skydns
	TSV=$RESULTS/$(date +%Y%m%d-%H%M%S)-$MODE.tsv
	printf 'round\tserver\tversion\tload\tqps\tanswered\tlost\tnxdomain_pct\tsrv_us_per_q\tp50_ms\tp99_ms\thwm_kb\trss_anon_kb\trss_file_kb\n' >"$TSV"

	declare -gA PORTS
	if [ "$MODE" = forward-dead ]; then
		local up2
		alloc_port
		UP_PORT=$PORT
		start_upstream "$UP_PORT"
		alloc_port
		up2=$PORT
		mkdir -p "$RUN/upstream-nsd2"
		nsd_conf "$RUN/upstream-nsd2" "$up2"
		spawn "$RUN/upstream-nsd2/stdout" "$GEN_CPU" nsd -d -c "$RUN/upstream-nsd2/nsd.conf"
		wait_ready nsd "$up2" || die "second upstream NSD does not answer"
		log "mode $MODE: upstreams 127.0.0.1:$UP_PORT and :$up2 (CPU $GEN_CPU), skydns on CPU $SRV_CPU"
		taskset -c "$SRV_CPU" /usr/bin/python3 "$HERE/fwd_dead.py" "$SKYDNS" "$UP_PORT" "$up2" \
			"$QUERIES" "$RUN" "${FWD_N:-3000}" | tee "$RESULTS/$(date +%Y%m%d-%H%M%S)-$MODE.txt"
		return 0
	fi
	if [ "$MODE" = forward ]; then
		alloc_port
		UP_PORT=$PORT
		log "upstream NSD on 127.0.0.1:$UP_PORT (CPU $GEN_CPU)"
		start_upstream "$UP_PORT"
	else
		if [ "$MODE" = mem ]; then
			alloc_port
			MEM_UP_PORT=$PORT
			start_mem_upstream "$MEM_UP_PORT"
		fi
		case " $SERVERS " in *" skydns "* | *" mmsg "*) import_skydns ;; esac
	fi
	for s in $SERVERS; do
		declare -F "start_$s" >/dev/null || die "unknown server $s"
		alloc_port
		PORTS[$s]=$PORT
	done
	log "mode $MODE: servers [$SERVERS], $ROUNDS round(s) of ${SECS} s runs"
	for r in $(seq 1 "$ROUNDS"); do
		list=$SERVERS
		# flip the order every other round, so drift on a shared box hits everyone alike
		[ $((r % 2)) = 0 ] && list=$(echo "$SERVERS" | tr ' ' '\n' | tac | tr '\n' ' ')
		for s in $list; do bench_one "$s" "$r"; done
	done
	case $MODE in
	mix | churn) report_pair ;;
	tcp) report_tcp ;;
	workers2 | mem) /usr/bin/python3 "$HERE/table.py" "$TSV" ;;
	*) report ;;
	esac
	log "rows: $TSV"
}

main "$@"
