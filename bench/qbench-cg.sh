#!/bin/sh
# Instructions per query_process under callgrind (repeatable on a loaded machine,
# unlike CPU time): qbench's pass() runs rounds+1 times (one warms the lookup
# cache), so the difference between a 3-round and a 1-round run is 2 x 20k
# queries on a warm cache, warm-up and set-up cancelled out.
# Usage: bench/qbench-cg.sh BUILD_DIR [plain|apex|cuts]
set -eu
bin=${1:?build dir}/bench/skydns-qbench
shape=${2:-plain}
out=$(mktemp /tmp/skydns-qbench-cg.XXXXXX)
trap 'rm -f "$out"' EXIT
ir() {
	valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "$1" "$shape" >/dev/null 2>&1
	callgrind_annotate --inclusive=yes "$out" | awk '/:pass /{gsub(",","",$1); print $1; exit}'
}
one=$(ir 1)
three=$(ir 3)
echo "$shape: $(((three - one) / 40000)) instructions per query_process"
