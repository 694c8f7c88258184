#!/usr/bin/env bash
# bench/k8s.sh — skydns as cluster DNS at scale (issue 12): a synthetic cluster of
# 10,000 Services and 50,000 endpoints (bench/k8s_gen.py) served by the Kubernetes API
# test server (tests/integration/kubeapi.py), read by the real skydns-watch-k8s.
#
# Measures list-to-serving time (empty store -> /ready, -> the last Service answers),
# store size (data.mdb, pages in use), the watcher's peak RSS after the first list, its
# steady RSS, its peak during a forced re-list (VmHWM reset through clear_refs; issue 12
# wants <= 1.2x steady), the re-list time, and API change -> answer visible p50/p99/max
# for a Service added and an endpoint added to / removed from a headless service
# (target p99 < 100 ms). Everything on 127.0.0.1; the processes it starts stop with it.
#
# Env: SKYDNS_BUILD_DIR [build-bench, built Release if missing]
#      K8S_SERVICES [10000]  K8S_ENDPOINTS [50000]  K8S_SAMPLES [200]
# Output: a table on stdout and bench/results/<date>-k8s.tsv.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BUILD=${SKYDNS_BUILD_DIR:-$ROOT/build-bench}

if [ ! -x "$BUILD/server/skydns" ] || [ ! -x "$BUILD/server/skydns-watch-k8s" ]; then
	cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
	nice -n 5 cmake --build "$BUILD" -j2 --target skydns skydns-watch-k8s
fi
for tool in mdb_stat; do
	command -v "$tool" >/dev/null || echo "k8s.sh: $tool missing (lmdb-utils): no store_used" >&2
done
SKYDNS_BUILD=$BUILD exec nice -n 5 /usr/bin/python3 "$HERE/k8s_bench.py"
