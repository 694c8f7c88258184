#!/usr/bin/env bash
# dev.sh — the one entry point for developers on Debian 12.
#
#   ./dev.sh run     install missing build packages, build Release into ./build,
#                    import conf/demo.zone, run skydns in the foreground
#   ./dev.sh test    install missing build+test packages, ASan/UBSan build into
#                    ./build-test, run the whole ctest suite (and the fuzz step)
#   ./dev.sh bench   benchmark against NSD and Knot DNS (bench/run.sh, args passed on)
#   ./dev.sh deps    only install what is missing
#
# Works as root or as a user with sudo. Idempotent: a second run installs nothing
# and rebuilds only what changed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$ROOT"

BUILD_PKGS=(build-essential cmake pkg-config liburing-dev libldns-dev liblmdb-dev
	libjansson-dev libcurl4-openssl-dev libcivetweb-dev libinih-dev)
# dig, for the README's example against the running demo server
RUN_PKGS=(dnsutils)
TEST_PKGS=(dnsutils knot-dnsutils ldnsutils nsd knot dnsperf python3 python3-dnspython
	clang libclang-rt-14-dev etcd-server etcd-client curl lmdb-utils unbound iproute2 procps)

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
		nsd | knot | unbound) svc=$pkg ;;
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
# FUZZ STEP (issue 7 fills this in). Runs only when fuzz/ has targets
# (fuzz/fuzz_*.c, built by fuzz/CMakeLists.txt): builds the tree with clang +
# libFuzzer into ./build-fuzz and runs the tests labelled "fuzz" (each target
# for a bounded time / over its corpus).
run_fuzz() {
	if ! compgen -G 'fuzz/fuzz_*.c' >/dev/null ||
		! grep -q 'add_executable' fuzz/CMakeLists.txt 2>/dev/null; then
		say "fuzz: no targets in fuzz/CMakeLists.txt yet, skipping"
		return 0
	fi
	say "fuzz: clang build into ./build-fuzz"
	# explicit returns: set -e does not apply inside a function called with ||
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DENABLE_FUZZ=ON -DENABLE_ASAN=ON >/dev/null || return 1
	cmake --build build-fuzz -j"$(nproc)" || return 1
	ctest --test-dir build-fuzz -L fuzz --output-on-failure --no-tests=error -j2
}
# ---------------------------------------------------------------------------

cmd_test() {
	deps "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}"
	say "building with ASan+UBSan, -Werror into ./build-test"
	cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DENABLE_ASAN=ON -DWERROR=ON >/dev/null
	cmake --build build-test -j"$(nproc)"
	local rc=0 frc=0
	say "running the test suite"
	ctest --test-dir build-test --output-on-failure --no-tests=error -j2 || rc=$?
	run_fuzz || frc=$?
	if [ "$rc" -ne 0 ] || [ "$frc" -ne 0 ]; then
		say "FAILED (ctest exit $rc, fuzz exit $frc)"
		return 1
	fi
	say "all tests passed"
}

cmd_bench() {
	deps "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}"
	exec bench/run.sh "$@"
}

usage() {
	sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
}

main() {
	local cmd=${1:-}
	[ $# -gt 0 ] && shift
	case $cmd in
	run) cmd_run "$@" ;;
	test) cmd_test "$@" ;;
	bench) cmd_bench "$@" ;;
	deps) deps "${BUILD_PKGS[@]}" "${RUN_PKGS[@]}" "${TEST_PKGS[@]}" ;;
	-h | --help | help) usage ;;
	*)
		usage >&2
		exit 2
		;;
	esac
}

main "$@"
