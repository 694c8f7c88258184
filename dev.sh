#!/usr/bin/env bash
# dev.sh — the one entry point for developers on Debian 12.
#
#   ./dev.sh run     install missing build packages, build Release into ./build,
#                    import conf/demo.zone, run skydns in the foreground
#   ./dev.sh test    install missing build+test packages, ASan/UBSan build into
#                    ./build-test, run the whole ctest suite, the fuzz and TSan steps
#   ./dev.sh bench   benchmark against NSD and Knot DNS (bench/run.sh, args passed on)
#   ./dev.sh fuzz    only the fuzz step (FUZZ_SECONDS per target, default 30)
#   ./dev.sh tsan    TSan build into ./build-tsan: unit + api/transport/forward/hardening tests
#   ./dev.sh deps    only install what is missing
#
# Works as root or as a user with sudo. Idempotent: a second run installs nothing
# and rebuilds only what changed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$ROOT"

BUILD_PKGS=(build-essential cmake pkg-config liburing-dev libldns-dev liblmdb-dev
	libjansson-dev libcurl4-openssl-dev libcivetweb-dev libinih-dev libyaml-dev libssl-dev libgnutls28-dev)
# dig, for the README's example against the running demo server
RUN_PKGS=(dnsutils)
TEST_PKGS=(dnsutils knot-dnsutils ldnsutils nsd knot dnsperf python3 python3-dnspython
	clang libclang-rt-14-dev etcd-server etcd-client curl lmdb-utils unbound iproute2 procps openssl clang-format
	chromium python3-websocket prometheus python3-yaml)
# chromium + python3-websocket: the status page's browser test (DevTools protocol);
# prometheus: promtool, which checks conf/monitoring's alerting rules;
# python3-yaml: the Kubernetes manifests' test.

CONF=conf/skydns.conf
SKYDNS=./build/server/skydns

say() { printf '==> %s\n' "$*" >&2; }
die() {
	printf 'dev.sh: error: %s\n' "$*" >&2
	exit 1
}

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root or sudo to run: $*"
	fi
}

missing_pkgs() {
	local p st
	for p in "$@"; do
		st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		[ "$st" = "install ok installed" ] || echo "$p"
	done
}

# Debian starts these daemons when their package is installed; the tests and the
# benchmark start their own instances on loopback ports, so a system copy is only
# in the way. Only services whose package we just installed are touched: a
# resolver the user already runs is left alone.
stop_new_services() {
	local pkg svc
	for pkg in "$@"; do
		case $pkg in
		nsd | knot | unbound | prometheus) svc=$pkg ;;
		etcd-server) svc=etcd ;;
		*) continue ;;
		esac
		if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
			if systemctl is-active --quiet "$svc" 2>/dev/null; then
				say "stopping $svc (started by its package; tests run their own)"
				as_root systemctl stop "$svc" || true
			fi
		elif [ -x "/etc/init.d/$svc" ] && command -v service >/dev/null 2>&1; then
			if as_root service "$svc" status >/dev/null 2>&1; then
				say "stopping $svc (started by its package; tests run their own)"
				as_root service "$svc" stop >/dev/null 2>&1 || true
			fi
		fi
	done
}

deps() {
	local missing
	mapfile -t missing < <(missing_pkgs "$@")
	if [ "${#missing[@]}" -eq 0 ]; then
		say "packages: all present"
		return 0
	fi
	say "installing missing packages: ${missing[*]}"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends "${missing[@]}"
	stop_new_services "${missing[@]}"
}

# data-dir of conf/skydns.conf, so the directory we create is the one the server uses
conf_data_dir() {
	awk -F= '/^[ \t]*data-dir[ \t]*=/ { v = $2; gsub(/^[ \t]+|[ \t]+$/, "", v); print v; exit }' "$CONF"
}

