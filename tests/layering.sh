#!/bin/bash
# tests/layering.sh SRC_DIR - include-rule checker (STYLE.md "Dependency rules").
#
# Debian installs lmdb.h, liburing.h, civetweb.h and jansson.h straight into
# /usr/include, so include paths cannot stop a stray #include; CMake PRIVATE
# linking only guards the link side. This greps every #include of every
# .c/.h per folder and fails (exit 1, file:line) on a library or project
# module the folder must not use. tests/, fuzz/ and bench/ may include anything.
#
# Before scanning, it checks itself on a fixture tree with known violations,
# so a broken pattern cannot turn into a test that always passes.
set -u

# ---- the rules (keep in step with STYLE.md) -------------------------------

# Third-party library of a header, or "" when it is none of ours.
lib_of() {
	case $1 in
	lmdb.h) echo lmdb ;;
	liburing.h | liburing/*) echo liburing ;;
	curl/*) echo curl ;;
	civetweb.h) echo civetweb ;;
	jansson.h | jansson_config.h) echo jansson ;;
	ldns/*) echo ldns ;;
	ini.h) echo inih ;;
	yaml.h) echo yaml ;;
	openssl/*) echo openssl ;;
	gnutls/*) echo gnutls ;;
	*) echo "" ;;
	esac
}

# Libraries each folder may use.
allowed_libs() {
	case $1 in
	common) echo "" ;;
	conf) echo "inih" ;;
	store) echo "lmdb ldns" ;;
	engine) echo "openssl" ;;
	server) echo "liburing gnutls" ;; # gnutls: DoT upstreams (server/dot.c)
	watchers) echo "curl jansson yaml" ;;
	api) echo "civetweb jansson" ;;
	probe) echo "curl jansson" ;;
	cli) echo "curl jansson" ;;
	esac
}

# Project modules each folder may include ("store/store.h" -> store).
allowed_mods() {
	case $1 in
	common) echo "common" ;;
	conf) echo "common conf" ;;
	store) echo "common store" ;;
	engine) echo "common conf store engine" ;;
	server) echo "common conf store engine server" ;;
	watchers) echo "common conf store watchers" ;;
	api) echo "common conf store api" ;;
	probe) echo "common conf store watchers probe" ;;
	cli) echo "common cli" ;; # a remote client: never the store
	esac
}

CHECKED="common conf store engine server watchers api probe cli"
MODULES="$CHECKED tests fuzz"

# The composition root wires every module together (STYLE.md table).
exempt() {
	[ "$1" = server/main.c ]
}

# System headers of I/O that engine/ must not include: the engine is sans-IO
# (bytes in, bytes out, decisions), so that it can be fuzzed and unit-tested
# without sockets and can never block a worker. Sockets, files, rings, threads.
is_io_header() {
	case $1 in
	sys/socket.h | sys/uio.h | sys/epoll.h | sys/eventfd.h | sys/mman.h | sys/stat.h | \
		sys/signalfd.h | sys/timerfd.h | sys/un.h | sys/random.h | poll.h | unistd.h | fcntl.h | \
		netdb.h | pthread.h | signal.h | dirent.h | spawn.h | aio.h | mqueue.h | linux/*) return 0 ;;
	esac
	return 1
}

# libc, POSIX and Linux headers: the only angle includes allowed without a rule.
is_system() {
	case $1 in
	assert.h | complex.h | ctype.h | errno.h | fenv.h | float.h | inttypes.h | iso646.h | \
		limits.h | locale.h | math.h | setjmp.h | signal.h | stdalign.h | stdarg.h | \
		stdatomic.h | stdbool.h | stddef.h | stdint.h | stdio.h | stdlib.h | \
		stdnoreturn.h | string.h | tgmath.h | threads.h | time.h | uchar.h | wchar.h | \
		wctype.h) return 0 ;;
	aio.h | cpio.h | dirent.h | dlfcn.h | fcntl.h | fnmatch.h | glob.h | grp.h | iconv.h | \
		ifaddrs.h | langinfo.h | libgen.h | monetary.h | mqueue.h | ndbm.h | netdb.h | \
		nl_types.h | poll.h | pthread.h | pwd.h | regex.h | sched.h | search.h | \
		semaphore.h | spawn.h | strings.h | syslog.h | tar.h | termios.h | ulimit.h | \
		unistd.h | utime.h | utmpx.h | wordexp.h | getopt.h | endian.h | byteswap.h | \
		err.h | error.h | execinfo.h | features.h | malloc.h | memory.h | paths.h | \
		resolv.h | sysexits.h | link.h | elf.h | alloca.h) return 0 ;;
	sys/* | netinet/* | arpa/* | net/* | linux/* | asm/* | asm-generic/* | bits/* | gnu/* | \
		netpacket/* | rpc/*) return 0 ;;
	esac
	return 1
}

# Single headers allowed across a module line, pending a decision in STYLE.md.
# Each is printed as a NOTE on every run so it stays visible.
# api/stats.c reads the QUERY_STAT_* counter indexes (header-only, via hooks).
EXCEPTIONS=""

in_list() { # word "space-separated list"
	local x
	for x in $2; do [ "$x" = "$1" ] && return 0; done
	return 1
}

# ---- the checker ------------------------------------------------------------

# Check one include of file $2 (path relative to root $1) at line $3.
# Prints a violation and returns 1, or returns 0.
check_include() {
	local root=$1 rel=$2 line=$3 kind=$4 hdr=$5
	local folder=${rel%%/*} lib mod dir
	exempt "$rel" && return 0
	lib=$(lib_of "$hdr")
	if [ -n "$lib" ]; then
		in_list "$lib" "$(allowed_libs "$folder")" && return 0
		echo "$rel:$line: $folder/ must not use $lib (#include $hdr)"
		return 1
	fi
	mod=${hdr%%/*}
	if [ "$mod" != "$hdr" ] && in_list "$mod" "$MODULES"; then
		in_list "$mod" "$(allowed_mods "$folder")" && return 0
		if in_list "$folder:$hdr" "$EXCEPTIONS"; then
			echo "NOTE $rel:$line: $folder/ includes $hdr (listed exception)" >&2
			return 0
		fi
		echo "$rel:$line: $folder/ must not include module $mod/ (#include $hdr)"
		return 1
	fi
	dir=$(dirname "$root/$rel")
	[ "$kind" = '"' ] && [ -e "$dir/$hdr" ] && return 0 # a header next to the file
	if [ "$folder" = engine ] && is_io_header "$hdr"; then
		echo "$rel:$line: engine/ is sans-IO and must not include $hdr"
		return 1
	fi
	is_system "$hdr" && return 0
	echo "$rel:$line: $folder/ includes unknown third-party header $hdr" \
		"(add it to tests/layering.sh and STYLE.md if intended)"
	return 1
}

# Check every .c/.h of root/folder; prints violations, returns their count (capped).
check_folder() {
	local root=$1 folder=$2 bad=0 path line text re
	re='^[[:space:]]*#[[:space:]]*include[[:space:]]*([<"])([^>"]+)[>"]'
	# grep -n prints path:line:text; only the include lines reach the bash loop.
	while IFS=: read -r path line text; do
		[[ $text =~ $re ]] || continue
		check_include "$root" "${path#"$root"/}" "$line" "${BASH_REMATCH[1]}" \
			"${BASH_REMATCH[2]}" || bad=$((bad + 1))
	done < <(find "$root/$folder" -type f \( -name '*.c' -o -name '*.h' \) -print0 | sort -z |
		xargs -0 -r grep -nHE '^[[:space:]]*#[[:space:]]*include')
	[ "$bad" -gt 100 ] && bad=100
	return "$bad"
}

# ---- self-test on a fixture tree ------------------------------------------

self_test() {
	local t out n rc=0
	t=$(mktemp -d) || return 1
	mkdir -p "$t"/{common,conf,store,engine,server,cli,api,tests}
	printf '#include <string.h>\n#include <lmdb.h>\n' >"$t/common/a.c"
	printf '#include <ini.h>\n#include "common/err.h"\n  #  include "jansson.h"\n' >"$t/conf/a.c"
	printf '#include <lmdb.h>\n#include <ldns/ldns.h>\n#include <liburing.h>\n' >"$t/store/a.c"
	printf '#include "a.h"\n#include <sys/socket.h>\n#include <curl/curl.h>\n' >"$t/server/a.c"
	: >"$t/server/a.h"
	printf '#include <civetweb.h>\n#include <lmdb.h>\n#include "api/api.h"\n' >"$t/server/main.c"
	printf '#include <jansson.h>\n#include "store/store.h"\n' >"$t/cli/a.c"
	printf '#include <civetweb.h>\n#include <openssl/ssl.h>\n' >"$t/api/a.h"
	printf '#include <lmdb.h>\n#include <liburing.h>\n' >"$t/tests/a.c"
	printf '#include <string.h>\n#include <sys/socket.h>\n#include "server/worker.h"\n#include <liburing.h>\n' >"$t/engine/a.c"
	out=$(for f in common conf store engine server cli api; do check_folder "$t" "$f"; done)
	n=$(printf '%s\n' "$out" | grep -c .)
	for want in common/a.c:2: conf/a.c:3: store/a.c:3: server/a.c:3: cli/a.c:2: api/a.h:2: \
		engine/a.c:2: engine/a.c:3: engine/a.c:4:; do
		grep -q "^$want" <<<"$out" || {
			echo "layering.sh self-test: missed $want"
			rc=1
		}
	done
	[ "$n" -eq 9 ] || {
		echo "layering.sh self-test: expected 9 violations, got $n:"
		printf '%s\n' "$out"
		rc=1
	}
	rm -rf "$t"
	return $rc
}

# ---- main -------------------------------------------------------------------

src=${1:-$(cd "$(dirname "$0")/.." && pwd)}
src=${src%/}
if [ ! -d "$src/common" ]; then
	echo "usage: $0 SRC_DIR (no common/ under '$src')" >&2
	exit 2
fi
self_test || exit 1

passed=0
failed=0
for folder in $CHECKED; do
	[ -d "$src/$folder" ] || continue
	check_folder "$src" "$folder"
	n=$?
	if [ "$n" -eq 0 ]; then
		passed=$((passed + 1))
	else
		echo "FAIL $folder/: $n forbidden include(s)"
		failed=$((failed + 1))
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
