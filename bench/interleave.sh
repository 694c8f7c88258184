#!/bin/bash
# interleave.sh — CPU per query of several targets measured side by side, for ratios that
# this kind of machine's drift does not swamp.
#
# bench/run.sh measures one server for BENCH_SECONDS, then the next: on a shared VM the
# speed of the whole box drifts by ±20 % within a minute, so a ratio of two such runs
# swings as much (issue 16: skydns / echo 0.86–1.22 between runs of the same code). Here
# every server runs at once, each pinned to CPU 1 on its own port, and the batched
# generator (latprobe -M, CPU 0) visits them in turn for SLICE seconds, CYCLES times:
# both sides of a ratio see the same drift, one slice apart.
#
#   bench/interleave.sh TARGET...     TARGET = SERVER[:QUERYFILE]
#     SERVER   skydns (SKYDNS_BUILD_DIR's, default build/), skydns=PATH (another binary),
#              echo (the io_uring echo floor)
#     QUERYFILE queries (default), pos, neg (bench/data*/queries-*.txt)
#   e.g. bench/interleave.sh skydns echo                 the UDP row against the floor
#        NSVC=1000000 bench/interleave.sh skydns:pos skydns:neg   the negative-answer row
#        bench/interleave.sh skydns=/tmp/old/skydns skydns      an A/B of two builds
# Env: CYCLES (30), SLICE (1), NSVC (zone size: bench/data, or bench/data/n$NSVC for
#      other sizes, made by make-zone.sh when missing), BENCH_RUN_DIR (bench/run).
# CPU is the servers' run time from /proc/PID/task/*/schedstat (ns, every thread).
# Prints per target: µs per answered query over all its slices, answers, lost; then the
# first target over each other one: the ratio of the totals, and the median and quartiles
# of the per-cycle ratios (their spread is the noise left).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
CYCLES=${CYCLES:-30}
SLICE=${SLICE:-1}
NSVC=${NSVC:-10000}
if [ "$NSVC" = 10000 ]; then DATA=$HERE/data; else DATA=$HERE/data/n$NSVC; fi
RUN=${BENCH_RUN_DIR:-$HERE/run}/interleave
BIN=${BENCH_RUN_DIR:-$HERE/run}/bin
SKYDNS_DEFAULT=${SKYDNS_BUILD_DIR:-$ROOT/build}/server/skydns
SRV_CPU=1 GEN_CPU=0
PIDS=()

die() {
	echo "interleave: $*" >&2
	exit 1
}
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