cmd_run() {
	deps "${BUILD_PKGS[@]}" "${RUN_PKGS[@]}"
	[ -f "$CONF" ] || die "$CONF is missing"
	say "building Release into ./build"
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build -j"$(nproc)"
	local dir
	dir=$(conf_data_dir)
	mkdir -p data ${dir:+"$dir"}
	say "importing conf/demo.zone"
	"$SKYDNS" -config-file "$CONF" -import conf/demo.zone
	say "starting skydns in the foreground (Ctrl-C stops it). In another terminal:"
	say "    dig @127.0.0.1 -p 5353 www.skydns.local"
	exec "$SKYDNS" -config-file "$CONF"
}

# ---------------------------------------------------------------------------
# FUZZ STEP. Runs only when fuzz/ has targets (fuzz/fuzz_*.c, built by
# fuzz/CMakeLists.txt): builds the tree with clang + libFuzzer (ASan+UBSan)
# into ./build-fuzz and runs every target for FUZZ_SECONDS (default 30) on a
# temp copy of its corpus, so CI never writes into the repository. A crash,
# leak, timeout or OOM fails the step and prints the input as hex; add that
# input to fuzz/corpus/<target>/ with the fix. The normal build's
# `ctest -L fuzz` replays the committed corpora.
fuzz_one() {
	local name=$1 secs=$2 tmp rc=0 f
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/skydns-fuzz.XXXXXX") || return 1
	mkdir -p "$tmp/corpus"
	cp -r "fuzz/corpus/$name/." "$tmp/corpus/" 2>/dev/null || true
	# cd: a target's working dir gets stray files (fuzz-*.log) otherwise
	(cd "$tmp" && timeout $((secs + 120)) "$ROOT/build-fuzz/fuzz/$name" \
		-max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 \
		-artifact_prefix="$tmp/" -print_final_stats=1 corpus >log 2>&1) || rc=$?
	if [ "$rc" -ne 0 ] || compgen -G "$tmp/crash-*" >/dev/null ||
		compgen -G "$tmp/leak-*" >/dev/null || compgen -G "$tmp/timeout-*" >/dev/null ||
		compgen -G "$tmp/oom-*" >/dev/null; then
		printf 'fuzz: %s FAILED (exit %s)\n' "$name" "$rc" >&2
		tail -n 60 "$tmp/log" >&2
		for f in "$tmp"/crash-* "$tmp"/leak-* "$tmp"/timeout-* "$tmp"/oom-*; do
			[ -f "$f" ] || continue
			printf 'fuzz: %s input %s (%s bytes), hex:\n' "$name" "${f##*/}" \
				"$(stat -c %s "$f")" >&2
			od -An -tx1 -v "$f" | head -n 256 >&2
		done
		rm -rf "$tmp"
		return 1
	fi
	say "fuzz: $name ok ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$tmp/log" |
		grep -o '[0-9]*$' || echo '?') runs in ${secs}s)"
	rm -rf "$tmp"
}

