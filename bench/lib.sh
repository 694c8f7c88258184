# shellcheck shell=bash
# bench/lib.sh — shell functions bench/run.sh and bench/interleave.sh share; sourced, not
# run. The caller sets HERE (bench/), BIN (where tools are built), NEXT_PORT (the first
# port to try) and defines die().

port_busy() { ss -Hlnut "( sport = :$1 )" 2>/dev/null | grep -q .; }

# sets PORT to the first free loopback port from NEXT_PORT on, below NEXT_PORT + 300 (not
# in a subshell: NEXT_PORT must advance so two servers never get the same port)
alloc_port() {
	local last=$((NEXT_PORT + 300))
	PORT=$NEXT_PORT
	while port_busy "$PORT"; do
		PORT=$((PORT + 1))
		[ "$PORT" -lt "$last" ] || die "no free port below $last"
	done
	NEXT_PORT=$((PORT + 1))
}

# the load generator and the echo floor, rebuilt when their source is newer
build_tools() {
	mkdir -p "$BIN"
	if [ ! -x "$BIN/latprobe" ] || [ "$HERE/latprobe.c" -nt "$BIN/latprobe" ]; then
		cc -O2 -o "$BIN/latprobe" "$HERE/latprobe.c" || die "cannot build latprobe"
	fi
	if [ ! -x "$BIN/echo" ] || [ "$HERE/echo.c" -nt "$BIN/echo" ]; then
		cc -O2 -o "$BIN/echo" "$HERE/echo.c" -lpthread -luring || die "cannot build echo"
	fi
}