[ $# -ge 2 ] || die "usage: $0 TARGET TARGET... (see the header)"
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (server on 1, generator on 0)"
NEXT_PORT=5450
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh" # port_busy, alloc_port, build_tools
mkdir -p "$RUN"
build_tools
[ -f "$DATA/queries-neg.txt" ] || NSVC=$NSVC "$HERE/make-zone.sh" "$DATA" >&2

# One server per distinct SERVER; the store is imported once per binary and zone.
declare -A SPORT SPID
start_server() { # SERVER
	local s=$1 bin d
	[ -n "${SPORT[$s]:-}" ] && return 0
	alloc_port
	if [ "$s" = echo ]; then
		taskset -c "$SRV_CPU" "$BIN/echo" "$PORT" 1 uring >/dev/null 2>&1 &
	else
		bin=$SKYDNS_DEFAULT
		case $s in skydns=*) bin=${s#skydns=} ;; skydns) ;; *) die "unknown server $s" ;; esac
		[ -x "$bin" ] || die "no skydns binary at $bin"
		d=$RUN/skydns-$PORT
		rm -rf "$d"
		mkdir -p "$d/store"
		printf '[Dns]\ndns-addr = 127.0.0.1:%s\nworkers = 1\nshutdown-grace = 0\n' "$PORT" >"$d/skydns.conf"
		printf 'dns-domains = skydns.local.\n[Store]\ndata-dir = %s/store\n' "$d" >>"$d/skydns.conf"
		printf '[Log]\nlog-level = warn\n' >>"$d/skydns.conf"
		"$bin" -config-file "$d/skydns.conf" -import "$DATA/skydns.local.zone" >"$d/import.log" 2>&1 ||
			die "import failed (see $d/import.log)"
		taskset -c "$SRV_CPU" "$bin" -config-file "$d/skydns.conf" >"$d/stdout" 2>&1 &
	fi
	SPID[$s]=$!
	PIDS+=("$!")
	SPORT[$s]=$PORT
	# every thread onto the server CPU (a binary that pins its own threads is moved back)
	sleep 1
	taskset -a -p -c "$SRV_CPU" "${SPID[$s]}" >/dev/null ||
		die "$s did not start (see $RUN)"
}

runtime_ns() { # PID: the run time of all its threads
	local t=0 f a
	for f in /proc/"$1"/task/*/schedstat; do
		read -r a _ <"$f" || true
		t=$((t + a))
	done
	echo "$t"
}

declare -a TSRV TQF TNAME
for t in "$@"; do
	srv=${t%%:*} q=queries
	[ "$srv" != "$t" ] && q=${t#*:}
	case $q in queries) qf=$DATA/queries.txt ;; pos | neg) qf=$DATA/queries-$q.txt ;;
	*) die "unknown query file $q" ;; esac
	start_server "$srv"
	TSRV+=("$srv")
	TQF+=("$qf")
	TNAME+=("$t")
done
# warm-up: one slice each (lookup caches, page faults)
for i in "${!TSRV[@]}"; do
	taskset -c "$GEN_CPU" "$BIN/latprobe" -s 127.0.0.1 -p "${SPORT[${TSRV[$i]}]}" \
		-d "${TQF[$i]}" -l 2 -M -c 8 -q 256 >/dev/null 2>&1 || true
done
SLICES=$RUN/slices.tsv
: >"$SLICES"
for ((c = 0; c < CYCLES; c++)); do
	for i in "${!TSRV[@]}"; do
		pid=${SPID[${TSRV[$i]}]}
		t0=$(runtime_ns "$pid")
		out=$(taskset -c "$GEN_CPU" "$BIN/latprobe" -s 127.0.0.1 -p "${SPORT[${TSRV[$i]}]}" \
			-d "${TQF[$i]}" -l "$SLICE" -M -c 8 -q 256 2>&1 || true)
		t1=$(runtime_ns "$pid")
		ans=0 lost=0
		read -r ans lost < <(echo "$out" |
			sed -n 's/^sent \([0-9]*\) received \([0-9]*\) lost \([0-9]*\).*/\2 \3/p') || true
		printf '%d\t%s\t%d\t%d\t%d\n' "$c" "${TNAME[$i]}" "$((t1 - t0))" "${ans:-0}" \
			"${lost:-0}" >>"$SLICES"
	done
done
echo "interleave: ${#TSRV[@]} targets, $CYCLES cycles of $SLICE s, zone $DATA (rows: $SLICES)"
python3 - "$SLICES" "${TNAME[@]}" <<'EOF'
import collections, statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
names = sys.argv[2:]
tot = collections.defaultdict(lambda: [0, 0, 0])
per = collections.defaultdict(dict)
for c, n, ns, ans, lost in rows:
    t = tot[n]; t[0] += int(ns); t[1] += int(ans); t[2] += int(lost)
    if int(ans):
        per[c][n] = int(ns) / int(ans)
us = {n: tot[n][0] / 1e3 / tot[n][1] if tot[n][1] else float("nan") for n in names}
print("%-28s %8s %12s %8s" % ("target", "us/q", "answers", "lost"))
for n in names:
    print("%-28s %8.3f %12d %8d" % (n, us[n], tot[n][1], tot[n][2]))
ref = names[0]
print("%s over each: ratio of the totals, median [quartiles] of the per-cycle ratios" % ref)
for n in names[1:]:
    r = sorted(d[ref] / d[n] for d in per.values() if ref in d and n in d)
    q = statistics.quantiles(r, n=4) if len(r) > 1 else [r[0]] * 3
    print("  %s / %-22s %6.3f   median %.3f [%.3f %.3f]  (%d cycles)"
          % (ref, n, us[ref] / us[n], statistics.median(r), q[0], q[2], len(r)))
EOF