run_fuzz() {
	local secs=${FUZZ_SECONDS:-30} jobs src name failed fail=0
	if ! compgen -G 'fuzz/fuzz_*.c' >/dev/null ||
		! grep -q 'add_executable' fuzz/CMakeLists.txt 2>/dev/null; then
		say "fuzz: no targets in fuzz/CMakeLists.txt yet, skipping"
		return 0
	fi
	command -v clang >/dev/null || {
		printf 'dev.sh: fuzz: clang is missing\n' >&2
		return 1
	}
	say "fuzz: clang build into ./build-fuzz"
	# explicit returns: set -e does not apply inside a function called with ||
	CC=clang cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo -DENABLE_FUZZ=ON >/dev/null || return 1
	# only the fuzz targets: the rest of the tree is built and tested by build-test
	local targets=()
	for src in fuzz/fuzz_*.c; do
		targets+=(--target "$(basename "$src" .c)")
	done
	cmake --build build-fuzz -j"$(nproc)" "${targets[@]}" || return 1
	jobs=$(nproc)
	say "fuzz: each target for ${secs}s, $jobs at a time"
	# each job leaves a mark on failure: wait -n may miss jobs that ended before it was called
	failed=$(mktemp "${TMPDIR:-/tmp}/skydns-fuzz-failed.XXXXXX") || return 1
	for src in fuzz/fuzz_*.c; do
		name=$(basename "$src" .c)
		while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
			wait -n || true
		done
		(fuzz_one "$name" "$secs" || echo "$name" >>"$failed") &
	done
	wait
	if [ -s "$failed" ]; then
		printf 'dev.sh: fuzz: failed: %s\n' "$(tr '\n' ' ' <"$failed")" >&2
		fail=1
	fi
	rm -f "$failed"
	return "$fail"
}
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# TSAN STEP (issue 7): a ThreadSanitizer build into ./build-tsan running the
# unit tests and the integration tests where threads meet: workers, the API's
# civetweb threads and store writers (test_api: concurrent writers during
# queries), the forwarder (test_forward), the transport (test_transport) and
# the limits (test_hardening). Reports are collected from every process the
# tests start (log_path), so a race inside the daemon fails the step too.
TSAN_TESTS='^unit/|^integration/test_(api|transport|forward|hardening)$'
run_tsan() {
	local logs rc=0
	say "tsan: ThreadSanitizer build into ./build-tsan"
	# no -Werror: gcc warns that TSan does not model atomic_thread_fence (engine/topn.c)
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DENABLE_TSAN=ON \
		-DWERROR=OFF >/dev/null || return 1
	cmake --build build-tsan -j"$(nproc)" || return 1
	logs=$(mktemp -d "${TMPDIR:-/tmp}/skydns-tsan.XXXXXX") || return 1
	# TSan's shadow memory grows with touched pages: widen test_transport's RSS bound
	TSAN_OPTIONS="log_path=$logs/tsan second_deadlock_stack=1 suppressions=$ROOT/tests/tsan.supp" \
		SKYDNS_RSS_SLACK_KB=32768 \
		ctest --test-dir build-tsan -R "$TSAN_TESTS" --output-on-failure --no-tests=error \
		-j2 || rc=1
	if compgen -G "$logs/tsan.*" >/dev/null; then
		printf 'dev.sh: tsan: reports:\n' >&2
		cat "$logs"/tsan.* >&2
		rc=1
	else
		say "tsan: no reports"
	fi
	rm -rf "$logs"
	return "$rc"
}
# ---------------------------------------------------------------------------

cmd_test() {
	deps "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}"
	say "building with ASan+UBSan, -Werror into ./build-test"
	cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DENABLE_ASAN=ON -DWERROR=ON >/dev/null
	cmake --build build-test -j"$(nproc)"
	local rc=0 frc=0 trc=0
	say "running the test suite"
	ctest --test-dir build-test --output-on-failure --no-tests=error -j2 || rc=$?
	# --output-on-failure hides a skipped test's output: show why each one skipped
	grep -a '^SKIP: ' build-test/Testing/Temporary/LastTest.log 2>/dev/null |
		sed 's/^SKIP: /==> skipped: /' >&2 || true
	run_fuzz || frc=$?
	# ~1-2 min on 2 cores (build + tests), so it runs on every test run
	run_tsan || trc=$?
	if [ "$rc" -ne 0 ] || [ "$frc" -ne 0 ] || [ "$trc" -ne 0 ]; then
		say "FAILED (ctest exit $rc, fuzz exit $frc, tsan exit $trc)"
		return 1
	fi
	say "all tests passed"
}

cmd_bench() {
	deps "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}"
	exec bench/run.sh "$@"
}

usage() {
	sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
}

main() {
	local cmd=${1:-}
	[ $# -gt 0 ] && shift
	case $cmd in
	run) cmd_run "$@" ;;
	test) cmd_test "$@" ;;
	bench) cmd_bench "$@" ;;
	fuzz) run_fuzz ;;
	tsan) run_tsan ;;
	deps) deps "${BUILD_PKGS[@]}" "${RUN_PKGS[@]}" "${TEST_PKGS[@]}" ;;
	-h | --help | help) usage ;;
	*)
		usage >&2
		exit 2
		;;
	esac
}

# one line: bash reads a script as it runs, so an edit during a long run must not
# make it read on past main
main "$@"; exit $?
